/**
 * The sealed session cookie: what the hot path needs, read without any I/O. Also the cookie scope
 * of a request (`__Host-` + `Secure` on https, plain on loopback http) and the gate's cookie names.
 * The shape is listed in docs/storage-schema.md.
 */
import { serialize, type CookieOptions } from "hono/utils/cookie";
import { isLoopbackHost } from "../config";
import { GateError } from "../common/errors";
import type { UserClaims } from "../oidc/claims";
import { open, seal, type Keyring } from "./seal";

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
  /**
   * The id_token's `auth_time` at login: when the user last authenticated at the provider, for
   * routes with `max_age` (step-up) and the assertion. Absent when the provider did not say.
   */
  readonly auth?: number;
  /** When `at` expires (epoch seconds), when the provider said; an expired one is never forwarded. */
  readonly ate?: number;
}

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

/**
 * The value of the first cookie called `name` in a `Cookie` header, as it was sent. The gate's own
 * cookie values are base64url (seals), which `serializeCookie` writes unchanged, so nothing needs
 * decoding, and a value that is not one of ours fails to open whatever it is. Read on every
 * request: Hono's `getCookie` also validates and decodes each value, which cost more than all the
 * rest of the cookie's work on a signed-in request.
 */
export function readCookie(header: string | null | undefined, name: string): string | undefined {
  if (header === null || header === undefined || !header.includes(name)) return undefined;
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

export function serializeCookie(scope: CookieScope, base: string, value: string, maxAge: number): string {
  const options: CookieOptions = { path: "/", httpOnly: true, sameSite: "Lax", maxAge: Math.max(0, Math.floor(maxAge)) };
  return scope.secure ? serialize(cookieName(scope, base), value, { ...options, secure: true, path: "/" }) : serialize(base, value, options);
}

export function clearCookie(scope: CookieScope, base: string): string {
  return serializeCookie(scope, base, "", 0);
}


/**
 * `__Host-` + `Secure` cookies on https. Plain http is accepted only on loopback hosts (local
 * development), where browsers keep such cookies; elsewhere a session would travel in clear text.
 */
export function cookieScope(url: URL): CookieScope {
  if (url.protocol === "https:") return { secure: true };
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return { secure: false };
  throw new GateError("insecure_transport", `Refused a plain-http request to ${url.hostname}: sessions need https`);
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
    (v.at === undefined || typeof v.at === "string") &&
    (v.auth === undefined || (typeof v.auth === "number" && Number.isFinite(v.auth))) &&
    (v.ate === undefined || typeof v.ate === "number")
  );
}

/**
 * The session cookie is sealed for the host name it was issued on: the same cookie moved to another
 * host the gate serves (or to another deployment sharing `SESSION_SECRETS`) opens to nothing. The
 * port is left out, as browsers leave it out of a cookie's scope.
 */
function cookiePurpose(host: string): string {
  return `${SESSION_COOKIE}@${host}`;
}

/**
 * Claims (and the access token with PASS_ACCESS_TOKEN) the session cookie carries, as UTF-8 JSON.
 * Sealed with the session's own fields this stays under the 4 KB a browser keeps per cookie; real
 * Kontur claims take ~300 bytes.
 */
const MAX_CARRIED_BYTES = 2048;

/** Whether these claims and token fit the cookie: one browsers drop would send the user round the login forever. */
export function carriedFits(user: UserClaims, accessToken: string | undefined): boolean {
  const carried = accessToken === undefined ? { user } : { user, at: accessToken };
  return new TextEncoder().encode(JSON.stringify(carried)).length <= MAX_CARRIED_BYTES;
}

export async function sealSessionCookie(keyring: Keyring, cookie: SessionCookie, host: string): Promise<string> {
  return seal(keyring, cookiePurpose(host), cookie);
}

/**
 * Opens the session cookie presented to `host`; anything forged, truncated, sealed with an unknown
 * key or for another host is undefined.
 */
export async function openSessionCookie(keyring: Keyring, raw: string | undefined, host: string): Promise<{ cookie: SessionCookie; current: boolean } | undefined> {
  // Far above a real cookie (~1 KB): refuse to spend crypto on junk.
  if (raw === undefined || raw.length > 4096) return undefined;
  const opened = await open(keyring, cookiePurpose(host), raw);
  if (opened === undefined || !isSessionCookie(opened.value)) return undefined;
  return { cookie: opened.value, current: opened.current };
}
