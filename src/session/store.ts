/**
 * The sealed session record in `SESSIONS` (key `session:<sid>`): the tokens and the server-side
 * truth that makes revocation possible, sealed for the host it was made on. When a session ends
 * for good (logout), a short-lived tombstone (key `tombstone:<sid>`) outlives the record, so a
 * check that was refreshing meanwhile cannot write it back. Keys, shapes and TTLs are listed in
 * docs/storage-schema.md.
 */
import { open, randomId, seal, type Keyring } from "./seal";

/** The KV record's content (key `session:<sid>`). */
export interface SessionRecord {
  readonly v: 1;
  readonly sub: string;
  readonly accessToken: string;
  readonly accessTokenExpiresAt: number | undefined;
  readonly refreshToken: string | undefined;
  /** Kept for `id_token_hint` at provider logout; an expired one is accepted there. */
  readonly idToken: string | undefined;
  readonly iat: number;
  readonly exp: number;
  /**
   * When the tokens were last refreshed (absent until the first refresh). A request whose cookie
   * was checked before this takes these tokens instead of refreshing again.
   */
  readonly refreshedAt?: number;
}

/** Cloudflare KV refuses expirations shorter than this (seconds). */
const KV_MIN_TTL = 60;
/**
 * How long a tombstone lives (seconds): longer than a check can take (two provider calls and KV
 * reads, each bounded by OIDC_TIMEOUT ≤ 30 s) plus the ~60 s KV takes to reach every location.
 */
export const TOMBSTONE_TTL = 300;

function isSessionRecord(value: unknown): value is SessionRecord {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    v.v === 1 &&
    typeof v.sub === "string" &&
    typeof v.accessToken === "string" &&
    typeof v.exp === "number" &&
    (v.refreshedAt === undefined || typeof v.refreshedAt === "number")
  );
}

export function newSessionId(): string {
  return randomId();
}

function recordKey(sid: string): string {
  return `session:${sid}`;
}

function tombstoneKey(sid: string): string {
  return `tombstone:${sid}`;
}

/**
 * Marks a session as ended for good, before its record is deleted: a check that read the record
 * before the delete and writes it back afterwards finds this and undoes its write.
 */
export async function writeTombstone(kv: KVNamespace, sid: string, now: number): Promise<void> {
  await kv.put(tombstoneKey(sid), String(now), { expirationTtl: TOMBSTONE_TTL });
}

export class SessionStore {
  /**
   * @param host the request's host name: bound into every record's sealing, so a record opens
   *   only for requests to the host it was made on (another host or deployment sharing the keys
   *   and the namespace finds nothing)
   */
  constructor(
    /** Also where the per-user index lives (./user-index.ts). */
    readonly kv: KVNamespace,
    private readonly keyring: Keyring,
    private readonly host: string,
  ) {}

  private purpose(sid: string): string {
    return `${recordKey(sid)}@${this.host}`;
  }

  async put(sid: string, record: SessionRecord, now: number): Promise<void> {
    const sealed = await seal(this.keyring, this.purpose(sid), record);
    // `w`: when the record was last written (login, refresh, re-seal), for `npm run sessions -- list`.
    await this.kv.put(recordKey(sid), sealed, { expirationTtl: Math.max(KV_MIN_TTL, record.exp - now), metadata: { w: now } });
  }

  /**
   * Writes back a record a check changed (refreshed tokens, a newer key), unless the session ended
   * meanwhile. KV has no compare-and-swap: the tombstone is read after the write, and a write that
   * raced a logout is undone. False when the session has ended.
   */
  async putUnlessEnded(sid: string, record: SessionRecord, now: number): Promise<boolean> {
    await this.put(sid, record, now);
    if ((await this.kv.get(tombstoneKey(sid))) === null) return true;
    await this.kv.delete(recordKey(sid));
    return false;
  }

  /** The record, or undefined when it was deleted (logout, revocation), expired or unreadable. */
  async get(sid: string): Promise<{ record: SessionRecord; current: boolean } | undefined> {
    const sealed = await this.kv.get(recordKey(sid));
    if (sealed === null) return undefined;
    const opened = await open(this.keyring, this.purpose(sid), sealed);
    if (opened === undefined || !isSessionRecord(opened.value)) return undefined;
    return { record: opened.value, current: opened.current };
  }

  async delete(sid: string): Promise<void> {
    await this.kv.delete(recordKey(sid));
  }

  /**
   * Ends a session for good: the tombstone first (see `putUnlessEnded`), then the record goes —
   * also when the tombstone could not be written (the error is passed on after the delete).
   */
  async end(sid: string, now: number): Promise<void> {
    try {
      await writeTombstone(this.kv, sid, now);
    } finally {
      await this.kv.delete(recordKey(sid));
    }
  }
}
