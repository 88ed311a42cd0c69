/**
 * Which session, if any, a request carries — the hot path. Between checks the sealed cookie is all
 * it reads (no KV, no provider). Once `SESSION_CHECK_INTERVAL` has passed, the KV record is read
 * (gone = revoked), the access token is refreshed when it is due, the provider's userinfo is asked
 * (./revalidate.ts: revoked at the provider, or new claims), and the cookie is re-issued.
 *
 * Kontur's refresh tokens are one-time, so a refresh must happen once per session, not once per
 * request: parallel requests in an isolate share one check (single flight), a request that finds
 * the record already refreshed since its cookie's last check takes that result instead of
 * refreshing again, and a refresh that loses a race with another isolate (`invalid_grant`) adopts
 * the winner's tokens from the record. Only `invalid_grant`, a changed identity, a 401/403 from
 * userinfo or an access token the session needs that expired with nothing to renew it end a
 * session; a provider or KV that fails leaves it running from the cookie and the check is retried soon.
 */
import { log, logUser } from "../common/log";
import type { Config } from "../config";
import { describe, RefreshError, type RefreshedTokens } from "../oidc/decisions";
import { clearCookie, sealSessionCookie, serializeCookie, SESSION_COOKIE, type SessionCookie } from "./cookie";
import { openCachedSessionCookie, type OpenedCookie } from "./cookie-cache";
import type { CheckOutcome, SessionRequest, SessionRuntime } from "./request";
import { accessTokenExpired, checkedAt, needsAccessToken, revalidate } from "./revalidate";
import type { SessionRecord, SessionStore } from "./store";

/** After a failed check (provider or KV down), try again this soon (or at the interval, if shorter). */
const RETRY_CHECK_AFTER = 30;
/** Waits before re-reading the record when a refresh lost a race (ms; about 2 s in all). */
const ADOPT_POLL_MS = [0, 250, 500, 1250];
/** Refresh an access token that expires within this many seconds after the next check. */
const REFRESH_MARGIN = 60;

function accessTokenDue(record: SessionRecord, at: number, interval: number): boolean {
  return record.accessTokenExpiresAt !== undefined && record.accessTokenExpiresAt <= at + interval + REFRESH_MARGIN;
}

/** The cookie with `record`'s access token (and its expiry), when the origin gets it. */
function withTokens(rt: SessionRuntime, cookie: SessionCookie, record: SessionRecord): SessionCookie {
  if (!rt.config.passAccessToken) return cookie;
  const { ate: _old, ...rest } = cookie;
  return { ...rest, at: record.accessToken, ...(record.accessTokenExpiresAt === undefined ? {} : { ate: record.accessTokenExpiresAt }) };
}

/** The session goes on with `record`'s tokens, checked now. */
function checked(rt: SessionRuntime, cookie: SessionCookie, record: SessionRecord, at: number): CheckOutcome {
  return { kind: "ok", cookie: { ...withTokens(rt, cookie, record), chk: checkedAt(rt.config, record, at) } };
}

/** The session goes on from the cookie (with `record`'s tokens when they are newer); the check is tried again soon. */
function retryLater(rt: SessionRuntime, cookie: SessionCookie, at: number, record?: SessionRecord): CheckOutcome {
  const interval = rt.config.sessionCheckInterval;
  const next = record === undefined ? cookie : withTokens(rt, cookie, record);
  return { kind: "ok", cookie: { ...next, chk: at - interval + Math.min(RETRY_CHECK_AFTER, interval) } };
}

/**
 * The end of a check with the record's current tokens: a needed access token that has expired ends
 * the session, then userinfo is asked (./revalidate.ts).
 */
async function concluded(rt: SessionRuntime, store: SessionStore, cookie: SessionCookie, record: SessionRecord, at: number): Promise<CheckOutcome> {
  if (needsAccessToken(rt.config) && accessTokenExpired(record, at)) {
    await store.delete(cookie.sid).catch(() => undefined);
    return { kind: "ended", reason: "access_token_expired" };
  }
  const verdict = await revalidate(rt, record, cookie.user);
  switch (verdict.kind) {
    case "ended":
      await store.delete(cookie.sid).catch(() => undefined);
      return { kind: "ended", reason: verdict.reason };
    case "unavailable":
      return retryLater(rt, cookie, at, record);
    case "ok":
      return checked(rt, { ...cookie, user: verdict.user }, record, at);
    case "unchanged":
      return checked(rt, cookie, record, at);
  }
}

