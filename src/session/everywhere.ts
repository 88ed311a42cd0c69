/**
 * Signing out here and everywhere. "Everywhere" ends every session of the user, on every host and
 * browser, through the per-user index (./user-index.ts): each other session is refused at its next
 * check (its record is gone), this one at once (its cookie is cleared too), and the tokens of each
 * are revoked at the provider after the response. After an ordinary logout a short-lived sealed
 * cookie remembers whose session it was, so the signed-out page can offer "sign out everywhere" to
 * a visitor who is no longer signed in.
 */
import { GateError } from "../common/errors";
import { log, logUser } from "../common/log";
import { describe } from "../oidc/decisions";
import { clearCookie, cookieName, openSessionCookie, serializeCookie, type CookieScope } from "./cookie";
import { logout } from "./logout";
import type { SessionRequest } from "./request";
import { recordsToRevoke, revokeTokens } from "./revoke";
import { open, seal, type Keyring } from "./seal";
import { endSessions, sessionsOfUser, unindexSession } from "./user-index";

/** The cookie that remembers, for a while after logout, whose session this browser ended. */
export const SIGNED_OUT_COOKIE = "kg_signed_out";
/** Seconds the signed-out page can still end the user's other sessions. */
const SIGNED_OUT_TTL = 600;

export function signedOutCookieName(scope: CookieScope): string {
  return cookieName(scope, SIGNED_OUT_COOKIE);
}

/** The `sub` whose session this browser ended less than SIGNED_OUT_TTL ago, if any. */
export async function signedOutUser(keyring: Keyring, raw: string | undefined, now: number): Promise<string | undefined> {
  if (raw === undefined || raw.length > 1024) return undefined;
  const opened = await open(keyring, SIGNED_OUT_COOKIE, raw);
  const value = opened?.value as { sub?: unknown; exp?: unknown } | undefined;
  if (typeof value?.sub !== "string" || typeof value.exp !== "number" || value.exp <= now) return undefined;
  return value.sub;
}

/** Ends this browser's session (./logout.ts) and its index entry, and remembers whose it was. */
export async function logoutHere(req: SessionRequest, rawCookie: string | undefined, returnTo: string | undefined): Promise<Response> {
  const opened = await openSessionCookie(req.runtime.keyring, rawCookie, req.url.hostname);
  const response = await logout(req, rawCookie, returnTo);
  if (opened !== undefined) {
    const { sid, user } = opened.cookie;
    // A leftover index entry would only make `npm run sessions -- list` skip a dead session.
    req.waitUntil(unindexSession(req.store.kv, user.sub, sid).catch((error: unknown) => log("provider_error", { step: "kv_delete", reason: describe(error) })));
    const sealed = await seal(req.runtime.keyring, SIGNED_OUT_COOKIE, { sub: user.sub, exp: req.now + SIGNED_OUT_TTL });
    req.setCookies.push(serializeCookie(req.scope, SIGNED_OUT_COOKIE, sealed, SIGNED_OUT_TTL));
  }
  return response;
}

/**
 * `POST /logout` with `everywhere=1`: ends every session of the signed-in user (or of the user
 * this browser signed out a moment ago), then this browser's as an ordinary logout does. When KV
 * cannot list or delete, this browser is still signed out and the visitor is told it failed.
 */
export async function logoutEverywhere(
  req: SessionRequest,
  rawCookie: string | undefined,
  rawSignedOut: string | undefined,
  returnTo: string | undefined,
): Promise<Response> {
  const { keyring } = req.runtime;
  const sub = (await openSessionCookie(keyring, rawCookie, req.url.hostname))?.cookie.user.sub ?? (await signedOutUser(keyring, rawSignedOut, req.now));
  // This browser first: its record still holds the id_token the provider's end-session page wants.
  const response = await logout(req, rawCookie, returnTo);
  req.setCookies.push(clearCookie(req.scope, SIGNED_OUT_COOKIE));
  let failure: unknown;
  let ended = 0;
  let revoking = 0;
  if (sub !== undefined) {
    try {
      const sessions = await sessionsOfUser(req.store.kv, sub);
      const records = await recordsToRevoke(req.store.kv, keyring, sessions.map(({ sid, entry }) => ({ sid, host: entry.host })));
      ended = await endSessions(req.store.kv, sessions, req.now);
      revoking = records.length;
      for (const record of records) req.waitUntil(revokeTokens(req.runtime, record, "everywhere"));
    } catch (error) {
      failure = error;
    }
    // `revoking` below `ended`: sessions past MAX_REVOKED_SESSIONS, or records that could not be read.
    await logUser("logout", sub, { everywhere: true, ended, revoking, ...(failure === undefined ? {} : { reason: describe(failure) }) });
  }
  if (failure !== undefined) throw new GateError("provider_unavailable", `Signing out everywhere failed (${describe(failure)})`);
  return response;
}
