/**
 * `npm run check -- --explain URL`: which route decides a request and what a given user, service
 * or visitor gets there, and why — computed with the same decisions the gate makes (route
 * matching, public paths, allow-lists, service tokens), without a provider or a session.
 */
import type { AllowLists, Config, Route } from "../config";
import { isAllowed, isPublicPath } from "./access";
import { canonicalPath } from "./path";
import { decideRoute } from "./routes";

/** Who asks: a signed-in user (by e-mail or subject), a machine client, or a visitor without a session. */
export type Asker = { readonly email: string } | { readonly sub: string } | { readonly service: string } | Record<string, never>;

export interface Explanation {
  /** `route 2 "admin"`, or `the global settings (no route matches)`. */
  readonly decidedBy: string;
  /** What happens, in one line: forwarded (to where, as whom), a login, or a refusal with its status. */
  readonly outcome: string;
  /** The reasons, in the order the gate weighs them. */
  readonly why: readonly string[];
}

function describeRoute(route: Route): string {
  return `route ${route.index} "${route.name}" (${[route.host ?? "any host", route.path, route.methods?.join("|") ?? "any method"].join(" ")})`;
}

function describeLists(lists: AllowLists, own: boolean): string {
  const entries = [...lists.allowedEmails, ...lists.allowedEmailDomains.map((domain) => `@${domain}`), ...lists.allowedSubjects];
  if (entries.length === 0) return `no allow-lists ${own ? "on this route" : "are set"}: every signed-in user`;
  return `${own ? "the route's lists" : "the global lists"} admit ${entries.join(", ")}`;
}

function upstreamOf(route: Route | undefined, url: URL, config: Config): string {
  const upstream = route?.upstream;
  if (upstream?.kind === "service") return `the service binding ${upstream.binding}`;
  const base = upstream?.url ?? config.originUrl;
  return base === undefined ? `${url.origin} (the request's own URL)` : base.href;
}

/** Explains the gate's decision for `method url` as `asker` would get it. */
export function explain(config: Config, url: URL, method: string, asker: Asker): Explanation {
  const path = canonicalPath(url.pathname);
  const decision = decideRoute(config.routes, url.hostname, path, method);
  if (decision.kind === "ambiguous") {
    const names = decision.routes.map((route) => (route === undefined ? "the global settings" : describeRoute(route))).join(" / ");
    return { decidedBy: "no route: the spelling is ambiguous", outcome: "refused: 400 ambiguous_path", why: [`readings of the path lead to ${names}`] };
  }
  const route = decision.route;
  const decidedBy = route === undefined ? "the global settings (no route matches)" : describeRoute(route);
  const upstream = upstreamOf(route, url, config);
  if (route?.access === "deny") return { decidedBy, outcome: "refused: 403 for everyone", why: ["access is deny"] };

  if ("service" in asker) {
    const why: string[] = [];
    if (!config.serviceTokens.has(asker.service)) why.push(`"${asker.service}" is not in SERVICE_TOKENS`);
    else if (route === undefined) why.push("service tokens are admitted only on routes that list them");
    else if (!route.services.includes(asker.service)) why.push(`the route's services are ${route.services.join(", ") || "none"}`);
    if (why.length > 0) return { decidedBy, outcome: "refused: 401 service_refused", why };
    return { decidedBy, outcome: `forwarded to ${upstream} as service:${asker.service} (no cookie)`, why: [`the route lists the service "${asker.service}"`] };
  }

  const lists = route?.lists ?? config;
  const why = [describeLists(lists, route?.lists !== undefined)];
  const isPublic = route === undefined ? isPublicPath(path, config) : route.access === "public" && !path.ambiguous;
  if (route === undefined) why.push(isPublic ? "the path is in PUBLIC_PATHS" : "the path is not public");
  else why.push(`access is ${route.access}${route.access === "public" && path.ambiguous ? ", but the path's spelling is ambiguous, so it needs a login" : ""}`);

  if (!("email" in asker) && !("sub" in asker)) {
    if (isPublic) return { decidedBy, outcome: `forwarded to ${upstream} without identity`, why };
    const api = route?.access === "api";
    return { decidedBy, outcome: api ? "401 JSON with login_url" : "a login redirect for a page, 401 JSON with login_url for a script", why };
  }
  const user = "email" in asker ? { sub: "(the user's subject)", email: asker.email } : { sub: asker.sub };
  const allowed = isAllowed(user, lists);
  if (!allowed && isPublic) return { decidedBy, outcome: `forwarded to ${upstream} without identity (the lists do not admit this user)`, why };
  if (!allowed) return { decidedBy, outcome: "refused: 403 forbidden", why: [...why, "the lists do not admit this user"] };
  const stepUp = route?.maxAge === undefined ? [] : [`step-up: a sign-in at the provider older than ${route.maxAge}s goes back through the provider with max_age=${route.maxAge}`];
  return { decidedBy, outcome: `forwarded to ${upstream} as this user, with X-Auth-Assertion${route === undefined ? "" : ` (route "${route.name}")`}`, why: [...why, ...stepUp] };
}
