/**
 * Logging in: the redirect to the provider (with the pending login sealed in its own cookie) and
 * the callback, which lets oauth4webapi validate the answer, creates the session (the KV record
 * first, then the cookie) and returns to the page first asked for.
 */
import { GateError } from "../common/errors";
import { log, logUser } from "../common/log";
import { describe } from "../oidc/decisions";
import { safeReturnPath } from "../policy/return-path";
import { userClaims } from "../oidc/claims";
import { carriedFits, openSessionCookie, readCookie, SESSION_COOKIE, serializeCookie, sealSessionCookie, sessionCookieName, type SessionCookie } from "./cookie";
import { endStoredSession } from "./logout";
import { storePendingLogin, takePendingLogin, type PendingLoginCookie } from "./pending-login";
import type { SessionRequest } from "./request";
import { checkedAt } from "./revalidate";
import { newSessionId, type SessionRecord } from "./store";
import { indexSession, unindexSession } from "./user-index";

/** The registered redirect URI: this host + AUTH_PREFIX + /callback. */
export function callbackUrl(req: Pick<SessionRequest, "url" | "runtime">): string {
  return `${req.url.origin}${req.runtime.config.authPrefix}/callback`;
}

/**
 * Starts a login: one redirect to the provider's authorization endpoint, with the pending login
 * sealed in its own cookie. `returnTo` is reduced to a path on this site first. `maxAge` (seconds,
 * a route's step-up) goes to the provider as `max_age` and is checked at the callback.
 */
export async function beginLogin(req: SessionRequest, cookieHeader: string, returnTo: string | undefined, maxAge?: number): Promise<Response> {
  const { runtime } = req;
  const { url: authorizationUrl, pending } = await runtime.oidc.authorizationUrl(callbackUrl(req), maxAge);
  const login: PendingLoginCookie = { ...pending, returnTo: safeReturnPath(returnTo, req.url.origin), iat: req.now };
  req.setCookies.push(...(await storePendingLogin(runtime.keyring, req.scope, cookieHeader, login, runtime.clock())));
  log("login_started", { pkce: pending.codeVerifier !== undefined, ...(maxAge === undefined ? {} : { max_age: maxAge }) });
  return new Response(null, { status: 302, headers: { location: authorizationUrl.href, "cache-control": "no-store" } });
}

/**
 * Completes a login at the callback: finds the pending login by `state`, lets oauth4webapi validate
 * the response and the tokens, creates the session and returns to the page first asked for.
 * Undefined when no pending login matches (the caller decides between a page and an existing session).
 */
export async function finishLogin(req: SessionRequest, cookieHeader: string): Promise<Response | undefined> {
  const { runtime } = req;
  const state = req.url.searchParams.get("state") ?? "";
  const taken = await takePendingLogin(runtime.keyring, req.scope, cookieHeader, state, req.now);
  if (taken === undefined) return undefined;
  const { login, clear } = taken;
  // The pending login is spent whatever happens next; after a failure "sign in again" returns to
  // the page first asked for, through a fresh login.
  req.setCookies.push(clear);
  req.returnTo = login.returnTo;
  const { config } = runtime;
  const tokens = await runtime.oidc.callback(req.url, login, callbackUrl(req));
  const user = userClaims(tokens.profile, config.claimHeaders.map(({ claim }) => claim));
  if (!carriedFits(user, config.passAccessToken ? tokens.accessToken : undefined)) {
    // A cookie browsers drop (or the gate refuses to open) would send the user round the login forever.
    throw new GateError("login_rejected", "The provider's claims are too large for the session cookie");
  }
  const authTime = tokens.claims.auth_time;
  const carried: Pick<SessionCookie, "user" | "at" | "ate" | "auth"> = {
    user,
    ...(config.passAccessToken ? { at: tokens.accessToken } : {}),
    ...(config.passAccessToken && tokens.accessTokenExpiresAt !== undefined ? { ate: tokens.accessTokenExpiresAt } : {}),
    ...(typeof authTime === "number" && Number.isFinite(authTime) ? { auth: authTime } : {}),
  };
  try {
    await createSession(req, carried, {
      sub: user.sub,
      accessToken: tokens.accessToken,
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
      refreshToken: tokens.refreshToken,
      idToken: tokens.idToken,
    }, typeof tokens.claims.sid === "string" ? tokens.claims.sid : undefined);
  } catch (error) {
    // KV did not take the record: no session without its record (it could never be revoked).
    throw new GateError("provider_unavailable", `The session record could not be stored (${describe(error)})`);
  }
  await endPreviousSession(req, cookieHeader);
  await logUser("login_ok", user.sub, { refresh_token: tokens.refreshToken !== undefined });
  return new Response(null, { status: 302, headers: { location: login.returnTo, "cache-control": "no-store" } });
}

/**
 * A new login in a browser ends the session that browser had (its cookie came with the callback):
 * it is replaced by the new cookie, and left running it would be a second, forgotten way in.
 */
async function endPreviousSession(req: SessionRequest, cookieHeader: string): Promise<void> {
  const previous = await openSessionCookie(req.runtime.keyring, readCookie(cookieHeader, sessionCookieName(req.scope)), req.url.hostname);
  if (previous === undefined) return;
  const { sid, user } = previous.cookie;
  await endStoredSession(req, sid, "new_login");
  // A leftover index entry would only make `npm run sessions -- list` skip a dead session.
  await unindexSession(req.store.kv, user.sub, sid).catch((error: unknown) => log("provider_error", { step: "kv_delete", reason: describe(error) }));
}

/**
 * Creates the session after a successful login: the KV record and its index entries first (a
 * session that could not be found by its user could not be signed out everywhere), then the
 * cookie. `providerSid` is the id_token's `sid`, for back-channel logout.
 */
export async function createSession(
  req: SessionRequest,
  carried: Pick<SessionCookie, "user" | "at" | "ate" | "auth">,
  record: Omit<SessionRecord, "iat" | "exp" | "v">,
  providerSid?: string,
): Promise<SessionCookie> {
  const { config, keyring } = req.runtime;
  const at = req.now;
  const exp = at + config.sessionTtl;
  const sid = newSessionId();
  await Promise.all([
    req.store.put(sid, { v: 1, ...record, iat: at, exp }, at),
    indexSession(req.store.kv, { sid, sub: record.sub, email: carried.user.email, providerSid, host: req.url.host, iat: at, exp }, at),
  ]);
  const cookie: SessionCookie = { v: 1, sid, ...carried, iat: at, exp, chk: checkedAt(config, record, at), seen: at };
  const sealed = await sealSessionCookie(keyring, cookie, req.url.hostname);
  req.setCookies.push(serializeCookie(req.scope, SESSION_COOKIE, sealed, config.sessionTtl));
  req.session = cookie;
  return cookie;
}
