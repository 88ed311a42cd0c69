/**
 * Header hygiene on the way to the origin. Whatever a client sends, the origin never sees an
 * identity header the gate did not set itself, nor the gate's own cookies.
 */
import { IDENTITY_HEADERS, type ClaimHeader } from "../config/claims";
import { CLIENT_ID_HEADER, CLIENT_SECRET_HEADER } from "../config/service-tokens";
import { claimText, type UserClaims } from "../oidc/claims";

/**
 * A name as a header value: unchanged when it is printable ASCII without `%`; otherwise UTF-8
 * percent-encoded (`encodeURIComponent`). An origin can therefore always apply
 * `decodeURIComponent` (`urllib.parse.unquote`, `rawurldecode`) to get the name back.
 */
export function encodeHeaderValue(value: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/**
 * Removes cookies the gate owns (`isGateCookie(name)`) from a `Cookie` header; undefined if none
 * remain. A pair is dropped when any of its `,`-separated parts names one: two `Cookie` headers
 * arrive joined with `, `, and parsers that still split on `,` (RFC 2965) would find the gate's.
 */
export function withoutGateCookies(cookieHeader: string, isGateCookie: (name: string) => boolean): string | undefined {
  const kept = cookieHeader
    .split(";")
    .map((pair) => pair.trim())
    .filter((pair) => pair !== "" && !pair.split(",").some((part) => isGateCookie(part.split("=", 1)[0]!.trim())));
  return kept.length > 0 ? kept.join("; ") : undefined;
}

/**
 * Headers with which some proxy, framework or auth proxy tells the application who the user is or
 * where the request came from (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `X-Host`, oauth2-proxy's
 * `X-Auth-Request-*`, Apache's `Remote-User`, …), plus those with which IIS, Symfony, Laravel,
 * Spring and Envoy let a client replace the path the application routes on: a request the gate
 * let through as public (`/static/x`) must not be routed to `/admin` by the origin. No client copy
 * of any of them reaches the origin; the gate sets its own `X-Forwarded-*` and `X-Real-IP`.
 */
const CLIENT_METADATA = [
  "forwarded",
  "x-real-ip",
  "x-host",
  "x-original-host",
  "x-envoy-original-path",
  "remote-user",
  "x-remote-user",
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
];
const STRIPPED_PREFIXES = ["x-forwarded-", "x-auth-request-"];

/**
 * Every client-supplied header the origin never receives as sent: the identity headers, the
 * client's forwarding metadata and routing overrides, a machine client's credentials
 * (`SERVICE_TOKENS`), `Host` (left to `fetch`, which follows the upstream URL) and `Cookie` (sent
 * on without the gate's cookies). Some servers (nginx with `underscores_in_headers`, CGI/PHP,
 * WSGI) read `X_Forwarded_User` as `X-Forwarded-User`, so names are compared with `_` folded
 * into `-`.
 */
const STRIPPED = new Set<string>([...IDENTITY_HEADERS, ...CLIENT_METADATA, CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, "cookie", "host"]);

/** The `CLAIM_HEADERS` names, folded, as a set; built once per configuration. */
const claimSets = new WeakMap<readonly ClaimHeader[], ReadonlySet<string>>();

function claimHeaderSet(claimHeaders: readonly ClaimHeader[]): ReadonlySet<string> {
  let set = claimSets.get(claimHeaders);
  if (set === undefined) {
    set = new Set(claimHeaders.map(({ header }) => header.replace(/_/g, "-")));
    claimSets.set(claimHeaders, set);
  }
  return set;
}

function isStripped(name: string, claimNames: ReadonlySet<string>): boolean {
  const folded = name.includes("_") ? name.replace(/_/g, "-") : name;
  return STRIPPED.has(folded) || claimNames.has(folded) || STRIPPED_PREFIXES.some((prefix) => folded.startsWith(prefix));
}

/**
 * The headers the origin receives, before identity is added; the host and scheme the visitor used
 * travel in `X-Forwarded-Host`/`-Proto`, and the visitor's address as Cloudflare saw it
 * (`CF-Connecting-IP`) in `X-Forwarded-For` and `X-Real-IP`. One native copy, then one pass over
 * the headers actually present deleting the stripped ones: measured in workerd, cheaper than
 * appending header by header, than building the result from a list of pairs (about three times
 * the cost), and than deleting every name on the list whether it was sent or not.
 */
export function sanitizedHeaders(
  incoming: Headers,
  requestUrl: URL,
  isGateCookie: (name: string) => boolean,
  claimHeaders: readonly ClaimHeader[] = [],
): Headers {
  const claimNames = claimHeaderSet(claimHeaders);
  const headers = new Headers(incoming);
  let cookie: string | undefined;
  // Iterated names are lowercase (Fetch standard), so one set lookup decides.
  for (const [name, value] of incoming) {
    if (!isStripped(name, claimNames)) continue;
    headers.delete(name);
    if (name === "cookie") cookie = value;
  }
  headers.set("x-forwarded-host", requestUrl.host);
  headers.set("x-forwarded-proto", requestUrl.protocol.slice(0, -1));
  const client = incoming.get("cf-connecting-ip");
  if (client !== null) {
    headers.set("x-forwarded-for", client);
    headers.set("x-real-ip", client);
  }
  const kept = cookie === undefined ? undefined : withoutGateCookies(cookie, isGateCookie);
  if (kept !== undefined) headers.set("cookie", kept);
  return headers;
}

export interface Identity {
  readonly user: UserClaims;
  readonly assertion: string;
  /** Only a token that has not expired; the caller checks. */
  readonly accessToken: string | undefined;
  /** Epoch seconds, when the provider said. */
  readonly accessTokenExpiresAt?: number | undefined;
  readonly claimHeaders?: readonly ClaimHeader[];
}

/** Identity header values as sent: per user object, with the `CLAIM_HEADERS` they were made for. */
const identityCache = new WeakMap<UserClaims, { readonly claimHeaders: readonly ClaimHeader[]; readonly values: readonly (readonly [string, string])[] }>();

/**
 * `X-Forwarded-User`/`-Email`/`-Name` and the `CLAIM_HEADERS`, encoded once per user object: the
 * opened-cookie cache (session/cookie-cache.ts) hands a session the same frozen user on every
 * request, so the encoding (a Cyrillic name is percent-encoded) is not repeated per request.
 */
function identityValues(user: UserClaims, claimHeaders: readonly ClaimHeader[]): readonly (readonly [string, string])[] {
  const known = identityCache.get(user);
  if (known?.claimHeaders === claimHeaders) return known.values;
  const values: (readonly [string, string])[] = [["x-forwarded-user", encodeHeaderValue(user.sub)]];
  // An address the provider has not verified names nobody: the assertion carries it, marked.
  if (user.email !== undefined && user.email_verified !== false) values.push(["x-forwarded-email", encodeHeaderValue(user.email)]);
  if (user.name !== undefined) values.push(["x-forwarded-name", encodeHeaderValue(user.name)]);
  for (const { header, claim } of claimHeaders) {
    const value = claimText(user, claim);
    if (value !== undefined) values.push([header, encodeHeaderValue(value)]);
  }
  identityCache.set(user, { claimHeaders, values });
  return values;
}

const NO_CLAIM_HEADERS: readonly ClaimHeader[] = [];

export function addIdentity(headers: Headers, identity: Identity): void {
  for (const [name, value] of identityValues(identity.user, identity.claimHeaders ?? NO_CLAIM_HEADERS)) headers.set(name, value);
  headers.set("x-auth-assertion", identity.assertion);
  if (identity.accessToken !== undefined) {
    headers.set("x-forwarded-access-token", identity.accessToken);
    if (identity.accessTokenExpiresAt !== undefined) headers.set("x-forwarded-access-token-expires", String(identity.accessTokenExpiresAt));
  }
}
