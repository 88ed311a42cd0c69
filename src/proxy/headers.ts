/**
 * Header hygiene on the way to the origin. Whatever a client sends, the origin never sees an
 * identity header the gate did not set itself, nor the gate's own cookies.
 */
import type { UserClaims } from "../oidc/claims";

/** Identity headers of the contract; any client-supplied copy is removed from every request. */
export const IDENTITY_HEADERS = [
  "x-forwarded-user",
  "x-forwarded-email",
  "x-forwarded-name",
  "x-auth-assertion",
  "x-forwarded-access-token",
] as const;

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
 * Every client-supplied header the origin never receives as sent: the identity headers, the routing
 * overrides, `Host` (left to `fetch`, which follows the upstream URL) and `Cookie` (sent on
 * without the gate's cookies). Some servers (nginx with `underscores_in_headers`, CGI/PHP, WSGI)
 * read `X_Forwarded_User` as `X-Forwarded-User`, so names are compared with `_` folded into `-`.
 */
const STRIPPED = new Set<string>([...IDENTITY_HEADERS, ...ROUTING_OVERRIDES, "cookie", "host"]);

function isStripped(name: string): boolean {
  return STRIPPED.has(name.includes("_") ? name.replace(/_/g, "-") : name);
}

/**
 * The headers the origin receives, before identity is added; the host and scheme the visitor used
 * travel in `X-Forwarded-Host`/`-Proto`. One native copy, then one pass over the headers actually
 * present deleting the stripped ones: in workerd cheaper than appending header by header, and than
 * deleting every name on the list whether it was sent or not.
 */
export function sanitizedHeaders(incoming: Headers, requestUrl: URL, isGateCookie: (name: string) => boolean): Headers {
  const headers = new Headers(incoming);
  let cookie: string | undefined;
  // Iterated names are lowercase (Fetch standard), so one set lookup decides.
  for (const [name, value] of incoming) {
    if (!isStripped(name)) continue;
    headers.delete(name);
    if (name === "cookie") cookie = value;
  }
  headers.set("x-forwarded-host", requestUrl.host);
  headers.set("x-forwarded-proto", requestUrl.protocol.slice(0, -1));
  const kept = cookie === undefined ? undefined : withoutGateCookies(cookie, isGateCookie);
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
