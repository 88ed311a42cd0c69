import { describe, expect, it } from "vitest";
import { parseConfig, type Route } from "../../../src/config";
import { canonicalPath } from "../../../src/policy/path";
import { decideRoute, loginMaxAge } from "../../../src/policy/routes";
import { authenticateService, secretDigest } from "../../../src/policy/service-tokens";
import { sanitizedHeaders } from "../../../src/proxy/headers";
import { base64url } from "../../../src/session/seal";
import { validSettings } from "../fixtures";

const ROUTES = [
  { name: "debug", path: "/debug/*", access: "deny" },
  { name: "admin", path: "/admin/*", emails: ["boss@example.ru"], max_age: 300 },
  { name: "hooks", path: "/hooks/*", methods: ["POST"], access: "api", services: ["ci"] },
  { name: "docs", path: "/docs/*", access: "public" },
  { name: "files", path: "/файлы/*", access: "public" },
  { name: "beta", host: "beta.example.ru", access: "api" },
  { name: "tenants", host: "*.tenants.example.ru", access: "public" },
];

const config = parseConfig(
  await validSettings({ ROUTES: JSON.stringify(ROUTES), SERVICE_TOKENS: `ci=${base64url(await secretDigest("ci-secret"))}` }),
);

/** The decision for a URL as workerd parses it (the URL parser has resolved `..` and `\` already). */
function decide(href: string, method = "GET") {
  const url = new URL(href);
  return decideRoute(config.routes, url.hostname, canonicalPath(url.pathname), method);
}

function routeName(href: string, method = "GET"): string | undefined {
  const decision = decide(href, method);
  if (decision.kind !== "route") return "ambiguous";
  return decision.route?.name;
}

describe("routes: the first match decides", () => {
  it.each([
    ["https://site.example.ru/debug/x", "GET", "debug"],
    ["https://site.example.ru/admin/users", "GET", "admin"],
    ["https://site.example.ru/admin", "GET", undefined], // `/admin/*` is `/admin/` and below, as in PUBLIC_PATHS
    ["https://site.example.ru/hooks/build", "POST", "hooks"],
    ["https://site.example.ru/hooks/build", "post", "hooks"],
    ["https://site.example.ru/hooks/build", "GET", undefined],
    ["https://site.example.ru/docs/intro", "GET", "docs"],
    ["https://site.example.ru/%D1%84%D0%B0%D0%B9%D0%BB%D1%8B/a.pdf", "GET", "files"],
    ["https://site.example.ru/", "GET", undefined],
    ["https://beta.example.ru/docs/intro", "GET", "docs"], // an earlier route wins over a later host route
    ["https://beta.example.ru/anything", "GET", "beta"],
    ["https://beta.example.ru./anything", "GET", "beta"], // the trailing-dot spelling of the host
    ["https://BETA.example.ru/anything", "GET", "beta"],
    ["https://a.tenants.example.ru/x", "GET", "tenants"],
    ["https://a.b.tenants.example.ru/x", "GET", "tenants"],
    ["https://tenants.example.ru/x", "GET", undefined], // `*.` means subdomains only
    ["https://eviltenants.example.ru/x", "GET", undefined],
  ])("%s %s → %s", (href, method, expected) => {
    expect(routeName(href, method)).toBe(expected);
  });

  it("without ROUTES every request is the global settings' (nothing else is computed)", async () => {
    const plain = parseConfig(await validSettings());
    expect(decideRoute(plain.routes, "site.example.ru", canonicalPath("/%2e%2e/admin"), "GET")).toEqual({ kind: "route", route: undefined });
  });
});

