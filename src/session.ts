/**
 * Session storage: the sealed session cookie (what the hot path needs, read without any I/O) and the
 * sealed KV record in `SESSIONS` (tokens and the server-side truth that makes revocation possible).
 * The shapes and KV keys are listed in docs/storage-schema.md.
 */
import type { IDToken } from "oauth4webapi";
import { serialize, type CookieOptions } from "hono/utils/cookie";
import { open, randomId, seal, type Keyring } from "./crypto";

/** Claims the gate passes on; everything else in the id_token is dropped to keep the cookie small. */
export interface UserClaims {
  readonly sub: string;
  readonly email?: string;
  readonly name?: string;
  readonly given_name?: string;
  readonly family_name?: string;
  readonly middle_name?: string;
  readonly phone_number?: string;
}

/** The session cookie's content. Times are epoch seconds. */
export interface SessionCookie {
  readonly v: 1;
  readonly sid: string;
  readonly user: UserClaims;
  /** Created at. */
  readonly iat: number;
  /** Absolute end (`SESSION_TTL` after creation). */
  readonly exp: number;
  /** Last check against KV (revocation) and the provider (refresh). */
  readonly chk: number;
  /** Last request seen, for `SESSION_IDLE_TTL`; refreshed coarsely to avoid a Set-Cookie per request. */
  readonly seen: number;
  /** The access token, only when `PASS_ACCESS_TOKEN=true` (the origin needs it on every request). */
  readonly at?: string;
}

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
export const SESSION_COOKIE = "kg_session";

/** Cookie attributes for this request's scheme: `__Host-` + `Secure` on https, plain on loopback http. */
export interface CookieScope {
  readonly secure: boolean;
}

export function cookieName(scope: CookieScope, base: string): string {
  return scope.secure ? `__Host-${base}` : base;
}

export function sessionCookieName(scope: CookieScope): string {
  return cookieName(scope, SESSION_COOKIE);
}

export function serializeCookie(scope: CookieScope, base: string, value: string, maxAge: number): string {
  const options: CookieOptions = { path: "/", httpOnly: true, sameSite: "Lax", maxAge: Math.max(0, Math.floor(maxAge)) };
  return scope.secure ? serialize(cookieName(scope, base), value, { ...options, secure: true, path: "/" }) : serialize(base, value, options);
}

export function clearCookie(scope: CookieScope, base: string): string {
  return serializeCookie(scope, base, "", 0);
}

export function userClaims(claims: IDToken): UserClaims {
  const pick = (key: string): string | undefined => (typeof claims[key] === "string" && claims[key] !== "" ? (claims[key] as string) : undefined);
  return Object.fromEntries(
    Object.entries({
      sub: claims.sub,
      email: pick("email"),
      name: pick("name"),
      given_name: pick("given_name"),
      family_name: pick("family_name"),
      middle_name: pick("middle_name"),
      phone_number: pick("phone_number"),
    }).filter(([, value]) => value !== undefined),
  ) as unknown as UserClaims;
}

function isSessionCookie(value: unknown): value is SessionCookie {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const user = v.user as Record<string, unknown> | undefined;
  return (
    v.v === 1 &&
    typeof v.sid === "string" &&
    typeof user === "object" &&
    user !== null &&
    typeof user.sub === "string" &&
    [v.iat, v.exp, v.chk, v.seen].every((n) => typeof n === "number" && Number.isFinite(n)) &&
    (v.at === undefined || typeof v.at === "string")
  );
}

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

export async function sealSessionCookie(keyring: Keyring, cookie: SessionCookie): Promise<string> {
  return seal(keyring, SESSION_COOKIE, cookie);
}

/** Opens the session cookie; anything forged, truncated or sealed with an unknown key is undefined. */
export async function openSessionCookie(keyring: Keyring, raw: string | undefined): Promise<{ cookie: SessionCookie; current: boolean } | undefined> {
  // Far above a real cookie (~1 KB): refuse to spend crypto on junk.
  if (raw === undefined || raw.length > 4096) return undefined;
  const opened = await open(keyring, SESSION_COOKIE, raw);
  if (opened === undefined || !isSessionCookie(opened.value)) return undefined;
  return { cookie: opened.value, current: opened.current };
}

function recordKey(sid: string): string {
  return `session:${sid}`;
}

export class SessionStore {
  constructor(
    private readonly kv: KVNamespace,
    private readonly keyring: Keyring,
  ) {}

  async put(sid: string, record: SessionRecord, now: number): Promise<void> {
    const sealed = await seal(this.keyring, recordKey(sid), record);
    await this.kv.put(recordKey(sid), sealed, { expirationTtl: Math.max(KV_MIN_TTL, record.exp - now) });
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
