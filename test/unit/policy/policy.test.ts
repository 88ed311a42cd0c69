import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config";
import { isAllowed, isPreflight, isPublicPath, wantsLoginRedirect } from "../../../src/policy/access";
import { canonicalPath, matchesPattern } from "../../../src/policy/path";
import { safeReturnPath } from "../../../src/policy/return-path";
import { OPEN_REDIRECT_PAYLOADS } from "../../helpers/open-redirects";
import { validSettings } from "../fixtures";

const SITE = "https://site.example";

describe("return targets (rd): only paths on this site", () => {
  it.each([
    ["/", "/"],
    ["/reports?year=2026#top", "/reports?year=2026#top"],
    ["/a/b/../c", "/a/c"],
    ["/%D0%BE%D1%82%D1%87%D1%91%D1%82", "/%D0%BE%D1%82%D1%87%D1%91%D1%82"],
    ["/path?next=https://evil.com", "/path?next=https://evil.com"],
  ])("keeps %s", (target, expected) => expect(safeReturnPath(target, SITE)).toBe(expected));

  // Each payload must end on the site: either "/" or a path that stays on SITE.
  const payloads = OPEN_REDIRECT_PAYLOADS;

  it.each(payloads)("%j ends on the site", (payload) => {
    const target = safeReturnPath(payload, SITE);
    expect(target.startsWith("/")).toBe(true);
    expect(target.startsWith("//")).toBe(false);
    expect(target.startsWith("/\\")).toBe(false);
    expect(new URL(target, SITE).origin).toBe(SITE);
  });

  it("has at least 40 payloads", () => expect(payloads.length).toBeGreaterThanOrEqual(40));

  it.each([undefined, null, ""])("falls back to / for %j", (value) => expect(safeReturnPath(value, SITE)).toBe("/"));
});