describe("routes: spellings never route a request away from a protected route", () => {
  // Each of these reaches /admin/… or /debug/… on some origin (decoding, case folding, Tomcat's
  // `;` parameters, IIS's `\`, collapsed slashes, a second decoding by a proxy).
  it.each([
    ["/%61dmin/users", "admin"],
    ["/ADMIN/users", "admin"],
    ["/Admin/users", "admin"],
    ["/admin;x=1/users", "admin"],
    ["/docs/..;/admin/users", "admin"],
    ["/docs/%2e%2e/admin/users", "admin"],
    ["/docs/%2e%2e%2fadmin/users", "admin"],
    ["/docs%2f..%2fadmin/users", "admin"],
    ["/docs/%252e%252e/admin/users", "admin"],
    ["/docs/.%2e/admin/users", "admin"],
    ["/docs/..%5cadmin/users", "admin"],
    ["//admin/users", "admin"],
    ["/%2fadmin/users", "admin"],
    ["/docs/%2E%2E%2F%2E%2E%2Fadmin/x", "admin"],
    ["/%ef%bc%a1dmin/users", "admin"], // fullwidth Ａ folds to A under NFKC
  ])("%s is decided by the protected route or refused, never by another route", (path, protectedRoute) => {
    const decision = decide(`https://site.example.ru${path}`);
    if (decision.kind === "route") expect(decision.route?.name).toBe(protectedRoute);
    else expect(decision.routes.map((route) => route?.name)).toContain(protectedRoute);
  });

  it.each(["/%64ebug/x", "/DEBUG/x", "/docs/..;/debug/x", "/docs%2f..%2fdebug/x", "/debug;a=b/x", "/docs/%252e%252e/debug/x"])(
    "%s reaches the deny route itself: closed whichever way the origin reads it",
    (path) => {
      expect(routeName(`https://site.example.ru${path}`)).toBe("debug");
    },
  );

  it.each(["/docs/intro", "/docs/a%20b", "/docs/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82", "/admin/a;jsessionid=1", "/docs/file.tar.gz", "/docs/..hidden"])(
    "an ordinary spelling %s keeps its route",
    (path) => {
      expect(decide(`https://site.example.ru${path}`).kind).toBe("route");
    },
  );
});

describe("routes: the step-up a login asks for", () => {
  const site = new URL("https://site.example.ru/_auth/login");
  it.each([
    ["/admin/users?tab=1", 300],
    ["/docs/intro", undefined],
    [undefined, undefined],
    ["https://evil.example/admin/x", undefined],
    ["/%61dmin/x", undefined],
  ])("rd=%s → max_age %s", (rd, expected) => {
    expect(loginMaxAge(config.routes, site, rd)).toBe(expected);
  });
});

describe("service tokens", () => {
  const headers = (id: string | undefined, secret: string | undefined) =>
    new Headers({ ...(id === undefined ? {} : { "x-gate-client-id": id }), ...(secret === undefined ? {} : { "x-gate-client-secret": secret }) });

  it.each([
    ["ci", "ci-secret", "ci"],
    ["ci", "ci-secret ", "ci"],
    ["ci", "wrong", undefined],
    ["ci", "", undefined],
    ["ci", undefined, undefined],
    ["CI", "ci-secret", undefined],
    ["other", "ci-secret", undefined],
    [undefined, "ci-secret", undefined],
    ["ci", "x".repeat(5000), undefined],
  ])("case %#: id %s", async (id, secret, expected) => {
    expect(await authenticateService(config.serviceTokens, headers(id, secret))).toBe(expected);
  });

  it("strips both headers in every spelling an origin could read", () => {
    const stripped = new Headers({
      "x-gate-client-id": "ci",
      "X-Gate-Client-Secret": "s",
      x_gate_client_secret: "s",
      "x-gate-client-id_": "kept",
      accept: "application/json",
    });
    const forwarded = sanitizedHeaders(stripped, new URL("https://site.example/"), () => false);
    expect([...forwarded.keys()].filter((name) => !name.startsWith("x-forwarded-"))).toEqual(["accept", "x-gate-client-id_"]);
  });
});

/** Every route parsed from ROUTES, in order (a sanity check of the table above). */
it("the table's routes are all there", () => {
  expect(config.routes.map((route: Route) => route.name)).toEqual(ROUTES.map((route) => route.name));
});
