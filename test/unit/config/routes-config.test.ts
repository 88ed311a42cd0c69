import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config";
import { secretDigest } from "../../../src/policy/service-tokens";
import { base64url } from "../../../src/session/seal";
import { problemsOf, validSettings } from "../fixtures";


const base = await validSettings();

async function tokenFor(name: string, secret: string): Promise<string> {
  return `${name}=${base64url(await secretDigest(secret))}`;
}

describe("ROUTES: reading", () => {
  it("is empty without the setting: the global settings apply everywhere", async () => {
    const config = parseConfig(await validSettings());
    expect(config.routes).toEqual([]);
    expect(config.serviceTokens.size).toBe(0);
  });

  it("reads a JSON string with every field, and fills the defaults", async () => {
    const routes = [
      { name: "admin", host: "Admin.Example.RU", path: "/admin/*", methods: ["get", "POST"], emails: ["Boss@Example.ru"], email_domains: "@corp.ru", max_age: "15m" },
      { path: "/docs/*", access: "public", origin: "https://docs.example.ru/base", cors_preflight: "origin" },
      { host: "*.example.ru", access: "api", subjects: ["s-1"], services: ["ci"], origin: "service:DOCS_WORKER", max_age: 300 },
    ];
    const config = parseConfig(await validSettings({ ROUTES: JSON.stringify(routes), SERVICE_TOKENS: await tokenFor("ci", "s3cret") }), { hasService: (name) => name === "DOCS_WORKER" });
    const [admin, docs, api] = config.routes;
    expect(admin).toMatchObject({ index: 0, name: "admin", host: "admin.example.ru", path: "/admin/*", methods: ["GET", "POST"], access: "users", maxAge: 900 });
    expect(admin!.lists).toEqual({ allowedEmails: ["boss@example.ru"], allowedEmailDomains: ["corp.ru"], allowedSubjects: [] });
    expect(docs).toMatchObject({ name: "1", host: undefined, methods: undefined, access: "public", lists: undefined, corsPreflight: "origin", services: [] });
    expect(docs!.upstream).toEqual({ kind: "url", url: new URL("https://docs.example.ru/base") });
    expect(api).toMatchObject({ name: "2", host: "*.example.ru", path: "/*", access: "api", services: ["ci"], maxAge: 300 });
    expect(api!.upstream).toEqual({ kind: "service", binding: "DOCS_WORKER" });
  });

  it("takes the array wrangler hands over for a TOML array of tables under [vars]", async () => {
    const config = parseConfig(await validSettings({ ROUTES: [{ path: "/debug/*", access: "deny" }, { path: "/docs/*", access: "public" }] }));
    expect(config.routes.map((route) => [route.path, route.access])).toEqual([
      ["/debug/*", "deny"],
      ["/docs/*", "public"],
    ]);
  });

  it("reports bad JSON and a non-array, naming ROUTES", async () => {
    const notJson = problemsOf(() => parseConfig({ ...base, ROUTES: "[{path: /admin}]" }));
    expect(notJson).toHaveLength(1);
    expect(notJson[0]).toMatch(/^ROUTES: is not valid JSON/);
    expect(problemsOf(() => parseConfig({ ...base, ROUTES: '{"path": "/x"}' }))).toEqual([
      'ROUTES: must be an array of routes like [{"path": "/admin/*", "emails": ["a@example.ru"]}]',
    ]);
  });

  it("names every mistake with the route's index and field, all at once", async () => {
    const routes = [
      { path: "/admin*x", acess: "users" },
      "not a route",
      { host: "https://example.ru/", access: "everyone", methods: [], max_age: "soon" },
      { origin: "http://origin.example.ru", services: ["nobody"], cors_preflight: "maybe" },
      { origin: "service:MISSING" },
      { origin: "service:SESSIONS", name: "twice" },
      { access: "deny", emails: ["a@example.ru"], origin: "https://x.example.ru" },
      { name: "twice", path: "/%61dmin/*", origin: "https://user:pw@x.example.ru/?q" },
      { access: "public", max_age: 60 },
    ];
    const problems = problemsOf(() => parseConfig({ ...base, ROUTES: JSON.stringify(routes) }, { hasService: () => false }));
    expect(problems).toEqual([
      'ROUTES: route 0, "acess": is not a route field (known: name, host, path, methods, access, emails, email_domains, subjects, services, origin, max_age, cors_preflight)',
      'ROUTES: route 0, "path": pattern "/admin*x" must start with / and may end with a single * (like /static/*)',
      'ROUTES: route 1: must be an object with fields like "path" and "access"',
      'ROUTES: route 2, "access": must be one of users, public, api, deny (got "everyone")',
      'ROUTES: route 2, "methods": must be a non-empty list of strings',
      'ROUTES: route 2, "max_age": must be whole seconds (at least 1) or a number with s, m, h or d, like 300 or 15m',
      'ROUTES: route 2, "host": must be a hostname like admin.example.ru or *.example.ru, without scheme, port or path (got "https://example.ru/")',
      'ROUTES: route 3, "services": "nobody" is not a name in SERVICE_TOKENS',
      'ROUTES: route 3, "cors_preflight": must be gate or origin (got "maybe")',
      'ROUTES: route 3, "origin": must be an https:// URL (http:// only on a loopback host) or service:BINDING (got "http://origin.example.ru")',
      'ROUTES: route 4, "origin": the service binding "MISSING" does not exist; add [[services]] binding = "MISSING" to wrangler.toml',
      'ROUTES: route 5, "origin": "service:SESSIONS" must name a service binding, like service:ORIGIN_WORKER',
      'ROUTES: route 6, "emails": has no effect on a route with access deny',
      'ROUTES: route 6, "origin": has no effect on a route with access deny',
      'ROUTES: route 7, "path": pattern "/%61dmin/*" must be a plain path: no ?, #, %, \\, //, tabs, line breaks or . and .. segments',
      'ROUTES: route 7, "origin": must be a base URL without credentials, query or fragment (got "https://x.example.ru/…")',
      'ROUTES: route 8, "max_age": has no effect on a route with access public',
      'ROUTES: route 7, "name": "twice" is used by an earlier route',
    ]);
  });

  it("takes a Cyrillic hostname in the punycode form requests arrive with", async () => {
    const config = parseConfig(await validSettings({ ROUTES: JSON.stringify([{ host: "*.Пример.рф" }, { host: "админ.пример.рф." }]) }));
    expect(config.routes.map((route) => route.host)).toEqual(["*.xn--e1afmkfd.xn--p1ai", "xn--80aimpg.xn--e1afmkfd.xn--p1ai"]);
  });

  it("allows a loopback http:// origin (development and tests)", async () => {
    const config = parseConfig(await validSettings({ ROUTES: JSON.stringify([{ origin: "http://127.0.0.1:9999" }]) }));
    expect(config.routes[0]!.upstream).toEqual({ kind: "url", url: new URL("http://127.0.0.1:9999") });
  });
});