describe("paths: decisions on the path the origin sees", () => {
  it.each([
    ["/static/app.css", "/static/*", true],
    ["/static/", "/static/*", true],
    ["/static", "/static/*", false],
    ["/staticfoo", "/static/*", false],
    ["/favicon.ico", "/favicon.ico", true],
    ["/favicon.ico/x", "/favicon.ico", false],
  ])("%s against %s → %s", (path, pattern, expected) => expect(matchesPattern(path, pattern)).toBe(expected));

  it.each([
    "/static/%2e%2e/admin",
    "/static/..%2fadmin",
    "/static%2F..%2Fadmin",
    "/static/%5C../admin",
    "/static\\..\\admin",
    "/static//admin",
    "/static/%00",
    "/static/%E0%A4%A",
    "/static/%0d%0a",
    // `;` path parameters: Tomcat and Spring drop them, so `..;` becomes `..`.
    "/static/..;/admin",
    "/static/%2e%2e;/admin",
    "/static/.;/admin",
    "/static;jsessionid=1/../admin",
    "/static/app.css;/../../admin",
    "/static/..%3B/admin",
    "/static/%3B/admin",
    // Double encoding: a second decoder (origin framework, proxy in front of it) reveals structure.
    "/static/%252e%252e/admin",
    "/static/%252F..%252Fadmin",
    "/static/%255c..%255cadmin",
    "/static/%25",
    // Dot segments that survive the URL parser because they hide behind encoding or padding.
    "/static/...",
    "/static/.../admin",
    "/static/..%20/admin",
    "/static/%20../admin",
    "/static/..%09/admin",
    "/static/.%2E%2E/admin",
    // Unicode that NFKC (or Windows best-fit) folds into `.`, `/`, `\` or `;`.
    "/static/%EF%BC%8E%EF%BC%8E/admin",
    "/static/%EF%BC%8F..%EF%BC%8Fadmin",
    "/static/%EF%BC%BC..%EF%BC%BCadmin",
    "/static/%E2%80%A5/admin",
    "/static/%E2%88%95..%E2%88%95admin",
    "/static/%E2%81%84..%E2%81%84admin",
    "/static/%E2%88%96..%E2%88%96admin",
    "/static/%EF%BC%9B/admin",
    "/static/%CD%BE/admin",
    "/static/%E3%80%82%E3%80%82/admin",
    // Decomposed Unicode: an origin that normalizes sees other bytes than the gate matched.
    "/static/%D0%B8%CC%86.css",
    // Overlong UTF-8 for `/` and `.` (IIS once decoded these).
    "/static/%C0%AF..%C0%AFadmin",
    "/static/%C0%AE%C0%AE/admin",
    "/static/%E0%80%AE%E0%80%AE/admin",
  ])("%s is ambiguous and never public", async (pathname) => {
    const config = parseConfig(await validSettings({ PUBLIC_PATHS: "/static/*" }));
    const path = canonicalPath(pathname);
    expect(path.ambiguous).toBe(true);
    expect(isPublicPath(path, config)).toBe(false);
  });

  it("a path of 200,000 dots is judged in linear time (no regular-expression backtracking) and is ambiguous", () => {
    // A quadratic check took ~0.4 s for 16,000 dots: this many would run far past the test's timeout.
    const path = canonicalPath(`/static/${".".repeat(200_000)}x/${".".repeat(200_000)}`);
    expect(path.ambiguous).toBe(true);
  });

  it("decides on the path new URL() produces, which is what the origin receives", async () => {
    const config = parseConfig(await validSettings({ PUBLIC_PATHS: "/static/*" }));
    // The URL parser resolves dot segments (also encoded ones) before the gate sees the path.
    for (const raw of ["/static/../admin", "/static/%2e%2e/admin", "/static/.%2E/admin"]) {
      const pathname = new URL(`https://site.example${raw}`).pathname;
      expect(pathname).toBe("/admin");
      expect(isPublicPath(canonicalPath(pathname), config)).toBe(false);
    }
  });

  it.each([
    "/static/app.css",
    "/static/a..b/c.js",
    "/static/.well-known/x",
    "/static/v1.2.3/app.js",
    "/static/%D1%84%D0%B0%D0%B9%D0%BB.css",
    "/static/%D0%B9.css",
    "/static/a%20b.png",
    "/favicon.ico",
  ])("%s is an ordinary public path", async (pathname) => {
    const config = parseConfig(await validSettings({ PUBLIC_PATHS: "/static/*, /favicon.ico" }));
    const path = canonicalPath(pathname);
    expect(path.ambiguous).toBe(false);
    expect(isPublicPath(path, config)).toBe(true);
  });

  it.each(["/STATIC/app.css", "/Static/app.css", "/static", "/staticx/app.css", "/FAVICON.ICO", "/favicon.ico/x", "/admin/static/x"])(
    "%s is not public (patterns are exact and case-sensitive)",
    async (pathname) => {
      const config = parseConfig(await validSettings({ PUBLIC_PATHS: "/static/*, /favicon.ico" }));
      expect(isPublicPath(canonicalPath(pathname), config)).toBe(false);
    },
  );

  it("matches the path as the origin receives it: an encoded letter is another path to an origin that does not decode", async () => {
    const config = parseConfig(await validSettings({ PUBLIC_PATHS: "/static/*" }));
    expect(isPublicPath(canonicalPath("/%73tatic/app.css"), config)).toBe(false);
    expect(isPublicPath(canonicalPath("/static/app%2Ecss"), config)).toBe(true);
  });

  it("encodes non-ASCII patterns the way URLs carry them", async () => {
    const config = parseConfig(await validSettings({ PUBLIC_PATHS: "/файлы/*, /о нас" }));
    expect(isPublicPath(canonicalPath(new URL("https://site.example/файлы/отчёт.pdf").pathname), config)).toBe(true);
    expect(isPublicPath(canonicalPath("/%D0%BE%20%D0%BD%D0%B0%D1%81"), config)).toBe(true);
    // Lower-case hex is another byte string to an origin that compares paths raw.
    expect(isPublicPath(canonicalPath("/%d1%84%d0%b0%d0%b9%d0%bb%d1%8b/x"), config)).toBe(false);
  });
});

