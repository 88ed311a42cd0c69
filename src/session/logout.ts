/**
 * Logging out: the KV record is deleted and the cookie cleared (local logout always works, even
 * when KV or the provider fail), then the visitor goes to the signed-out page — through the
 * provider's end-session endpoint when `LOGOUT_AT_PROVIDER=true`.
 */
import { log, logUser } from "../common/log";
import { describe } from "../oidc/decisions";
import { safeReturnPath } from "../policy/return-path";
import { clearCookie, openSessionCookie, SESSION_COOKIE } from "./cookie";
import type { SessionRequest } from "./request";

/** Ends the session carried by `rawCookie` (if any) and answers with the redirect that follows. */
export async function logout(req: SessionRequest, rawCookie: string | undefined, returnTo: string | undefined): Promise<Response> {
  const { config, keyring, oidc } = req.runtime;
  const opened = await openSessionCookie(keyring, rawCookie);
  let idToken: string | undefined;
  if (opened !== undefined) {
    idToken = (await req.store.get(opened.cookie.sid).catch(() => undefined))?.record.idToken;
    // Local logout must always work: a KV failure leaves the record to its TTL, the cookie still goes.
    await req.store.delete(opened.cookie.sid).catch((error: unknown) => log("provider_error", { step: "kv_delete", reason: describe(error) }));
  }
  const fields = { had_session: opened !== undefined, at_provider: config.logoutAtProvider };
  if (opened === undefined) log("logout", fields);
  else await logUser("logout", opened.cookie.user.sub, fields);
  const signedOut = `${req.url.origin}${config.authPrefix}/signed-out`;
  let location = returnTo === undefined ? signedOut : safeReturnPath(returnTo, req.url.origin);
  if (config.logoutAtProvider && opened !== undefined) {
    // Local logout has happened already; a provider that cannot be reached must not undo it.
    const endSession = await oidc.endSessionUrl(idToken, signedOut).catch((error: unknown) => {
      log("provider_error", { step: "end_session", reason: describe(error) });
      return undefined;
    });
    if (endSession !== undefined) location = endSession.href;
  }
  req.setCookies.push(clearCookie(req.scope, SESSION_COOKIE));
  return new Response(null, { status: 303, headers: { location, "cache-control": "no-store" } });
}
