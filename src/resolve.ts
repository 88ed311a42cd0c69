/**
 * Which session, if any, a request carries — the hot path. Between checks the sealed cookie is all
 * it reads (no KV, no provider). Once `SESSION_CHECK_INTERVAL` has passed, the KV record is read
 * (gone = revoked), the access token is refreshed when it is due, and the cookie is re-issued.
 * Parallel requests of one session in an isolate share one check.
 */
import { describe, RefreshError } from "./oidc";
import { log } from "./log";
import type { Runtime } from "./runtime";
import {
  openSessionCookie,
  sealSessionCookie,
  serializeCookie,
  clearCookie,
  SessionStore,
  type CookieScope,
  type SessionCookie,
  type SessionRecord,
  SESSION_COOKIE,
} from "./session";

/** After a failed check (provider or KV down), try again this soon instead of on every request. */
const RETRY_CHECK_AFTER = 30;
/** Waits before re-reading the record when a refresh lost a race (ms; about 2 s in all). */
const ADOPT_POLL_MS = [0, 250, 500, 1250];
/** Refresh an access token that expires within this many seconds after the next check. */
const REFRESH_MARGIN = 60;

export type CheckOutcome =
  | { kind: "ok"; cookie: SessionCookie }
  | { kind: "ended"; reason: string };

export interface Resolved {
  /** The session after the check, or undefined (none, expired, revoked). */
  readonly session: SessionCookie | undefined;
  /** A Set-Cookie to send with the response: a re-issued or cleared session cookie. */
  readonly setCookie: string | undefined;
}

export function now(): number {
  return Math.floor(Date.now() / 1000);
}

function accessTokenDue(record: SessionRecord, at: number, interval: number): boolean {
  return record.accessTokenExpiresAt !== undefined && record.accessTokenExpiresAt <= at + interval + REFRESH_MARGIN;
}

async function check(rt: Runtime, store: SessionStore, cookie: SessionCookie, at: number): Promise<CheckOutcome> {
  const { config } = rt;
  let found: Awaited<ReturnType<SessionStore["get"]>>;
  try {
    found = await store.get(cookie.sid);
  } catch (error) {
    log("provider_error", { step: "kv_read", reason: describe(error) });
    return { kind: "ok", cookie: { ...cookie, chk: at - config.sessionCheckInterval + RETRY_CHECK_AFTER } };
  }
  if (found === undefined || found.record.sub !== cookie.user.sub) return { kind: "ended", reason: "revoked" };
  const { record } = found;
  if (!accessTokenDue(record, at, config.sessionCheckInterval) || record.refreshToken === undefined) {
    if (!found.current) await store.put(cookie.sid, record, at); // re-seal under the newest key
    return { kind: "ok", cookie: { ...cookie, chk: at } };
  }
  try {
    const tokens = await rt.oidc.refresh(record.refreshToken, record.sub);
    const refreshed: SessionRecord = {
      ...record,
      accessToken: tokens.accessToken,
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
      // One-time refresh tokens: the new one replaces the old; a provider that keeps it returns none.
      refreshToken: tokens.refreshToken ?? record.refreshToken,
      idToken: tokens.idToken ?? record.idToken,
    };
    await store.put(cookie.sid, refreshed, at);
    log("refresh_ok");
    return { kind: "ok", cookie: withAccessToken(rt, { ...cookie, chk: at }, refreshed) };
  } catch (error) {
    if (error instanceof RefreshError && error.fatal) {
      // Another isolate may have used the same one-time token a moment earlier: adopt its result.
      const adopted = await adoptConcurrentRefresh(store, cookie.sid, record.refreshToken);
      if (adopted !== undefined) return { kind: "ok", cookie: withAccessToken(rt, { ...cookie, chk: at }, adopted) };
      log("refresh_failed", { fatal: true, reason: error.message });
      await store.delete(cookie.sid);
      return { kind: "ended", reason: "refresh_rejected" };
    }
    log("refresh_failed", { fatal: false, reason: describe(error) });
    return { kind: "ok", cookie: { ...cookie, chk: at - config.sessionCheckInterval + RETRY_CHECK_AFTER } };
  }
}

