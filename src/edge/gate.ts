/**
 * The gate in front of the origin: request → policy → session → (login) → proxy → origin.
 * Every path that is not one of the gate's own endpoints goes through here.
 */
import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { isAllowed, isPreflight, isPublicPath, wantsLoginRedirect } from "../policy/access";
import { canonicalPath, type CanonicalPath } from "../policy/path";
import { forward, privateCaching, upstreamUrl } from "../proxy/forward";
import { addIdentity, sanitizedHeaders } from "../proxy/headers";
import { resolveSession } from "../session/check";
import { sessionCookieName, type CookieScope } from "../session/cookie";
import { beginLogin } from "../session/login";
import { isPendingLoginCookie } from "../session/pending-login";
import type { AppEnv } from "./context";
import { GateError } from "../common/errors";
import { withRequestLog } from "../common/log";

const BOTH_SPELLINGS: readonly CookieScope[] = [{ secure: true }, { secure: false }];

/** The gate's cookies with or without `__Host-`, whatever this request's scheme: the origin sees neither. */
export function isGateCookie(name: string): boolean {
  return BOTH_SPELLINGS.some((scope) => name === sessionCookieName(scope) || isPendingLoginCookie(scope, name));
}

export const gate = createMiddleware<AppEnv>(async function gate(c) {
  const ctx = c.get("ctx");
  const { config, signer } = ctx.runtime;
  const request = c.req.raw;
  const { url } = ctx;
  const scope = ctx.scope;
  // Canonicalised only when a decision reads it: a signed-in user whom the allow-lists let in needs none.
  let canonical: CanonicalPath | undefined;
  const path = (): CanonicalPath => (canonical ??= canonicalPath(url.pathname));
  const headers = sanitizedHeaders(request.headers, url, isGateCookie);
  const upstream = upstreamUrl(url, config.originUrl);

  if (isPreflight(request)) {
    // A browser's preflight has no body: one that carries a body (or says it does) is no preflight
    // and must not smuggle a payload past the login to the origin.
    for (const name of ["content-length", "content-type", "transfer-encoding"]) headers.delete(name);
    return forward(new Request(request.url, { method: "OPTIONS" }), upstream, headers, "shared");
  }

  const session = await resolveSession(ctx, getCookie(c, sessionCookieName(scope)));
  ctx.session = session;
  const allowed = session !== undefined && isAllowed(session.user, config);

  // A public path is served to everyone; only a user the allow-lists let in is named to the origin.
  if (!allowed && isPublicPath(path(), config)) return forward(request, upstream, headers, "shared");

  if (session === undefined) {
    const returnTo = `${url.pathname}${url.search}`;
    if (!wantsLoginRedirect(request, path(), config)) {
      ctx.returnTo = returnTo;
      throw new GateError("unauthenticated", `No session for ${request.method} ${url.pathname}`);
    }
    return withRequestLog(request, () => beginLogin(ctx, request.headers.get("cookie") ?? "", returnTo));
  }

  if (!allowed) throw new GateError("forbidden", `The signed-in user is not on the allow-lists`);

  const claims = { issuer: url.origin, audience: upstream.origin, user: session.user };
  const assertion =
    config.assertionMode === "session"
      ? await signer.signForSession(claims, ctx.now, session.exp)
      : await signer.sign({ ...claims, method: request.method, url: upstream.href }, ctx.now);
  addIdentity(headers, { user: session.user, assertion, accessToken: config.passAccessToken ? session.at : undefined });
  return privateCaching(await forward(request, upstream, headers, "personal"));
});
