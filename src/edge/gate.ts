/**
 * The gate in front of the origin: request → policy → session → (login) → proxy → origin.
 * Every path that is not one of the gate's own endpoints goes through here. The first `ROUTES`
 * entry that matches decides access, lists, upstream and step-up; a request no route matches is
 * decided by the global settings exactly as without `ROUTES`.
 */
import { createMiddleware } from "hono/factory";
import type { Config, Route } from "../config";
import { isRecentAuthentication } from "../oidc/decisions";
import { isAllowed, isPreflight, isPublicPath, wantsLoginRedirect } from "../policy/access";
import { isAllowedSocketOrigin, withCorsHeaders } from "../policy/cors";
import { canonicalPath, type CanonicalPath } from "../policy/path";
import { decideRoute } from "../policy/routes";
import { authenticateService, presentsServiceCredentials } from "../policy/service-tokens";
import { forward, privateCaching, upstreamUrl } from "../proxy/forward";
import { addIdentity, sanitizedHeaders } from "../proxy/headers";
import { answerPreflight } from "../proxy/preflight";
import { resolveSession } from "../session/check";
import { readCookie, sessionCookieName, type CookieScope } from "../session/cookie";
import { beginLogin } from "../session/login";
import { isPendingLoginCookie } from "../session/pending-login";
import type { AppEnv } from "./context";
import { serviceBinding, type Bindings } from "./bindings";
import { GateError } from "../common/errors";
import { withRequestLog } from "../common/log";

const BOTH_SPELLINGS: readonly CookieScope[] = [{ secure: true }, { secure: false }];

/** The gate's cookies with or without `__Host-`, whatever this request's scheme: the origin sees neither. */
export function isGateCookie(name: string): boolean {
  return BOTH_SPELLINGS.some((scope) => name === sessionCookieName(scope) || isPendingLoginCookie(scope, name));
}

/** Where a request goes: the route's upstream (a URL or a service binding), else `ORIGIN_URL` or its own URL. */
function upstreamFor(env: Bindings, route: Route | undefined, url: URL, config: Config): { url: URL; binding?: Fetcher } {
  const upstream = route?.upstream;
  if (upstream === undefined) return { url: upstreamUrl(url, config.originUrl) };
  if (upstream.kind === "url") return { url: upstreamUrl(url, upstream.url) };
  const binding = serviceBinding(env, upstream.binding);
  // Checked when the settings were read; a binding removed since is a deployment mistake.
  if (binding === undefined) throw new Error(`ROUTES: the service binding "${upstream.binding}" is gone`);
  // The origin Worker sees the URL the visitor asked for, and that origin is the assertion's `aud`.
  return { url, binding };
}

/** The route that decides, or the refusal of a path whose spellings lead to different routes. */
function routeFor(config: Config, url: URL, path: () => CanonicalPath, method: string): Route | undefined {
  // Without ROUTES the path is not canonicalised here (see `path` in the gate).
  if (config.routes.length === 0) return undefined;
  const decision = decideRoute(config.routes, url.hostname, path(), method);
  if (decision.kind === "route") return decision.route;
  const names = decision.routes.map((route) => route?.name ?? "(global settings)").join(", ");
  throw new GateError("ambiguous_path", `The path's spellings lead to different routes: ${names}`);
}

/** `api` routes answer 401 JSON; elsewhere only a navigation gets a login redirect (global API_PATHS count only off routes). */
function wantsRedirect(request: Request, path: CanonicalPath, route: Route | undefined, config: Config): boolean {
  if (route === undefined) return wantsLoginRedirect(request, path, config);
  return route.access !== "api" && wantsLoginRedirect(request, path, NO_API_PATHS);
}

const NO_API_PATHS = { apiPaths: [] };

