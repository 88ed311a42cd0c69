/**
 * The index of a user's sessions in `SESSIONS`, so that every session of one `sub` (or of one
 * provider session `sid`) can be found and ended: sign out everywhere, back-channel logout, the
 * operator's `npm run sessions`. Written once at login next to `session:<sid>` and expiring with
 * it; read (listed by prefix) only when sessions are ended, never on a signed-in request. Keys,
 * values and TTLs are in docs/storage-schema.md.
 *
 * - `user:<user hash>:<sid>` — one per session; metadata `{ v, iat, exp, host, eh?, ph? }`.
 * - `psid:<provider sid hash>:<sid>` — one per session whose id_token carried `sid`; metadata `{ u }`.
 *
 * Both values are empty: everything is in the key and its metadata, so a prefix listing (which
 * returns metadata) is all a search costs.
 */
import { userHash } from "../common/log";
import { writeTombstone } from "./store";

/** Cloudflare KV refuses expirations shorter than this (seconds). */
const KV_MIN_TTL = 60;

/** What the index says about one session (the metadata of `user:<user hash>:<sid>`). */
export interface IndexEntry {
  readonly v: 1;
  /** Session start and absolute end (epoch seconds). */
  readonly iat: number;
  readonly exp: number;
  /** The host the session was created on. */
  readonly host: string;
  /** Hash of the lowercased e-mail at login, so an operator can search by address (see emailHash). */
  readonly eh?: string;
  /** Hash of the provider's `sid` (see providerSidHash), when the id_token had one. */
  readonly ph?: string;
}

/** One indexed session: its id, its user's hash and the entry. */
export interface IndexedSession {
  readonly sid: string;
  readonly user: string;
  readonly entry: IndexEntry;
}

async function sha256Hex(text: string, hexDigits: number): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0"))
    .join("")
    .slice(0, hexDigits);
}

/** The e-mail hash in the index: 16 hex digits of SHA-256 of the trimmed, lowercased address. */
export function emailHash(email: string): Promise<string> {
  return sha256Hex(email.trim().toLowerCase(), 16);
}

/** The provider `sid` hash in the index: 32 hex digits of its SHA-256 (the raw value may be long). */
export function providerSidHash(providerSid: string): Promise<string> {
  return sha256Hex(providerSid, 32);
}

/** The prefix of every index key of one user; the user hash is the log's `user` (userHash). */
export async function userPrefix(sub: string): Promise<string> {
  return `user:${await userHash(sub)}:`;
}

function isIndexEntry(value: unknown): value is IndexEntry {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.v === 1 && typeof v.iat === "number" && typeof v.exp === "number" && typeof v.host === "string";
}

/** What login knows about a new session, for the index. */
export interface NewSession {
  readonly sid: string;
  readonly sub: string;
  readonly email: string | undefined;
  readonly providerSid: string | undefined;
  readonly host: string;
  readonly iat: number;
  readonly exp: number;
}

/** Writes the index entries of a new session (one KV write, two when the provider gave a `sid`). */
export async function indexSession(kv: KVNamespace, session: NewSession, now: number): Promise<void> {
  const user = await userHash(session.sub);
  const ph = session.providerSid === undefined ? undefined : await providerSidHash(session.providerSid);
  const eh = session.email === undefined ? undefined : await emailHash(session.email);
  const entry: IndexEntry = {
    v: 1,
    iat: session.iat,
    exp: session.exp,
    host: session.host,
    ...(eh === undefined ? {} : { eh }),
    ...(ph === undefined ? {} : { ph }),
  };
  const expirationTtl = Math.max(KV_MIN_TTL, session.exp - now);
  const writes = [kv.put(`user:${user}:${session.sid}`, "", { expirationTtl, metadata: entry })];
  if (ph !== undefined) writes.push(kv.put(`psid:${ph}:${session.sid}`, "", { expirationTtl, metadata: { u: user } }));
  await Promise.all(writes);
}

/** Every key under `prefix`, page by page, with its metadata. */
async function listAll(kv: KVNamespace, prefix: string): Promise<{ name: string; metadata: unknown }[]> {
  const keys: { name: string; metadata: unknown }[] = [];
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix, ...(cursor === undefined ? {} : { cursor }) });
    keys.push(...page.keys.map((key) => ({ name: key.name, metadata: key.metadata })));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor !== undefined);
  return keys;
}

/** The indexed sessions of one user (ended ones may linger until their expiry; ending them again is harmless). */
export async function sessionsOfUser(kv: KVNamespace, sub: string): Promise<IndexedSession[]> {
  const prefix = await userPrefix(sub);
  const user = prefix.slice("user:".length, -1);
  return (await listAll(kv, prefix)).flatMap(({ name, metadata }) =>
    isIndexEntry(metadata) ? [{ sid: name.slice(prefix.length), user, entry: metadata }] : [],
  );
}

/** The host a session was created on, from its user index entry (`user` is the hash of its `sub`). */
export async function indexedHost(kv: KVNamespace, user: string, sid: string): Promise<string | undefined> {
  const { metadata } = await kv.getWithMetadata(`user:${user}:${sid}`);
  return isIndexEntry(metadata) ? metadata.host : undefined;
}

/**
 * The gate sessions created from one provider session, as `{ sid, user }` pairs; `sub`, when
 * given, must be theirs (a logout token with both names one user's one session).
 */
export async function sessionsOfProviderSid(kv: KVNamespace, providerSid: string, sub: string | undefined): Promise<{ sid: string; user: string; ph: string }[]> {
  const ph = await providerSidHash(providerSid);
  const prefix = `psid:${ph}:`;
  const user = sub === undefined ? undefined : await userHash(sub);
  return (await listAll(kv, prefix)).flatMap(({ name, metadata }) => {
    const u = (metadata as { u?: unknown } | null)?.u;
    if (typeof u !== "string" || (user !== undefined && u !== user)) return [];
    return [{ sid: name.slice(prefix.length), user: u, ph }];
  });
}

/**
 * Ends sessions: writes each one's tombstone, then deletes its record (a deleted record refuses the
 * session at its next check; the tombstone keeps a check that was refreshing meanwhile from writing
 * it back) and its index entries. Returns how many were ended.
 */
export async function endSessions(kv: KVNamespace, sessions: readonly { sid: string; user: string; ph?: string | undefined }[], now: number): Promise<number> {
  await Promise.all(
    sessions.map(async ({ sid, user, ph }) => {
      await writeTombstone(kv, sid, now);
      await Promise.all([kv.delete(`session:${sid}`), kv.delete(`user:${user}:${sid}`), ...(ph === undefined ? [] : [kv.delete(`psid:${ph}:${sid}`)])]);
    }),
  );
  return sessions.length;
}

/** Removes one session's user index entry (a single logout; the record is deleted by the caller). */
export async function unindexSession(kv: KVNamespace, sub: string, sid: string): Promise<void> {
  await kv.delete(`${await userPrefix(sub)}${sid}`);
}
