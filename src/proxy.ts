/**
 * Forwarding to the origin and header hygiene. Whatever a client sends, the origin never sees an
 * identity header the gate did not set itself, nor the gate's own cookies.
 */
import { GateError } from "./errors";
import type { UserClaims } from "./session";

/** Seconds a visitor is asked to wait when the origin does not answer. */
const ORIGIN_RETRY_AFTER = 10;

/** Identity headers of the contract; any client-supplied copy is removed from every request. */
export const IDENTITY_HEADERS = [
  "x-forwarded-user",
  "x-forwarded-email",
  "x-forwarded-name",
  "x-auth-assertion",
  "x-forwarded-access-token",
] as const;

const IDENTITY_SET = new Set<string>(IDENTITY_HEADERS);

/**
 * Some servers (nginx with `underscores_in_headers`, CGI/PHP, WSGI) read `X_Forwarded_User` as
 * `X-Forwarded-User`, so the comparison folds `_` into `-`.
 */
function isIdentityHeader(name: string): boolean {
  return IDENTITY_SET.has(name.toLowerCase().replace(/_/g, "-"));
}

/**
 * A name as a header value: unchanged when it is printable ASCII without `%`; otherwise UTF-8
 * percent-encoded (`encodeURIComponent`). An origin can therefore always apply
 * `decodeURIComponent` (`urllib.parse.unquote`, `rawurldecode`) to get the name back.
 */
export function encodeHeaderValue(value: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/** Removes cookies the gate owns (`isGateCookie(name)`) from a `Cookie` header; undefined if none remain. */
export function withoutGateCookies(cookieHeader: string, isGateCookie: (name: string) => boolean): string | undefined {
  const kept = cookieHeader
    .split(";")
    .map((pair) => pair.trim())
    .filter((pair) => pair !== "" && !isGateCookie(pair.split("=", 1)[0]!.trim()));
  return kept.length > 0 ? kept.join("; ") : undefined;
}

/**
 * Headers with which IIS, Symfony, Laravel, Spring and some proxies let a client replace the path or
 * prefix the application routes on: a request the gate let through as public (`/static/x`) must
 * not be routed to `/admin` by the origin.
 */
const ROUTING_OVERRIDES = ["x-original-url", "x-rewrite-url", "x-forwarded-prefix", "x-forwarded-path", "x-original-uri"];

/**
 * The headers the origin receives, before identity is added. `Host` is left to `fetch` (it follows
 * the upstream URL); the host and scheme the visitor used travel in `X-Forwarded-Host`/`-Proto`.
 */
export function sanitizedHeaders(incoming: Headers, requestUrl: URL, isGateCookie: (name: string) => boolean): Headers {
  // One native copy, then deletions: in workerd a third cheaper than appending header by header.
  const headers = new Headers(incoming);
  for (const name of incoming.keys()) if (isIdentityHeader(name)) headers.delete(name);
  for (const name of ROUTING_OVERRIDES) headers.delete(name);
  headers.delete("cookie");
  headers.delete("host");
  headers.set("x-forwarded-host", requestUrl.host);
  headers.set("x-forwarded-proto", requestUrl.protocol.slice(0, -1));
  const cookie = incoming.get("cookie");
  const kept = cookie === null ? undefined : withoutGateCookies(cookie, isGateCookie);
  if (kept !== undefined) headers.set("cookie", kept);
  return headers;
}

export interface Identity {
  readonly user: UserClaims;
  readonly assertion: string;
  readonly accessToken: string | undefined;
}

export function addIdentity(headers: Headers, identity: Identity): void {
  const { user } = identity;
  headers.set("x-forwarded-user", encodeHeaderValue(user.sub));
  if (user.email !== undefined) headers.set("x-forwarded-email", encodeHeaderValue(user.email));
  if (user.name !== undefined) headers.set("x-forwarded-name", encodeHeaderValue(user.name));
  headers.set("x-auth-assertion", identity.assertion);
  if (identity.accessToken !== undefined) headers.set("x-forwarded-access-token", identity.accessToken);
}

/**
 * Where a request goes: `ORIGIN_URL` (its path is a prefix) plus the request's path and query, or,
 * without `ORIGIN_URL`, the request's own URL (a Worker on a route in front of the zone's origin).
 */
export function upstreamUrl(requestUrl: URL, originUrl: URL | undefined): URL {
  if (originUrl === undefined) return requestUrl;
  const url = new URL(originUrl.href);
  url.pathname = originUrl.pathname.replace(/\/$/, "") + requestUrl.pathname;
  url.search = requestUrl.search;
  return url;
}

/**
 * `shared`: the answer may be cached on the way as the origin's headers allow (anonymous requests,
 * CORS preflights). `personal`: it was made for one signed-in user and bypasses Cloudflare's cache
 * in front of the origin, which is keyed by URL alone: a personal response the origin sent without
 * `Cache-Control` (Cloudflare caches static file types by default) must never reach another user.
 */
export type Audience = "shared" | "personal";

/**
 * Forwards the request: method, body (streamed, never buffered) and headers; the origin's answer
 * (status, redirects, `Set-Cookie`, streaming body, WebSocket upgrade) goes back unchanged.
 */
export async function forward(request: Request, url: URL, headers: Headers, audience: Audience): Promise<Response> {
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  // `cache` is missing from the default @cloudflare/workers-types entry point; the runtime has
  // supported `no-store` since compatibility date 2024-11-11.
  const init: RequestInit & { cache?: "no-store" } = { method: request.method, headers, body: hasBody ? request.body : null, redirect: "manual" };
  if (audience === "personal") init.cache = "no-store";
  try {
    return await fetch(url, init);
  } catch (error) {
    // The origin refused or dropped the connection: a gateway error, not a bug of the gate.
    throw new GateError("origin_unavailable", `The origin did not answer (${error instanceof Error ? error.name : "unknown error"})`, {
      retryAfter: ORIGIN_RETRY_AFTER,
    });
  }
}