export const gate = createMiddleware<AppEnv>(async function gate(c) {
  const ctx = c.get("ctx");
  const { config, signer } = ctx.runtime;
  const request = c.req.raw;
  const { url } = ctx;
  const scope = ctx.scope;
  // Canonicalised only when a decision reads it: a signed-in user whom the allow-lists let in needs none.
  let canonical: CanonicalPath | undefined;
  const path = (): CanonicalPath => (canonical ??= canonicalPath(url.pathname));
  const headers = sanitizedHeaders(request.headers, url, isGateCookie, config.claimHeaders);
  const route = routeFor(config, url, path, request.method);
  ctx.route = route;
  if (route?.access === "deny") throw new GateError("forbidden", `The route "${route.name}" is closed to everyone`);
  const upstream = upstreamFor(c.env, route, url, config);

  const corsMode = route?.corsPreflight ?? config.corsPreflight;
  if (isPreflight(request)) return answerPreflight(request, headers, upstream, config.corsOrigins, corsMode);
  const origin = request.headers.get("origin");
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket" && !isAllowedSocketOrigin(origin, url.origin, config.corsOrigins)) {
    throw new GateError("cross_site", `A WebSocket upgrade from ${origin} (not this site, not in CORS_ORIGINS)`);
  }

  // A machine client is judged by its token alone: no session is read and no cookie is set.
  if (presentsServiceCredentials(request.headers)) {
    const service = await authenticateService(config.serviceTokens, request.headers);
    if (service === undefined || route === undefined || !route.services.includes(service)) {
      throw new GateError("service_refused", service === undefined ? "Service credentials that do not match SERVICE_TOKENS" : `The service "${service}" is not admitted here`);
    }
    const user = { sub: `service:${service}` };
    const assertion = await signer.sign(
      { issuer: url.origin, audience: upstream.url.origin, user, method: request.method, url: upstream.url.href, route: route.name },
      ctx.now,
    );
    addIdentity(headers, { user, assertion, accessToken: undefined });
    return privateCaching(await forward(request, upstream.url, headers, "personal", upstream.binding));
  }

  const cookies = request.headers.get("cookie") ?? "";
  const session = await resolveSession(ctx, readCookie(cookies, sessionCookieName(scope)));
  ctx.session = session;
  // A route's own lists replace the global ones there.
  const allowed = session !== undefined && isAllowed(session.user, route?.lists ?? config);
  // An ambiguous path is never public, on a route as under PUBLIC_PATHS.
  const isPublic = (): boolean => (route === undefined ? isPublicPath(path(), config) : route.access === "public" && !path().ambiguous);

  // A public path is served to everyone; only a user the allow-lists let in is named to the origin.
  if (!allowed && isPublic()) {
    return withCorsHeaders(request, await forward(request, upstream.url, headers, "shared", upstream.binding), config.corsOrigins, corsMode);
  }

  // No session, or (step-up) one whose sign-in at the provider is older than the route's max_age.
  const maxAge = route?.maxAge;
  const stale = session !== undefined && maxAge !== undefined && !isRecentAuthentication(session.auth, maxAge, ctx.now);
  if (session === undefined || (allowed && stale)) {
    const returnTo = `${url.pathname}${url.search}`;
    if (!wantsRedirect(request, path(), route, config)) {
      ctx.returnTo = returnTo;
      throw new GateError("unauthenticated", session === undefined ? `No session for ${request.method} ${url.pathname}` : `A sign-in within ${maxAge}s is needed`);
    }
    return withRequestLog(request, () => beginLogin(ctx, cookies, returnTo, maxAge));
  }

  if (!allowed) throw new GateError("forbidden", `The signed-in user is not on the allow-lists`);

  const claims = {
    issuer: url.origin,
    audience: upstream.url.origin,
    user: session.user,
    ...(session.auth === undefined ? {} : { authTime: session.auth }),
    ...(route === undefined ? {} : { route: route.name }),
  };
  const assertion =
    config.assertionMode === "session"
      ? await signer.signForSession(claims, ctx.now, session.exp)
      : await signer.sign({ ...claims, method: request.method, url: upstream.url.href }, ctx.now);
  // An access token past its expiry is never forwarded (the check that ends or renews it is due).
  const tokenValid = config.passAccessToken && (session.ate === undefined || session.ate > ctx.now);
  addIdentity(headers, {
    user: session.user,
    assertion,
    accessToken: tokenValid ? session.at : undefined,
    accessTokenExpiresAt: session.ate,
    claimHeaders: config.claimHeaders,
  });
  const answer = privateCaching(await forward(request, upstream.url, headers, "personal", upstream.binding));
  return withCorsHeaders(request, answer, config.corsOrigins, corsMode);
});
