/**
 * Opened session cookies, kept per isolate: a browser sends the same sealed value on every request
 * until the gate re-issues it, and opening it (base64url, AES-GCM, JSON, shape check) was the
 * largest single cost of a signed-in request.
 *
 * What makes this safe: the key is the exact raw cookie value, so only a value that once opened
 * with one of our keys can hit; a value that fails to open or validate is never stored; each
 * keyring has its own cache, so a rotation of `SESSION_SECRETS` (a new runtime, a new keyring)
 * starts empty; values are frozen, so no request can change what the next one reads. Only the
 * opening is saved — every time-based decision (`exp`, the idle limit, the check interval) runs
 * on every request in session/check.ts.
 *
 * The key must hold everything the opening depends on besides the keyring: the raw value and the
 * host name the seal's purpose names, or a cookie opened on one host would be accepted on another.
 */
import { openSessionCookie, type SessionCookie } from "./cookie";
import type { Keyring } from "./seal";

/** About 2,000 sessions an isolate served recently: a few MB at most, far below an isolate's 128 MB. */
export const COOKIE_CACHE_SIZE = 2000;

export interface OpenedCookie {
  readonly cookie: SessionCookie;
  /** False when an older key sealed it: the cookie is re-issued under the newest key. */
  readonly current: boolean;
}

/** One map per keyring; insertion order is the eviction order (the oldest entry goes first). */
const caches = new WeakMap<Keyring, Map<string, OpenedCookie>>();

function cacheFor(keyring: Keyring): Map<string, OpenedCookie> {
  let cache = caches.get(keyring);
  if (cache === undefined) {
    cache = new Map();
    caches.set(keyring, cache);
  }
  return cache;
}

function frozen(opened: OpenedCookie): OpenedCookie {
  const cookie = Object.freeze({ ...opened.cookie, user: Object.freeze({ ...opened.cookie.user }) });
  return Object.freeze({ cookie, current: opened.current });
}

/**
 * `openSessionCookie`, remembered per host name and exact raw value: anything forged, malformed or
 * sealed for another host is undefined and never stored.
 */
export async function openCachedSessionCookie(keyring: Keyring, raw: string, host: string): Promise<OpenedCookie | undefined> {
  const cache = cacheFor(keyring);
  // A space cannot occur in a host name, so no two (host, value) pairs share a key.
  const key = `${host} ${raw}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const opened = await openSessionCookie(keyring, raw, host);
  if (opened === undefined) return undefined;
  const entry = frozen(opened);
  if (cache.size >= COOKIE_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, entry);
  return entry;
}

/** How many opened cookies the keyring's cache holds (for tests and the benchmark). */
export function cachedCookieCount(keyring: Keyring): number {
  return caches.get(keyring)?.size ?? 0;
}
