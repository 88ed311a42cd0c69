/**
 * Which route decides a request, without I/O: the first route of `ROUTES` whose host, path and
 * methods match. A path is matched as the origin receives it, and also as an origin could read it
 * (decoded once or twice, lower-cased, with `;` parameters dropped, `\` as `/`, `//` collapsed and
 * dot segments resolved): when those readings land on different routes, an origin could serve a
 * protected route's page under a spelling the gate took for another, so the request is refused
 * (or denied, when one of them is a `deny` route) instead of guessed at.
 */
import type { Route } from "../config";
import { canonicalPath, matchesPattern, type CanonicalPath } from "./path";
import { safeReturnPath } from "./return-path";

/** The route that decides, `undefined` for the global settings; or a refusal of an ambiguous spelling. */
export type RouteDecision =
  | { readonly kind: "route"; readonly route: Route | undefined }
  | { readonly kind: "ambiguous"; readonly routes: readonly (Route | undefined)[] };

/** How many times a path is percent-decoded: a proxy in front of the origin may decode once more. */
const DECODINGS = 2;

function hostMatches(pattern: string | undefined, hostname: string): boolean {
  if (pattern === undefined) return true;
  // `admin.example.ru.` is the same host as `admin.example.ru` for DNS and for most servers.
  const host = hostname.toLowerCase().replace(/\.$/, "");
  return pattern.startsWith("*.") ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern;
}

/** A pattern against a decoded reading: prefix for `/x/*`, equality otherwise; `fold` compares case-insensitively. */
function matchesDecoded(reading: string, pattern: string, fold: boolean): boolean {
  const wildcard = pattern.endsWith("*");
  const literal = fold ? (wildcard ? pattern.slice(0, -1) : pattern).toLowerCase() : wildcard ? pattern.slice(0, -1) : pattern;
  return wildcard ? reading.startsWith(literal) : reading === literal;
}

/** `/a/./b/../c` → `/a/c`; segments of dots and spaces count as `.`/`..` (Windows drops trailing dots). */
function resolveDots(path: string): string {
  const out: string[] = [];
  for (const segment of path.split("/").slice(1)) {
    const trimmed = segment.trim();
    if (/^\.+$/.test(trimmed) && trimmed.length <= 2) {
      if (trimmed === "..") out.pop();
      continue;
    }
    out.push(segment);
  }
  return `/${out.join("/")}`;
}

/** Readings of the decoded path that some origin would resolve to the same resource. */
function decodedReadings(pathname: string): string[] {
  const readings = new Set<string>();
  let current = pathname;
  for (let round = 0; round < DECODINGS; round += 1) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      break;
    }
    const plain = decoded.normalize("NFKC").replace(/\\/g, "/");
    const withoutParams = plain.replace(/;[^/]*/g, "");
    for (const reading of [plain, withoutParams]) readings.add(resolveDots(reading.replace(/\/{2,}/g, "/")));
    if (decoded === current) break;
    current = decoded;
  }
  return [...readings];
}

function routeMatches(route: Route, hostname: string, method: string): boolean {
  return hostMatches(route.host, hostname) && (route.methods === undefined || route.methods.includes(method));
}

/**
 * The first route matching `hostname`, the path and `method`; `ambiguous` when the path's
 * readings disagree on it. With no `ROUTES`, always the global settings.
 */
export function decideRoute(routes: readonly Route[], hostname: string, path: CanonicalPath, method: string): RouteDecision {
  if (routes.length === 0) return { kind: "route", route: undefined };
  const upper = method.toUpperCase();
  const candidates = routes.filter((route) => routeMatches(route, hostname, upper));
  const exact = candidates.find((route) => matchesPattern(path.path, route.path));
  const readings = decodedReadings(path.path);
  const found = new Set<Route | undefined>([exact]);
  for (const reading of readings) {
    found.add(candidates.find((route) => matchesDecoded(reading, route.path, false)));
    found.add(candidates.find((route) => matchesDecoded(reading.toLowerCase(), route.path, true)));
  }
  if (found.size === 1) return { kind: "route", route: exact };
  // Some spelling reaches a route closed to everyone: that refusal is the one answer that is right
  // whichever way the origin reads the path.
  const deny = [...found].find((route) => route?.access === "deny");
  return deny === undefined ? { kind: "ambiguous", routes: [...found] } : { kind: "route", route: deny };
}

/**
 * The step-up a login started at `/_auth/login?rd=…` must ask for: the `max_age` of the route the
 * login returns to (a page is opened with GET), so a script's `login_url` and a fresh visitor's
 * first login both satisfy that route at once instead of logging in twice.
 */
export function loginMaxAge(routes: readonly Route[], siteUrl: URL, returnTo: string | undefined): number | undefined {
  if (routes.length === 0) return undefined;
  const target = new URL(safeReturnPath(returnTo, siteUrl.origin), siteUrl.origin);
  const decision = decideRoute(routes, siteUrl.hostname, canonicalPath(target.pathname), "GET");
  return decision.kind === "route" ? decision.route?.maxAge : undefined;
}
