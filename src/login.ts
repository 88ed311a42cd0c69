/**
 * Pending logins: what must survive the trip to the provider (state, nonce, PKCE verifier, return
 * path) lives in a sealed cookie per login, named after its state, so the browser can neither read
 * nor forge it and logins started in several tabs each complete. Their number is capped.
 */
import { parse } from "hono/utils/cookie";
import { open, seal, type Keyring } from "./crypto";
import { GateError } from "./errors";
import { log, logUser } from "./log";
import { describe, type PendingLogin } from "./oidc";
import { safeReturnPath } from "./policy";
import { callbackUrl, cookieScope } from "./request";
import { createSession, now } from "./resolve";
import type { Runtime } from "./runtime";
import { clearCookie, cookieName, newSessionId, serializeCookie, userClaims, type CookieScope } from "./session";

/** Logins with certificates or 2FA can take many minutes. */
export const PENDING_LOGIN_TTL = 30 * 60;
/** Oldest pending logins beyond this many are dropped, so cookies cannot pile up. */
export const MAX_PENDING_LOGINS = 4;
const PREFIX = "kg_login_";
/** Seconds a visitor is asked to wait when the session store is unavailable at login. */
const KV_RETRY_AFTER = 30;
/**
 * Claims (and the access token with PASS_ACCESS_TOKEN) the session cookie carries, as UTF-8 JSON.
 * Sealed with the session's own fields this stays under the 4 KB a browser keeps per cookie; real
 * Kontur claims take ~300 bytes.
 */
const MAX_CARRIED_BYTES = 2048;
// Enough of the state to tell pending logins apart; the whole state is checked inside the seal.
const STATE_CHARS = 16;

export interface PendingLoginCookie extends PendingLogin {
  /** Where to go after the login: a path on this site, already validated. */
  readonly returnTo: string;
  /** Epoch seconds. */
  readonly iat: number;
}

/** `kg_login_<created, ms in base36>_<state prefix>`: the name sorts by age and points at the state. */
function baseName(state: string, createdAt: number): string {
  return `${PREFIX}${createdAt.toString(36)}_${state.slice(0, STATE_CHARS)}`;
}

export function isPendingLoginCookie(scope: CookieScope, name: string): boolean {
  return name.startsWith(cookieName(scope, PREFIX));
}

/** The full cookie name back to the base name `serializeCookie` takes. */
function baseOf(scope: CookieScope, name: string): string {
  return scope.secure ? name.slice("__Host-".length) : name;
}

function purpose(state: string): string {
  return `login:${state}`;
}

function isPendingLoginCookieValue(value: unknown, state: string): value is PendingLoginCookie {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    v.state === state &&
    typeof v.nonce === "string" &&
    (v.codeVerifier === undefined || typeof v.codeVerifier === "string") &&
    typeof v.returnTo === "string" &&
    typeof v.iat === "number"
  );
}

/** Names of pending-login cookies present in the request, oldest first. */
function pendingNames(scope: CookieScope, cookieHeader: string): string[] {
  return Object.keys(parse(cookieHeader))
    .filter((name) => isPendingLoginCookie(scope, name))
    .sort();
}

/**
 * The new cookie's age stamp in milliseconds, later than every pending login the browser holds:
 * workerd's clock stands still within a request and two logins can share a millisecond, yet the
 * names must sort by age for the cap to drop the oldest.
 */
function nextStamp(scope: CookieScope, existing: readonly string[]): number {
  const prefix = cookieName(scope, PREFIX);
  const newest = Math.max(0, ...existing.map((name) => parseInt(name.slice(prefix.length).split("_", 1)[0] ?? "", 36) || 0));
  return Math.max(Date.now(), newest + 1);
}

/** Set-Cookie headers that store a new pending login and drop the oldest beyond the cap. */
export async function storePendingLogin(
  keyring: Keyring,
  scope: CookieScope,
  cookieHeader: string,
  login: PendingLoginCookie,
): Promise<string[]> {
  const existing = pendingNames(scope, cookieHeader);
  const dropped = existing.slice(0, Math.max(0, existing.length - (MAX_PENDING_LOGINS - 1)));
  const sealed = await seal(keyring, purpose(login.state), login);
  return [
    ...dropped.map((name) => clearCookie(scope, baseOf(scope, name))),
    serializeCookie(scope, baseName(login.state, nextStamp(scope, existing)), sealed, PENDING_LOGIN_TTL),
  ];
}

