/**
 * Pending logins: what must survive the trip to the provider (state, nonce, PKCE verifier, return
 * path) lives in a sealed cookie per login, named after its state, so the browser can neither read
 * nor forge it and logins started in several tabs each complete. Their number is capped.
 */
import { parse } from "hono/utils/cookie";
import type { PendingLogin } from "../oidc/client";
import { clearCookie, cookieName, serializeCookie, type CookieScope } from "./cookie";
import { open, seal, type Keyring } from "./seal";

/** Logins with certificates or 2FA can take many minutes. */
export const PENDING_LOGIN_TTL = 30 * 60;
/** Oldest pending logins beyond this many are dropped, so cookies cannot pile up. */
export const MAX_PENDING_LOGINS = 4;
const PREFIX = "kg_login_";
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
    (v.maxAge === undefined || typeof v.maxAge === "number") &&
    typeof v.returnTo === "string" &&
    typeof v.iat === "number"
  );
}

/** Names of pending-login cookies among the request's parsed cookies, oldest first. */
function pendingNames(scope: CookieScope, cookies: Record<string, string>): string[] {
  return Object.keys(cookies)
    .filter((name) => isPendingLoginCookie(scope, name))
    .sort();
}

/**
 * The new cookie's age stamp in milliseconds, later than every pending login the browser holds:
 * workerd's clock stands still within a request and two logins can share a millisecond, yet the
 * names must sort by age for the cap to drop the oldest.
 */
function nextStamp(scope: CookieScope, existing: readonly string[], nowMs: number): number {
  const prefix = cookieName(scope, PREFIX);
  const newest = Math.max(0, ...existing.map((name) => parseInt(name.slice(prefix.length).split("_", 1)[0] ?? "", 36) || 0));
  return Math.max(nowMs, newest + 1);
}

/** Set-Cookie headers that store a new pending login and drop the oldest beyond the cap. */
export async function storePendingLogin(
  keyring: Keyring,
  scope: CookieScope,
  cookieHeader: string,
  login: PendingLoginCookie,
  nowMs: number,
): Promise<string[]> {
  const existing = pendingNames(scope, parse(cookieHeader));
  const dropped = existing.slice(0, Math.max(0, existing.length - (MAX_PENDING_LOGINS - 1)));
  const sealed = await seal(keyring, purpose(login.state), login);
  return [
    ...dropped.map((name) => clearCookie(scope, baseOf(scope, name))),
    serializeCookie(scope, baseName(login.state, nextStamp(scope, existing, nowMs)), sealed, PENDING_LOGIN_TTL),
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
  for (const name of pendingNames(scope, cookies)) {
    if (!name.endsWith(suffix)) continue;
    const opened = await open(keyring, purpose(state), cookies[name] ?? "");
    if (opened === undefined || !isPendingLoginCookieValue(opened.value, state)) continue;
    if (now - opened.value.iat > PENDING_LOGIN_TTL) continue;
    return { login: opened.value, clear: clearCookie(scope, baseOf(scope, name)) };
  }
  return undefined;
}