async function check(rt: SessionRuntime, store: SessionStore, cookie: SessionCookie, at: number): Promise<CheckOutcome> {
  const { config } = rt;
  let found: Awaited<ReturnType<SessionStore["get"]>>;
  try {
    found = await withinTimeout(store.get(cookie.sid), config.oidcTimeout * 1000);
  } catch (error) {
    log("provider_error", { step: "kv_read", reason: describe(error) });
    return retryLater(rt, cookie, at);
  }
  if (found === undefined || found.record.sub !== cookie.user.sub) return { kind: "ended", reason: "revoked" };
  const { record } = found;
  // Another request (or isolate) refreshed after this cookie's last check: that was this round's
  // refresh. Reading the record right before calling the provider keeps one-time tokens single-use.
  const refreshedElsewhere = record.refreshedAt !== undefined && record.refreshedAt > cookie.chk;
  if (refreshedElsewhere || record.refreshToken === undefined || !accessTokenDue(record, at, config.sessionCheckInterval)) {
    // Re-seal under the newest key; a logout meanwhile wins.
    if (!found.current && !(await write(store, cookie.sid, record, at, "kv_reseal"))) return { kind: "ended", reason: "revoked" };
    return concluded(rt, store, cookie, record, at);
  }
  let tokens: RefreshedTokens;
  try {
    tokens = await rt.oidc.refresh(record.refreshToken, record.sub);
  } catch (error) {
    if (!(error instanceof RefreshError) || !error.fatal) {
      await logUser("refresh_failed", record.sub, { fatal: false, reason: describe(error) });
      return retryLater(rt, cookie, at);
    }
    if (error.failure === "grant_rejected") {
      // Another isolate may have used the same one-time token a moment earlier: adopt its result.
      const adopted = await adoptConcurrentRefresh(store, cookie.sid, record.refreshToken);
      if (adopted !== undefined) {
        await logUser("refresh_ok", record.sub, { adopted: true });
        return concluded(rt, store, cookie, adopted, at);
      }
    }
    await logUser("refresh_failed", record.sub, { fatal: true, failure: error.failure, reason: error.message });
    await store.delete(cookie.sid).catch(() => undefined);
    return { kind: "ended", reason: error.failure };
  }
  const refreshed: SessionRecord = {
    ...record,
    accessToken: tokens.accessToken,
    accessTokenExpiresAt: tokens.accessTokenExpiresAt,
    // One-time refresh tokens: the new one replaces the old; a provider that keeps it returns none.
    refreshToken: tokens.refreshToken ?? record.refreshToken,
    idToken: tokens.idToken ?? record.idToken,
    refreshedAt: at,
  };
  // A logout (or an operator's revocation) while the provider was answering deleted the record:
  // writing the refreshed one back would undo it. A revocation that only deletes is caught here;
  // a logout's tombstone also catches one that lands between this read and the write.
  const stillThere = await store.get(cookie.sid).catch(() => "unknown" as const);
  if (stillThere === undefined) return { kind: "ended", reason: "revoked" };
  // One write per check, whatever happened: the refreshed record also re-seals under the newest key.
  if (!(await write(store, cookie.sid, refreshed, at, "kv_write"))) return { kind: "ended", reason: "revoked" };
  await logUser("refresh_ok", record.sub);
  return concluded(rt, store, cookie, refreshed, at);
}

/**
 * KV has no timeout of its own, and every request of the session waits on this check (single
 * flight): a read that hangs is given up after the same bound as a provider call.
 */
function withinTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`KV did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Writes the record back unless the session ended meanwhile (false then). A KV failure is logged,
 * not thrown: the request goes on from the cookie. (A refreshed record that could not be stored
 * leaves a used refresh token in KV; the next refresh then gets `invalid_grant` and the session
 * ends — the one way a KV outage can end a session.)
 */
async function write(store: SessionStore, sid: string, record: SessionRecord, at: number, step: string): Promise<boolean> {
  try {
    return await store.putUnlessEnded(sid, record, at);
  } catch (error) {
    log("provider_error", { step, reason: describe(error) });
    return true;
  }
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
    if (found.record.refreshToken !== usedToken) return found.record;
  }
  return undefined;
}

/** Single flight per session id within the isolate; the map entry goes when the promise settles. */
function sharedCheck(rt: SessionRuntime, store: SessionStore, cookie: SessionCookie, at: number): Promise<CheckOutcome> {
  const running = rt.checks.get(cookie.sid);
  if (running !== undefined) return running;
  const started = check(rt, store, cookie, at).finally(() => rt.checks.delete(cookie.sid));
  rt.checks.set(cookie.sid, started);
  return started;
}

/**
 * Whether this request has nothing to do for its session: the cookie is sealed with the newest key,
 * inside its lifetime, not due for a check, and not due for an idle-time re-issue. Every condition
 * here is stricter than the one `settleSession` applies, so a request that passes has nothing to
 * end, check, re-issue or log.
 */
function nothingDue(opened: OpenedCookie, at: number, config: Config): boolean {
  const { cookie } = opened;
  const idle = config.sessionIdleTtl;
  return (
    opened.current &&
    at < cookie.exp &&
    at - cookie.chk < config.sessionCheckInterval &&
    (idle === undefined || at - cookie.seen < Math.max(1, Math.floor(idle / 4)))
  );
}

/**
 * The session carried by `rawCookie` after the checks that are due, or undefined (none, forged,
 * expired, revoked). A re-issued or cleared cookie goes into the request's cookies.
 */
export async function resolveSession(req: SessionRequest, rawCookie: string | undefined): Promise<SessionCookie | undefined> {
  if (rawCookie === undefined) return undefined;
  // Opened once per isolate and raw value; the time decisions still run on every request.
  const opened = await openCachedSessionCookie(req.runtime.keyring, rawCookie, req.url.hostname);
  // The common case costs no log context: nothing below can happen, so nothing can be logged.
  if (opened !== undefined && nothingDue(opened, req.now, req.runtime.config)) return opened.cookie;
  return req.logged(() => settleSession(req, opened));
}

/** Ends, checks or re-issues the session, whatever is due (every decision is made again here). */
async function settleSession(req: SessionRequest, opened: OpenedCookie | undefined): Promise<SessionCookie | undefined> {
  const { runtime: rt, now: at, store } = req;
  const { config } = rt;
  // Built only when a session ends: serializing a cookie is not free, and most requests keep theirs.
  const ended = (): undefined => {
    req.setCookies.push(clearCookie(req.scope, SESSION_COOKIE));
    return undefined;
  };
  if (opened === undefined) return ended();
  let cookie = opened.cookie;
  if (at >= cookie.exp) {
    await logUser("session_expired", cookie.user.sub, { reason: "ttl" });
    return ended();
  }
  if (config.sessionIdleTtl !== undefined && at - cookie.seen > config.sessionIdleTtl) {
    // Only this copy of the cookie is idle: another copy (a live tab, a restored backup) may have
    // kept the session going, so the record stays to its TTL and the live copy keeps working.
    await logUser("session_expired", cookie.user.sub, { reason: "idle" });
    return ended();
  }
  let reissue = !opened.current;
  if (at - cookie.chk >= config.sessionCheckInterval) {
    const outcome = await sharedCheck(rt, store, cookie, at);
    if (outcome.kind === "ended") {
      await logUser("session_revoked", cookie.user.sub, { reason: outcome.reason });
      return ended();
    }
    cookie = outcome.cookie;
    reissue = true;
  }
  // Idle tracking re-issues the cookie only now and then, not on every request.
  if (config.sessionIdleTtl !== undefined && at - cookie.seen >= Math.max(1, Math.floor(config.sessionIdleTtl / 4))) {
    cookie = { ...cookie, seen: at };
    reissue = true;
  }
  if (reissue) {
    const sealed = await sealSessionCookie(rt.keyring, cookie, req.url.hostname);
    req.setCookies.push(serializeCookie(req.scope, SESSION_COOKIE, sealed, cookie.exp - at));
  }
  return cookie;
}