/**
 * The pending login the callback's `state` refers to, and the Set-Cookie that consumes it.
 * Undefined when there is none (expired, another browser, replayed, forged).
 */
export async function takePendingLogin(
  keyring: Keyring,
  scope: CookieScope,
  cookieHeader: string,
  state: string,
  now: number,
): Promise<{ login: PendingLoginCookie; clear: string } | undefined> {
  if (state.length < STATE_CHARS || state.length > 1500) return undefined;
  const cookies = parse(cookieHeader);
  const suffix = `_${state.slice(0, STATE_CHARS)}`;
  for (const name of pendingNames(scope, cookieHeader)) {
    if (!name.endsWith(suffix)) continue;
    const opened = await open(keyring, purpose(state), cookies[name] ?? "");
    if (opened === undefined || !isPendingLoginCookieValue(opened.value, state)) continue;
    if (now - opened.value.iat > PENDING_LOGIN_TTL) continue;
    return { login: opened.value, clear: clearCookie(scope, baseOf(scope, name)) };
  }
  return undefined;
}

/**
 * Starts a login: one redirect to the provider's authorization endpoint, with the pending login
 * sealed in its own cookie. `returnTo` is reduced to a path on this site first.
 */
export async function beginLogin(rt: Runtime, url: URL, cookieHeader: string, returnTo: string | undefined): Promise<Response> {
  const scope = cookieScope(url);
  const { url: authorizationUrl, pending } = await rt.oidc.authorizationUrl(callbackUrl(url, rt.config));
  const login: PendingLoginCookie = { ...pending, returnTo: safeReturnPath(returnTo, url.origin), iat: now() };
  const cookies = await storePendingLogin(rt.keyring, scope, cookieHeader, login);
  log("login_started", { pkce: pending.codeVerifier !== undefined });
  const headers = new Headers({ location: authorizationUrl.href, "cache-control": "no-store" });
  for (const cookie of cookies) headers.append("set-cookie", cookie);
  return new Response(null, { status: 302, headers });
}

/**
 * Completes a login at the callback: finds the pending login by `state`, lets oauth4webapi validate
 * the response and the tokens, creates the session and returns to the page first asked for.
 * Undefined when no pending login matches (the caller decides between a page and an existing session).
 */
export async function finishLogin(rt: Runtime, kv: KVNamespace, url: URL, cookieHeader: string): Promise<Response | undefined> {
  const scope = cookieScope(url);
  const state = url.searchParams.get("state") ?? "";
  const taken = await takePendingLogin(rt.keyring, scope, cookieHeader, state, now());
  if (taken === undefined) return undefined;
  const { login, clear } = taken;
  let tokens;
  try {
    tokens = await rt.oidc.callback(url, login, callbackUrl(url, rt.config));
  } catch (error) {
    if (error instanceof GateError) {
      // The pending login is spent either way: a retry starts a fresh one.
      throw new GateError(error.code, error.message, { ...error.options, returnTo: login.returnTo, setCookies: [clear] });
    }
    throw error;
  }
  const sid = newSessionId();
  const user = userClaims(tokens.claims);
  const carried = { user, ...(rt.config.passAccessToken ? { at: tokens.accessToken } : {}) };
  if (new TextEncoder().encode(JSON.stringify(carried)).length > MAX_CARRIED_BYTES) {
    // A cookie browsers drop (or the gate refuses to open) would send the user round the login forever.
    throw new GateError("login_rejected", "The provider's claims are too large for the session cookie", {
      returnTo: login.returnTo,
      setCookies: [clear],
    });
  }
  let session: Awaited<ReturnType<typeof createSession>>;
  try {
    session = await createSession(rt, kv, scope, sid, carried, {
      sub: user.sub,
      accessToken: tokens.accessToken,
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
      refreshToken: tokens.refreshToken,
      idToken: tokens.idToken,
    });
  } catch (error) {
    // KV did not take the record: no session without its record (it could never be revoked).
    throw new GateError("provider_unavailable", `The session record could not be stored (${describe(error)})`, {
      retryAfter: KV_RETRY_AFTER,
      returnTo: login.returnTo,
      setCookies: [clear],
    });
  }
  await logUser("login_ok", user.sub, { refresh_token: tokens.refreshToken !== undefined });
  const headers = new Headers({ location: login.returnTo, "cache-control": "no-store" });
  headers.append("set-cookie", clear);
  headers.append("set-cookie", session.setCookie);
  return new Response(null, { status: 302, headers });
}
