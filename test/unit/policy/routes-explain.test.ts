import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config";
import { explain } from "../../../src/policy/explain";
import { secretDigest } from "../../../src/policy/service-tokens";
import { base64url } from "../../../src/session/seal";
import { validSettings } from "../fixtures";

const ROUTES = [
  { name: "debug", path: "/debug/*", access: "deny" },
  { name: "admin", path: "/admin/*", emails: ["boss@example.ru"], max_age: 300 },
  { name: "hooks", path: "/hooks/*", methods: ["POST"], access: "api", services: ["ci"] },
  { name: "docs", path: "/docs/*", access: "public", origin: "https://docs.example.ru" },
  { name: "worker", path: "/w/*", origin: "service:ORIGIN_WORKER" },
];

const config = parseConfig(
  await validSettings({
    ROUTES: JSON.stringify(ROUTES),
    SERVICE_TOKENS: `ci=${base64url(await secretDigest("x"))}`,
    ALLOWED_EMAIL_DOMAINS: "example.ru",
    PUBLIC_PATHS: "/static/*",
    ORIGIN_URL: "https://origin.example.ru",
  }),
);

const at = (path: string) => new URL(`https://site.example.ru${path}`);

describe("npm run check -- --explain: the gate's decision, explained", () => {
  it.each([
    ["/debug/x", "GET", {}, 'route 0 "debug"', "refused: 403 for everyone"],
    ["/admin/x", "GET", { email: "boss@example.ru" }, 'route 1 "admin"', 'forwarded to https://origin.example.ru/ as this user, with X-Auth-Assertion (route "admin")'],
    ["/admin/x", "GET", { email: "clerk@example.ru" }, 'route 1 "admin"', "refused: 403 forbidden"],
    ["/admin/x", "GET", {}, 'route 1 "admin"', "a login redirect for a page, 401 JSON with login_url for a script"],
    ["/hooks/build", "POST", { service: "ci" }, 'route 2 "hooks"', "forwarded to https://origin.example.ru/ as service:ci (no cookie)"],
    ["/hooks/build", "POST", {}, 'route 2 "hooks"', "401 JSON with login_url"],
    ["/hooks/build", "GET", { service: "ci" }, "the global settings (no route matches)", "refused: 401 service_refused"],
    ["/admin/x", "GET", { service: "ci" }, 'route 1 "admin"', "refused: 401 service_refused"],
    ["/hooks/build", "POST", { service: "cd" }, 'route 2 "hooks"', "refused: 401 service_refused"],
    ["/docs/a", "GET", {}, 'route 3 "docs"', "forwarded to https://docs.example.ru/ without identity"],
    ["/docs/a%2fb", "GET", {}, 'route 3 "docs"', "a login redirect for a page, 401 JSON with login_url for a script"],
    ["/docs/a", "GET", { email: "x@other.ru" }, 'route 3 "docs"', "forwarded to https://docs.example.ru/ without identity (the lists do not admit this user)"],
    ["/w/a", "GET", { sub: "s-1" }, 'route 4 "worker"', "refused: 403 forbidden"],
    ["/static/a.css", "GET", {}, "the global settings (no route matches)", "forwarded to https://origin.example.ru/ without identity"],
    ["/page", "GET", { email: "clerk@example.ru" }, "the global settings (no route matches)", "forwarded to https://origin.example.ru/ as this user, with X-Auth-Assertion"],
    ["/%61dmin/x", "GET", { email: "clerk@example.ru" }, "no route: the spelling is ambiguous", "refused: 400 ambiguous_path"],
  ])("%s %s as %o", (path, method, asker, decidedBy, outcome) => {
    const result = explain(config, at(path), method, asker);
    expect(result.decidedBy.startsWith(decidedBy)).toBe(true);
    expect(result.outcome).toBe(outcome);
  });

  it("says why: the lists, the access kind and the step-up", () => {
    expect(explain(config, at("/admin/x"), "GET", { email: "boss@example.ru" }).why).toEqual([
      "the route's lists admit boss@example.ru",
      "access is users",
      "step-up: a sign-in at the provider older than 300s goes back through the provider with max_age=300",
    ]);
    expect(explain(config, at("/w/a"), "GET", { sub: "s-1" }).why).toContain("the global lists admit @example.ru");
  });
});
