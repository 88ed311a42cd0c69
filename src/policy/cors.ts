/**
 * CORS and cross-site WebSockets, decided without I/O. A preflight is answered by the gate itself
 * (`gate`): nothing of it reaches the origin, because many origins run the same code for every
 * method and an `OPTIONS /wiki?id=7&action=delete` would do what a `GET` would. With `origin` the
 * origin answers a bare copy (no query, no cookies, no body) and only its CORS headers come back.
 *
 * @see https://fetch.spec.whatwg.org/#http-cors-protocol
 * @see https://datatracker.ietf.org/doc/html/rfc6455#section-10.2 (Origin on WebSocket handshakes)
 */
import type { PreflightMode } from "../config/cors";

/** What a preflight gets. `forward`: a bare OPTIONS goes to the origin (`preflightRequestHeaders`). */
export type PreflightDecision = { readonly kind: "answer"; readonly status: 204 | 403; readonly headers: Headers } | { readonly kind: "forward" };

/** How long a browser may reuse the gate's answer to a preflight (seconds). */
const PREFLIGHT_MAX_AGE = 600;
/** RFC 9110 §5.6.2 `token`: what a method or a header name may look like. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Request headers a forwarded preflight keeps: the CORS request itself and nothing the user owns. */
const PREFLIGHT_REQUEST_HEADERS = ["origin", "access-control-request-method", "access-control-request-headers", "access-control-request-private-network", "user-agent", "accept", "accept-language"];

export function isListedOrigin(origin: string | null, corsOrigins: readonly string[]): origin is string {
  return origin !== null && corsOrigins.includes(origin);
}

/** `Access-Control-Request-Headers` as a list of header names; undefined when any entry is not one. */
function requestedHeaders(raw: string | null): string | undefined {
  if (raw === null || raw.trim() === "") return undefined;
  const names = raw.split(",").map((name) => name.trim()).filter((name) => name !== "");
  return names.every((name) => TOKEN.test(name)) ? names.join(", ") : undefined;
}

/**
 * The answer to a preflight (`mode` is `CORS_PREFLIGHT`, or a route's own `cors_preflight`). In
 * `gate` mode a listed origin gets its method and headers echoed with credentials allowed; any
 * other origin a 403 without a single `Access-Control-Allow-*` header, so the browser stops there.
 */
export function preflightDecision(request: Request, corsOrigins: readonly string[], mode: PreflightMode): PreflightDecision {
  if (mode === "origin") return { kind: "forward" };
  const origin = request.headers.get("origin");
  const headers = new Headers({ vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" });
  const method = request.headers.get("access-control-request-method") ?? "";
  if (!isListedOrigin(origin, corsOrigins) || !TOKEN.test(method)) return { kind: "answer", status: 403, headers };
  headers.set("access-control-allow-origin", origin);
  headers.set("access-control-allow-credentials", "true");
  headers.set("access-control-allow-methods", method);
  const allowHeaders = requestedHeaders(request.headers.get("access-control-request-headers"));
  if (allowHeaders !== undefined) headers.set("access-control-allow-headers", allowHeaders);
  headers.set("access-control-max-age", String(PREFLIGHT_MAX_AGE));
  return { kind: "answer", status: 204, headers };
}

/**
 * The headers of the bare preflight forwarded in `origin` mode: the CORS request and the gate's
 * forwarding headers (`forwarded`, already sanitized), never a cookie, a credential or a body.
 */
export function preflightRequestHeaders(incoming: Headers, forwarded: Headers): Headers {
  const headers = new Headers();
  for (const name of PREFLIGHT_REQUEST_HEADERS) {
    const value = incoming.get(name);
    if (value !== null) headers.set(name, value);
  }
  for (const [name, value] of forwarded) if (name.startsWith("x-forwarded-") || name === "x-real-ip") headers.set(name, value);
  return headers;
}

/** The origin's answer to a forwarded preflight reduced to its status and CORS headers, without a body. */
export function preflightFromOrigin(response: Response): Response {
  const headers = new Headers();
  for (const [name, value] of response.headers) if (name.startsWith("access-control-") || name === "vary") headers.set(name, value);
  return new Response(null, { status: response.status, headers });
}

/**
 * A listed origin's credentialed request (not a preflight) in `gate` mode: the answer gets the
 * headers a browser needs to hand it to that page, unless the origin answered CORS itself.
 */
export function withCorsHeaders(request: Request, response: Response, corsOrigins: readonly string[], mode: PreflightMode): Response {
  // Without CORS_ORIGINS (the default) no origin is listed: not even the header needs reading.
  if (corsOrigins.length === 0) return response;
  const origin = request.headers.get("origin");
  if (mode !== "gate" || !isListedOrigin(origin, corsOrigins) || response.webSocket !== null || response.headers.has("access-control-allow-origin")) {
    return response;
  }
  const copy = new Response(response.body, response);
  copy.headers.set("access-control-allow-origin", origin);
  copy.headers.set("access-control-allow-credentials", "true");
  copy.headers.append("vary", "Origin");
  return copy;
}

/**
 * A browser always names the page that opens a WebSocket in `Origin`; sockets carry the visitor's
 * cookie, so a page elsewhere could act as the user (cross-site WebSocket hijacking). Allowed: the
 * site itself and the listed origins; no `Origin` at all means no browser, so no hijacking.
 */
export function isAllowedSocketOrigin(origin: string | null, siteOrigin: string, corsOrigins: readonly string[]): boolean {
  return origin === null || origin === siteOrigin || corsOrigins.includes(origin);
}
