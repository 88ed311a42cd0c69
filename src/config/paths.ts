/**
 * Path settings: the `PUBLIC_PATHS` / `API_PATHS` patterns and `AUTH_PREFIX`. A pattern the URL
 * parser would rewrite is refused, because it would silently mean a wider path than written.
 */
import { parseList, type SettingName, type SettingsReader } from "./reader";

// Characters the URL parser rewrites or that mean something else in a path pattern.
// eslint-disable-next-line no-control-regex
const UNCLEAR_PATTERN = /[?#%\\\t\n\r\f\v\u0000-\u001f\u007f]|\/\//;

export function readPathPatterns(reader: SettingsReader, name: SettingName): string[] {
  const patterns = parseList(reader.raw(name));
  for (const pattern of patterns) {
    const problem = patternProblem(pattern);
    if (problem !== undefined) reader.problem(name, problem);
  }
  return patterns;
}

/** What is wrong with a path pattern (`PUBLIC_PATHS`, `API_PATHS`, a route's `path`), if anything. */
export function patternProblem(pattern: string): string | undefined {
  if (!pattern.startsWith("/") || pattern.slice(0, -1).includes("*")) {
    return `pattern "${pattern}" must start with / and may end with a single * (like /static/*)`;
  }
  if (UNCLEAR_PATTERN.test(pattern) || hasDotSegmentPattern(pattern)) {
    // The URL parser would rewrite such a pattern (`/static/../*` into `/*`), silently widening it.
    return `pattern "${pattern}" must be a plain path: no ?, #, %, \\, //, tabs, line breaks or . and .. segments`;
  }
  return undefined;
}

function hasDotSegmentPattern(pattern: string): boolean {
  return pattern.replace(/\*$/, "").split("/").some((segment) => segment === "." || segment === "..");
}

export function readAuthPrefix(reader: SettingsReader): string {
  const prefix = reader.raw("AUTH_PREFIX") ?? "/_auth";
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    reader.problem("AUTH_PREFIX", `must be a path like /_auth: starting with /, no trailing slash, letters, digits and . _ ~ - (got "${prefix}")`);
    return "/_auth";
  }
  return prefix;
}
