/**
 * The gate in front of the origin: request → policy → session → (login) → proxy → origin.
 * Every path that is not one of the gate's own endpoints goes through here.
 */
import { createMiddleware } from "hono/factory";
import { getCookie } from "hono/cookie";
import type { AppEnv } from "./env";
import { GateError } from "./errors";
import { beginLogin, isPendingLoginCookie } from "./login";
import { canonicalPath, isAllowed, isPreflight, isPublicPath, wantsLoginRedirect } from "./policy";
import { addIdentity, forward, sanitizedHeaders, upstreamUrl } from "./proxy";
import { cookieScope, withCookies } from "./request";
import { now, resolveSession } from "./resolve";
import { sessionCookieName, type CookieScope } from "./session";

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

const BOTH_SPELLINGS: readonly CookieScope[] = [{ secure: true }, { secure: false }];

/** The gate's cookies with or without `__Host-`, whatever this request's scheme: the origin sees neither. */
export function gateCookiePredicate(): (name: string) => boolean {
  return (name) => BOTH_SPELLINGS.some((scope) => name === sessionCookieName(scope) || isPendingLoginCookie(scope, name));
}

export const gate = createMiddleware<AppEnv>(async function gate(c) {
  const { config, signer } = c.var.runtime;
  const request = c.req.raw;
  const url = new URL(request.url);
  const scope = cookieScope(url);
  const path = canonicalPath(url.pathname);
  const headers = sanitizedHeaders(request.headers, url, gateCookiePredicate());
  const upstream = upstreamUrl(url, config.originUrl);

  if (isPreflight(request)) {
    // A browser's preflight has no body: one that carries a body (or says it does) is no preflight
    // and must not smuggle a payload past the login to the origin.
    for (const name of ["content-length", "content-type", "transfer-encoding"]) headers.delete(name);
    return forward(new Request(request.url, { method: "OPTIONS" }), upstream, headers, "shared");
  }

  const { session, setCookie } = await resolveSession(
    c.var.runtime,
    c.env.SESSIONS,
    scope,
    getCookie(c, sessionCookieName(scope)),
    (promise) => c.executionCtx.waitUntil(promise),
  );
  c.set("session", session);
  const setCookies = setCookie === undefined ? [] : [setCookie];
  const allowed = session !== undefined && isAllowed(session.user, config);

  // A public path is served to everyone; only a user the allow-lists let in is named to the origin.
  if (!allowed && isPublicPath(path, config)) return withCookies(await forward(request, upstream, headers, "shared"), setCookies);

  if (session === undefined) {
    const returnTo = `${url.pathname}${url.search}`;
    if (!wantsLoginRedirect(request, path, config)) {
      throw new GateError("unauthenticated", `No session for ${request.method} ${url.pathname}`, { returnTo, setCookies });
    }
    return withCookies(await beginLogin(c.var.runtime, url, request.headers.get("cookie") ?? "", returnTo), setCookies);
  }

  if (!allowed) {
    throw new GateError("forbidden", `The signed-in user is not on the allow-lists`, {
      who: session.user.email ?? session.user.name ?? session.user.sub,
      setCookies,
    });
  }

  const assertion = await signer.sign(
    { issuer: url.origin, audience: upstream.origin, user: session.user, method: request.method, url: upstream.href },
    now(),
  );
  addIdentity(headers, { user: session.user, assertion, accessToken: config.passAccessToken ? session.at : undefined });
  return withCookies(privateCaching(await forward(request, upstream, headers, "personal")), setCookies);
});
