import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawRequest } from "../helpers/raw-http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

/**
 * Path-confusion attacks on PUBLIC_PATHS: raw request-targets an attacker sends without a session,
 * each aimed at the protected `/admin` through the public `/static/*` or `/favicon.ico`. The
 * property under test is the one that matters: whatever the gate lets through anonymously is
 * public however the origin reads it (decoding once or twice, Tomcat's `;` parameters, backslashes,
 * merged slashes, dot segments, Windows' trailing dots, Unicode folding, case-insensitivity).
 */

const PUBLIC = "/static/*, /favicon.ico";
const isPublic = (path: string): boolean => path.startsWith("/static/") || path === "/favicon.ico";

/** Percent-decoding as a lenient server does it: overlong UTF-8 for `.` `/` `\`, invalid bytes kept. */
function decodeLeniently(path: string): string {
  const overlong = path.replace(/%c0%ae|%e0%80%ae/gi, ".").replace(/%c0%af|%e0%80%af/gi, "/").replace(/%c1%9c|%e0%81%9c/gi, "\\");
  return overlong.replace(/(%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/** RFC 3986 remove_dot_segments, with segments of dots and spaces read the Windows way (`...` = `..`). */
function resolveDots(path: string): string {
  const out: string[] = [];
  for (const raw of path.split("/").slice(1)) {
    const segment = /^[.\s]+$/.test(raw) && raw.includes(".") ? (raw.replace(/\s/g, "").length >= 2 ? ".." : ".") : raw;
    if (segment === "..") out.pop();
    else if (segment !== ".") out.push(segment);
  }
  return `/${out.join("/")}`;
}

/** Folds that some servers apply: NFKC plus the slash and dot lookalikes Windows best-fit maps. */
function foldUnicode(path: string): string {
  return path.normalize("NFKC").replace(/[\u2044\u2215\u29f8]/g, "/").replace(/[\u2216\u29f5\u29f9]/g, "\\").replace(/\u3002/g, ".");
}

const READINGS: ((path: string) => string)[] = [
  decodeLeniently,
  decodeLeniently, // a second decoder: a proxy in front of the origin, or a framework decoding again
  (p) => p.replace(/;[^/]*/g, ""), // Tomcat, Spring, Jetty: path parameters dropped
  foldUnicode,
  (p) => p.replace(/\\/g, "/"), // IIS, Windows back ends
  (p) => p.replace(/\/{2,}/g, "/"), // nginx merge_slashes, most frameworks
  resolveDots,
  (p) => p.toLowerCase(), // case-insensitive file systems
];

/** Every way an origin might read the request-target it received (path part only). */
function readingsOf(target: string): Set<string> {
  let readings = new Set([target.split("?")[0]!.split("#")[0]!]);
  for (const read of READINGS) readings = new Set([...readings, ...[...readings].map(read)]);
  return readings;
}

type Seen = { method: string; url: string; headers: Record<string, string | string[] | undefined> };

describe("canonical paths: no encoding trick turns a protected path public", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { PUBLIC_PATHS: PUBLIC } });
  });
  afterAll(() => stack.close());

  /** Sends the raw target without a session; returns the status and what the origin received. */
  async function attack(target: string | Buffer, headers: Record<string, string> = { accept: "application/json" }) {
    const before = stack.origin.requests.length;
    const response = await rawRequest(stack.gate.url, target, { ...headers, "x-forwarded-user": "admin" });
    return { status: response.status, seen: stack.origin.requests.slice(before) as Seen[] };
  }

  function expectOnlyPublicReached(seen: Seen[]): void {
    for (const request of seen) {
      const protectedReadings = [...readingsOf(request.url)].filter((reading) => !isPublic(reading));
      expect(protectedReadings, `the origin got ${request.url}`).toEqual([]);
      expect(request.headers["x-forwarded-user"]).toBeUndefined();
    }
  }

  // The advisories these come from: GHSA-7rh7-c77v-6434 (oauth2-proxy matched skip_auth_routes
  // against path + query), GHSA-pxq7-h93f-9jrg (a `#` widened a pattern; the upstream cut the
  // fragment), and the %2F / %2e%2e / `..;` path-normalisation bypasses of proxies in general.
  const refused: [string, string | Buffer][] = [
    ["the protected page itself", "/admin"],
    ["query string that looks public (GHSA-7rh7-c77v-6434)", "/admin?/static/"],
    ["query parameter holding a public path", "/admin?next=/static/app.css"],
    ["encoded query that looks public", "/admin?%2Fstatic%2F"],
    ["query after a trailing slash", "/admin/?/favicon.ico"],
    ["fragment that looks public (GHSA-pxq7-h93f-9jrg)", "/admin#/static/x"],
    ["fragment climbing out of a public path", "/static/x#/../../admin"],
    ["encoded fragment", "/admin%23/static/x"],
    ["encoded fragment before dot segments", "/static/%23/../../admin"],
    ["%2F instead of slashes", "/static%2F..%2Fadmin"],
    ["%2f after a dot segment", "/static/..%2fadmin"],
    ["everything encoded", "/static%2f%2e%2e%2fadmin"],
    ["%2e%2e", "/static/%2e%2e/admin"],
    ["%2E%2E", "/static/%2E%2E/admin"],
    ["half-encoded dots", "/static/.%2e/admin"],
    ["%2e%2e with an encoded backslash", "/static/%2e%2e%5cadmin"],
    ["plain ..", "/static/../admin"],
    ["./..", "/static/./../admin"],
    ["one level too many", "/static/a/../../admin"],
    ["a bare ..", "/static/.."],
    ["leading //", "//admin"],
    ["// before dot segments", "//static/../admin"],
    ["backslashes", "/static\\..\\admin"],
    ["a backslash after ..", "/static/..\\admin"],
    ["%5c", "/static%5c..%5cadmin"],
    ["backslash then slash", "/static\\/admin"],
    ["..; (Tomcat, Spring)", "/static/..;/admin"],
    ["; on the public segment", "/static;/../admin"],
    ["..;jsessionid", "/static/..;jsessionid=1/admin"],
    ["%2e%2e;", "/static/%2e%2e;/admin"],
    ["..%3b", "/static/..%3b/admin"],
    ["; after an exact public path", "/favicon.ico;/../admin"],
    [".; (Tomcat reads /static/admin)", "/static/.;/x"],
    ["upper case public prefix", "/STATIC/app.css"],
    ["mixed case with ..", "/Static/../admin"],
    ["an encoded letter in the public prefix (another path to an origin that does not decode)", "/%73tatic/x"],
    ["raw fullwidth dots", Buffer.from("/static/\uff0e\uff0e/admin", "utf8")],
    ["encoded fullwidth dots", "/static/%EF%BC%8E%EF%BC%8E/admin"],
    ["fullwidth solidus", "/static%EF%BC%8F..%EF%BC%8Fadmin"],
    ["two-dot leader", "/static/%E2%80%A5/admin"],
    ["division slash", "/static/%E2%88%95..%E2%88%95admin"],
    ["fullwidth static", "/%EF%BD%93%EF%BD%94%EF%BD%81%EF%BD%94%EF%BD%89%EF%BD%83/x"],
    ["overlong UTF-8 dots", "/static/%C0%AE%C0%AE/admin"],
    ["overlong UTF-8 slash", "/static/%C0%AF..%C0%AFadmin"],
    ["three-byte overlong dots", "/static/%E0%80%AE%E0%80%AE/admin"],
    ["double-encoded dots", "/static/%252e%252e/admin"],
    ["double-encoded slash", "/static%252F..%252Fadmin"],
    ["double-encoded slashes in a public path", "/static/%252F..%252Fadmin"],
    [".. with a trailing space (Windows)", "/static/..%20/admin"],
    ["three dots (Windows)", "/static/.../admin"],
    ["... then %2F", "/static/...%2Fadmin"],
    [".. with a tab", "/static/..%09/admin"],
    ["NUL byte", "/static/%00"],
    ["encoded newline", "/static/%0a/admin"],
    ["DEL", "/static/\x7f"],
    ["absolute-form request-target", "http://evil.example/admin"],
    ["absolute-form through the public prefix", "http://evil.example/static/../admin"],
  ];

  it.each(refused)("%s: %s is refused, the origin sees nothing", async (_, target) => {
    const { status, seen } = await attack(target);
    expect(seen).toEqual([]);
    expect(status).toBeGreaterThanOrEqual(400);
  });

  it("a refused navigation is sent to login, not to the origin", async () => {
    const { status, seen } = await attack("/static/..;/admin", NAVIGATE);
    expect(status).toBe(302);
    expect(seen).toEqual([]);
  });

  // Targets the URL parser resolves into a public path: forwarded, and the origin receives the
  // resolved path, not the raw one.
  const resolvedToPublic: [string, string, string][] = [
    ["dot segments before the public prefix", "/%2e%2e/static/x", "/static/x"],
    ["an empty segment eaten by ..", "/static//../x", "/static/x"],
    ["a NUL segment eaten by ..", "/static/%00/../x", "/static/x"],
    ["a query that looks like a traversal", "/static/x?/../../admin", "/static/x?/../../admin"],
  ];

  it.each(resolvedToPublic)("%s: %s reaches the origin as %s", async (_, target, expected) => {
    const { status, seen } = await attack(target);
    expect(status).toBe(200);
    expect(seen.map((request) => request.url)).toEqual([expected]);
    expectOnlyPublicReached(seen);
  });

  it("whatever reached the origin anonymously during these attacks is public under every reading", () => {
    expectOnlyPublicReached(stack.origin.requests as Seen[]);
    expect(stack.origin.requests.length).toBe(resolvedToPublic.length);
  });
});
