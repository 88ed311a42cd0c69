/**
 * Facts about the incoming request that several handlers need: the cookie scope its scheme allows,
 * the gate's URLs on this host, and whether the client reads HTML or JSON.
 */
import type { Config } from "./config";
import { isLoopbackHost } from "./config";
import { GateError } from "./errors";
import type { CookieScope } from "./session";

/**
 * `__Host-` + `Secure` cookies on https. Plain http is accepted only on loopback hosts (local
 * development), where browsers keep such cookies; elsewhere a session would travel in clear text.
 */
export function cookieScope(url: URL): CookieScope {
  if (url.protocol === "https:") return { secure: true };
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return { secure: false };
  throw new GateError("insecure_transport", `Refused a plain-http request to ${url.hostname}: sessions need https`);
}

/** The registered redirect URI: this host + AUTH_PREFIX + /callback. */
export function callbackUrl(url: URL, config: Config): string {
  return `${url.origin}${config.authPrefix}/callback`;
}

export function loginPath(config: Config, returnTo: string): string {
  return `${config.authPrefix}/login?rd=${encodeURIComponent(returnTo)}`;
}

/** Browsers navigating get HTML pages; scripts and API clients get JSON. */
export function prefersHtml(request: Request): boolean {
  const mode = request.headers.get("sec-fetch-mode");
  if (mode !== null) return mode === "navigate";
  return (request.headers.get("accept") ?? "").includes("text/html");
}

/**
 * Attaches Set-Cookie headers to a response, copying it only when there is something to add. A
 * response that carries a session cookie is never stored by any cache, whatever the origin said:
 * a cached `public` page would hand this visitor's cookie to the next one.
 */
export function withCookies(response: Response, cookies: readonly (string | undefined)[]): Response {
  const present = cookies.filter((cookie): cookie is string => cookie !== undefined);
  if (present.length === 0) return response;
  if (response.webSocket !== null) {
    // A WebSocket handshake has no body to copy: the socket itself moves into the new response.
    // Browsers store cookies set on the handshake, so a re-issued session cookie is not lost.
    const headers = new Headers(response.headers);
    for (const cookie of present) headers.append("set-cookie", cookie);
    return new Response(null, { status: response.status, statusText: response.statusText, headers, webSocket: response.webSocket });
  }
  const copy = new Response(response.body, response);
  for (const cookie of present) copy.headers.append("set-cookie", cookie);
  if (!/\bno-store\b/i.test(copy.headers.get("cache-control") ?? "")) copy.headers.set("cache-control", "private, no-store");
  return copy;
}