function withAccessToken(rt: Runtime, cookie: SessionCookie, record: SessionRecord): SessionCookie {
  return rt.config.passAccessToken ? { ...cookie, at: record.accessToken } : cookie;
}

/**
 * After `invalid_grant`, looks for a refresh another isolate made with the same token: its record
 * then carries a different refresh token. Polls briefly, because the winner writes only after the
 * provider has answered it.
 */
async function adoptConcurrentRefresh(store: SessionStore, sid: string, usedToken: string): Promise<SessionRecord | undefined> {
  for (const delay of ADOPT_POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    const found = await store.get(sid).catch(() => undefined);
    if (found === undefined) return undefined;
    if (found.record.refreshToken !== usedToken) {
      log("refresh_ok", { adopted: true });
      return found.record;
    }
  }
  return undefined;
}

/** Single flight per session id within the isolate; the map entry goes when the promise settles. */
function sharedCheck(rt: Runtime, store: SessionStore, cookie: SessionCookie, at: number): Promise<CheckOutcome> {
  const running = rt.checks.get(cookie.sid);
  if (running !== undefined) return running;
  const started = check(rt, store, cookie, at).finally(() => rt.checks.delete(cookie.sid));
  rt.checks.set(cookie.sid, started);
  return started;
}

/**
 * Resolves the session carried by `rawCookie`. `waitUntil` keeps KV clean-up alive after the
 * response without delaying it.
 */
export async function resolveSession(
  rt: Runtime,
  kv: KVNamespace,
  scope: CookieScope,
  rawCookie: string | undefined,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<Resolved> {
  if (rawCookie === undefined) return { session: undefined, setCookie: undefined };
  const { config } = rt;
  const cleared = clearCookie(scope, SESSION_COOKIE);
  const opened = await openSessionCookie(rt.keyring, rawCookie);
  if (opened === undefined) return { session: undefined, setCookie: cleared };
  const at = now();
  const store = new SessionStore(kv, rt.keyring);
  let cookie = opened.cookie;
  if (at >= cookie.exp) {
    log("session_expired", { reason: "ttl" });
    return { session: undefined, setCookie: cleared };
  }
  if (config.sessionIdleTtl !== undefined && at - cookie.seen > config.sessionIdleTtl) {
    log("session_expired", { reason: "idle" });
    waitUntil(store.delete(cookie.sid).catch(() => undefined));
    return { session: undefined, setCookie: cleared };
  }
  let reissue = !opened.current;
  if (at - cookie.chk >= config.sessionCheckInterval) {
    const outcome = await sharedCheck(rt, store, cookie, at);
    if (outcome.kind === "ended") {
      log("session_revoked", { reason: outcome.reason });
      return { session: undefined, setCookie: cleared };
    }
    cookie = outcome.cookie;
    reissue = true;
  }
  // Idle tracking re-issues the cookie only now and then, not on every request.
  if (config.sessionIdleTtl !== undefined && at - cookie.seen >= Math.max(1, Math.floor(config.sessionIdleTtl / 4))) {
    cookie = { ...cookie, seen: at };
    reissue = true;
  }
  if (!reissue) return { session: cookie, setCookie: undefined };
  const sealed = await sealSessionCookie(rt.keyring, cookie);
  return { session: cookie, setCookie: serializeCookie(scope, SESSION_COOKIE, sealed, cookie.exp - at) };
}

/** Creates the session after a successful login: the KV record first, then the cookie. */
export async function createSession(
  rt: Runtime,
  kv: KVNamespace,
  scope: CookieScope,
  sid: string,
  cookie: Omit<SessionCookie, "sid" | "iat" | "exp" | "chk" | "seen" | "v">,
  record: Omit<SessionRecord, "iat" | "exp" | "v">,
): Promise<{ cookie: SessionCookie; setCookie: string }> {
  const at = now();
  const exp = at + rt.config.sessionTtl;
  await new SessionStore(kv, rt.keyring).put(sid, { v: 1, ...record, iat: at, exp }, at);
  const full: SessionCookie = { v: 1, sid, ...cookie, iat: at, exp, chk: at, seen: at };
  const sealed = await sealSessionCookie(rt.keyring, full);
  return { cookie: full, setCookie: serializeCookie(scope, SESSION_COOKIE, sealed, rt.config.sessionTtl) };
}