describe("who gets a login redirect and who gets 401 JSON", () => {
  async function decide(init: RequestInit & { url?: string }, apiPaths = "") {
    const config = parseConfig(await validSettings({ API_PATHS: apiPaths }));
    const url = init.url ?? "https://site.example/page";
    return wantsLoginRedirect(new Request(url, init), canonicalPath(new URL(url).pathname), config);
  }

  it("a top-level navigation gets the redirect", async () => {
    expect(await decide({ headers: { "sec-fetch-mode": "navigate", accept: "text/html" } })).toBe(true);
  });
  it("an old browser without fetch metadata asking for HTML gets the redirect", async () => {
    expect(await decide({ headers: { accept: "text/html,application/xhtml+xml" } })).toBe(true);
  });
  it.each([
    ["fetch() from a page", { "sec-fetch-mode": "cors", accept: "*/*" }],
    ["an XHR", { "x-requested-with": "XMLHttpRequest", accept: "text/html" }],
    ["a WebSocket upgrade", { upgrade: "websocket", "sec-fetch-mode": "websocket" }],
    ["curl", { accept: "*/*" }],
    ["a JSON client", { accept: "application/json" }],
    ["an <img> or <script> load", { "sec-fetch-mode": "no-cors", accept: "text/html,*/*" }],
    ["a same-origin fetch() asking for HTML", { "sec-fetch-mode": "same-origin", accept: "text/html" }],
    ["a lower-case X-Requested-With", { "x-requested-with": "xmlhttprequest", "sec-fetch-mode": "navigate", accept: "text/html" }],
    ["a WebSocket upgrade without fetch metadata", { upgrade: "WebSocket", connection: "Upgrade", accept: "text/html" }],
    ["a client that sends no headers at all", {}],
  ])("%s gets 401 JSON", async (_, headers) => expect(await decide({ headers })).toBe(false));
  it("a HEAD navigation gets the redirect", async () => {
    expect(await decide({ method: "HEAD", headers: { "sec-fetch-mode": "navigate", accept: "text/html" } })).toBe(true);
  });
  it.each(["PUT", "PATCH", "DELETE", "OPTIONS"])("%s gets 401 JSON", async (method) => {
    expect(await decide({ method, headers: { "sec-fetch-mode": "navigate", accept: "text/html" } })).toBe(false);
  });
  it("a form POST gets 401 JSON (the body would be lost in a redirect)", async () => {
    expect(await decide({ method: "POST", headers: { "sec-fetch-mode": "navigate", accept: "text/html" } })).toBe(false);
  });
  it("a navigation to an API path gets 401 JSON", async () => {
    expect(await decide({ url: "https://site.example/api/v1/x", headers: { "sec-fetch-mode": "navigate", accept: "text/html" } }, "/api/*")).toBe(false);
  });
  it("a CORS preflight is recognised", () => {
    const preflight = { "access-control-request-method": "POST", origin: "https://app.example" };
    expect(isPreflight(new Request("https://site.example/api", { method: "OPTIONS", headers: preflight }))).toBe(true);
    // Browsers always send Origin with a preflight; an OPTIONS without it is no preflight.
    expect(isPreflight(new Request("https://site.example/api", { method: "OPTIONS", headers: { "access-control-request-method": "POST" } }))).toBe(false);
    expect(isPreflight(new Request("https://site.example/api", { method: "OPTIONS" }))).toBe(false);
  });
});

describe("allow-lists", () => {
  async function allowed(settings: Record<string, string>, user: { sub: string; email?: string }) {
    return isAllowed(user, parseConfig(await validSettings(settings)));
  }

  it("lets everyone in when no list is set", async () => expect(await allowed({}, { sub: "1" })).toBe(true));
  it("matches e-mails case-insensitively", async () => expect(await allowed({ ALLOWED_EMAILS: "Boss@Kontur.ru" }, { sub: "1", email: "boss@kontur.RU" })).toBe(true));
  it("matches subjects exactly", async () => {
    expect(await allowed({ ALLOWED_SUBJECTS: "abc" }, { sub: "abc" })).toBe(true);
    expect(await allowed({ ALLOWED_SUBJECTS: "abc" }, { sub: "ABC" })).toBe(false);
  });
  it.each([
    ["user@kontur.ru", true],
    ["user@KONTUR.RU", true],
    ["user@evil-kontur.ru", false],
    ["user@kontur.ru.evil.com", false],
    ["user@sub.kontur.ru", false],
    ["user@evil.com@kontur.ru", false],
    ["user@kontur.ru@evil.com", false],
    ["@kontur.ru", false],
    ["kontur.ru", false],
  ])("domain kontur.ru: %s → %s", async (email, expected) => expect(await allowed({ ALLOWED_EMAIL_DOMAINS: "kontur.ru" }, { sub: "1", email })).toBe(expected));
  it("refuses a user without e-mail when only e-mail lists are set", async () => expect(await allowed({ ALLOWED_EMAIL_DOMAINS: "kontur.ru" }, { sub: "1" })).toBe(false));
});
