/**
 * The gate in front of the origin: request → policy → session → (login) → proxy → origin.
 * Every path that is not one of the gate's own endpoints goes through here.
 */
import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { Config, PreflightMode } from "../config";
import { isAllowed, isPreflight, isPublicPath, wantsLoginRedirect } from "../policy/access";
import { isAllowedSocketOrigin, preflightDecision, preflightFromOrigin, preflightRequestHeaders, withCorsHeaders } from "../policy/cors";
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

/**
 * A CORS preflight, answered as `mode` says (`CORS_PREFLIGHT`, or a route's own). Whoever answers,
 * the origin never gets the query, the cookies or a body: a method-blind origin would act on them.
 */
export async function answerPreflight(request: Request, forwarded: Headers, upstream: URL, config: Config, mode: PreflightMode): Promise<Response> {
  const decision = preflightDecision(request, config.corsOrigins, mode);
  if (decision.kind === "answer") return new Response(null, { status: decision.status, headers: decision.headers });
  const bare = new URL(upstream.href);
  bare.search = "";
  const answer = await forward(new Request(bare, { method: "OPTIONS" }), bare, preflightRequestHeaders(request.headers, forwarded), "shared");
  // Only the status and the CORS headers go back; the origin's body is not read.
  await answer.body?.cancel();
  return preflightFromOrigin(answer);
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

  if (isPreflight(request)) return answerPreflight(request, headers, upstream, config, config.corsPreflight);
  const origin = request.headers.get("origin");
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket" && !isAllowedSocketOrigin(origin, url.origin, config.corsOrigins)) {
    throw new GateError("cross_site", `A WebSocket upgrade from ${origin} (not this site, not in CORS_ORIGINS)`);
  }

  const session = await resolveSession(ctx, getCookie(c, sessionCookieName(scope)));
  ctx.session = session;
  const allowed = session !== undefined && isAllowed(session.user, config);

  // A public path is served to everyone; only a user the allow-lists let in is named to the origin.
  if (!allowed && isPublicPath(path(), config)) {
    return withCorsHeaders(request, await forward(request, upstream, headers, "shared"), config.corsOrigins, config.corsPreflight);
  }

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
  const answer = privateCaching(await forward(request, upstream, headers, "personal"));
  return withCorsHeaders(request, answer, config.corsOrigins, config.corsPreflight);
});
