/**
 * Logging out: the session ends for good in KV (a tombstone, then the record deleted) and the
 * cookie is cleared (local logout always works, even when KV or the provider fail), the session's
 * tokens are revoked at the provider after the response (./revoke.ts), then the visitor goes to the
 * signed-out page — through the provider's end-session endpoint when `LOGOUT_AT_PROVIDER=true`.
 * The answer also clears the browser's cache of personal pages.
 */
import { log, logUser } from "../common/log";
import { describe } from "../oidc/decisions";
import { safeReturnPath } from "../policy/return-path";
import { clearCookie, openSessionCookie, SESSION_COOKIE } from "./cookie";
import { revokeTokens } from "./revoke";
import type { SessionRequest } from "./request";
import type { SessionRecord } from "./store";

/**
 * Ends a stored session for good: what logout and a new login in the same browser both do. The
 * record is read first and returned (its id_token is the provider's end-session hint), and its
 * tokens are revoked at the provider after the response (./revoke.ts): the user left, so neither
 * the refresh token (15 days at Kontur) nor the access token should stay usable. KV failures are
 * logged, never thrown: the caller's local logout must happen anyway (the record then lives to its TTL).
 */
export async function endStoredSession(req: SessionRequest, sid: string, why: "logout" | "new_login"): Promise<SessionRecord | undefined> {
  const record = (await req.store.get(sid).catch(() => undefined))?.record;
  await req.store.end(sid, req.now).catch((error: unknown) => log("provider_error", { step: "kv_delete", reason: describe(error) }));
  if (record !== undefined) req.waitUntil(revokeTokens(req.runtime, record, why));
  return record;
}

/** Ends the session carried by `rawCookie` (if any) and answers with the redirect that follows. */
export async function logout(req: SessionRequest, rawCookie: string | undefined, returnTo: string | undefined): Promise<Response> {
  const { config, keyring, oidc } = req.runtime;
  const opened = await openSessionCookie(keyring, rawCookie, req.url.hostname);
  const ended = opened === undefined ? undefined : await endStoredSession(req, opened.cookie.sid, "logout");
  const fields = { had_session: opened !== undefined, at_provider: config.logoutAtProvider };
  if (opened === undefined) log("logout", fields);
  else await logUser("logout", opened.cookie.user.sub, fields);
  const signedOut = `${req.url.origin}${config.authPrefix}/signed-out`;
  let location = returnTo === undefined ? signedOut : safeReturnPath(returnTo, req.url.origin);
  if (config.logoutAtProvider && opened !== undefined) {
    // Local logout has happened already; a provider that cannot be reached must not undo it.
    const endSession = await oidc.endSessionUrl(ended?.idToken, signedOut).catch((error: unknown) => {
      log("provider_error", { step: "end_session", reason: describe(error) });
      return undefined;
    });
    if (endSession !== undefined) location = endSession.href;
  }
  req.setCookies.push(clearCookie(req.scope, SESSION_COOKIE));
  // Personal pages the browser kept (the back button, its HTTP cache) must not outlive the session
  // on a shared computer. Only "cache": "cookies" or "storage" would also wipe the site's own data.
  return new Response(null, { status: 303, headers: { location, "cache-control": "no-store", "clear-site-data": '"cache"' } });
}
