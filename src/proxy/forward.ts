/**
 * Forwarding to the origin: where a request goes, the fetch itself (body streamed, redirects and
 * WebSockets passed back), and the caching rule for personal responses.
 */
import { GateError } from "../common/errors";

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
 * (status, redirects, `Set-Cookie`, streaming body, WebSocket upgrade) goes back unchanged. With
 * `binding`, through that service binding to an origin Worker (no public hop).
 */
export async function forward(request: Request, url: URL, headers: Headers, audience: Audience, binding?: Fetcher): Promise<Response> {
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  // `cache` is missing from the default @cloudflare/workers-types entry point; the runtime has
  // supported `no-store` since compatibility date 2024-11-11.
  const init: RequestInit & { cache?: "no-store" } = { method: request.method, headers, body: hasBody ? request.body : null, redirect: "manual" };
  // A service binding calls the origin Worker directly: there is no cache in between to bypass.
  if (audience === "personal" && binding === undefined) init.cache = "no-store";
  try {
    return await (binding === undefined ? fetch(url, init) : binding.fetch(url, init));
  } catch (error) {
    // The origin refused or dropped the connection: a gateway error, not a bug of the gate.
    throw new GateError("origin_unavailable", `The origin did not answer (${error instanceof Error ? error.name : "unknown error"})`);
  }
}

/**
 * Responses to signed-in requests are personal: unless the origin says otherwise (`public`,
 * `private`, `no-store`), shared caches must not keep them.
 */
export function privateCaching(response: Response): Response {
  const cacheControl = response.headers.get("cache-control") ?? "";
  if (response.status === 101 || /\b(public|private|no-store)\b/i.test(cacheControl)) return response;
  const copy = new Response(response.body, response);
  copy.headers.set("cache-control", cacheControl === "" ? "private" : `private, ${cacheControl}`);
  return copy;
}
