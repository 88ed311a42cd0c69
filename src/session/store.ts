/**
 * The sealed session record in `SESSIONS` (key `session:<sid>`): the tokens and the server-side
 * truth that makes revocation possible. Keys, shapes and TTLs are listed in docs/storage-schema.md.
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

export class SessionStore {
  constructor(
    /** Also where the per-user index lives (./user-index.ts). */
    readonly kv: KVNamespace,
    private readonly keyring: Keyring,
  ) {}

  async put(sid: string, record: SessionRecord, now: number): Promise<void> {
    const sealed = await seal(this.keyring, recordKey(sid), record);
    // `w`: when the record was last written (login, refresh, re-seal), for `npm run sessions -- list`.
    await this.kv.put(recordKey(sid), sealed, { expirationTtl: Math.max(KV_MIN_TTL, record.exp - now), metadata: { w: now } });
  }

  /** The record, or undefined when it was deleted (logout, revocation), expired or unreadable. */
  async get(sid: string): Promise<{ record: SessionRecord; current: boolean } | undefined> {
    const sealed = await this.kv.get(recordKey(sid));
    if (sealed === null) return undefined;
    const opened = await open(this.keyring, recordKey(sid), sealed);
    if (opened === undefined || !isSessionRecord(opened.value)) return undefined;
    return { record: opened.value, current: opened.current };
  }

  async delete(sid: string): Promise<void> {
    await this.kv.delete(recordKey(sid));
  }
}