describe("SERVICE_TOKENS: reading", () => {
  it("keeps the SHA-256 of each secret by name", async () => {
    const config = parseConfig(await validSettings({ SERVICE_TOKENS: `${await tokenFor("ci", "one")}, ${await tokenFor("deploy.bot", "two")}` }));
    expect([...config.serviceTokens.keys()]).toEqual(["ci", "deploy.bot"]);
    expect(config.serviceTokens.get("ci")).toEqual(await secretDigest("one"));
  });

  it("names every mistake without echoing a hash", async () => {
    const ci = await tokenFor("ci", "one");
    const problems = problemsOf(() => parseConfig({ ...base, SERVICE_TOKENS: `${ci}, ${ci}, just-a-name, bad name=${ci.split("=")[1]}, short=AAAA` }));
    expect(problems).toEqual([
      'SERVICE_TOKENS: "ci" is listed twice',
      "SERVICE_TOKENS: entry 3 must be name=<hash> with a name of letters, digits, . _ - (at most 64)",
      "SERVICE_TOKENS: entry 4 must be name=<hash> with a name of letters, digits, . _ - (at most 64)",
      'SERVICE_TOKENS: the hash of "short" must be the base64url SHA-256 of its secret (32 bytes); make one with npm run setup -- --add-service short',
    ]);
    expect(problems.join("\n")).not.toContain(ci.split("=")[1]);
  });
});
