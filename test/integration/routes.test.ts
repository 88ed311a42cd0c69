/**
 * ROUTES and SERVICE_TOKENS against the development provider and recording origins: each access
 * kind, per-route lists, first-match order, spellings of a protected path, a second upstream and
 * its `aud`, machine clients, and every bad ROUTES shape on the configuration page.
 */
import { createHash, randomBytes } from "node:crypto";
import { importJWK, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { DEMO_USERS } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, startGate } from "../helpers/gate.ts";
import { logged, until } from "../helpers/gate-log.ts";
import { HttpClient } from "../helpers/http.ts";
import { rawRequest } from "../helpers/raw-http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

const sub = (login: string): string => DEMO_USERS.find((user: { login: string }) => user.login === login)!.claims.sub;
const JSON_FETCH = { accept: "application/json", "sec-fetch-mode": "cors" };
const CI_SECRET = randomBytes(32).toString("base64url");
const CI_TOKEN = `ci=${createHash("sha256").update(CI_SECRET).digest("base64url")}`;

type Origin = Awaited<ReturnType<typeof startOrigin>>;

describe("ROUTES: access, lists, order, upstreams and machine clients", () => {
  let stack: Stack;
  let second: Origin;

  beforeAll(async () => {
    second = await startOrigin();
    const routes = [
      { name: "debug", path: "/debug/*", access: "deny" },
      { name: "admin", path: "/admin/*", emails: ["petrov@example.kontur.ru"] },
      { name: "hooks", path: "/hooks/*", methods: ["POST"], access: "api", services: ["ci"] },
      { name: "docs", path: "/docs/*", access: "public" },
      { name: "shadowed", path: "/docs/secret/*", access: "deny" },
      { name: "api", path: "/api/*", access: "api" },
      { name: "second", path: "/second/*", origin: second.url },
    ];
    stack = await startStack({ vars: { ROUTES: JSON.stringify(routes), SERVICE_TOKENS: CI_TOKEN, ALLOWED_EMAILS: "demo@example.kontur.ru" } });
  });
  afterAll(async () => {
    await stack?.close();
    await second?.close();
  });

  async function verified(assertion: string | undefined, audience: string) {
    const key = await importJWK(stack.secrets.assertionPublicJwk, "ES256");
    return (await jwtVerify(assertion ?? "", key, { issuer: stack.gate.url, audience })).payload;
  }

  it("deny: 403 for a visitor and for a signed-in user; nothing reaches the origin", async () => {
    expect((await new HttpClient().get(`${stack.gate.url}/debug/x`, NAVIGATE)).status).toBe(403);
    const { client } = await stack.signIn("/", "demo");
    expect((await client.get(`${stack.gate.url}/debug/x`, NAVIGATE)).status).toBe(403);
    expect((await client.get(`${stack.gate.url}/debug/x`, JSON_FETCH)).status).toBe(403);
    expect(stack.originRequests("/debug")).toEqual([]);
  });

  it("public: served to a visitor unnamed; a user the lists admit is named; one they refuse is served unnamed", async () => {
    const anonymous = await fetch(`${stack.gate.url}/docs/intro`, { headers: NAVIGATE });
    expect(anonymous.status).toBe(200);
    const { client: demo } = await stack.signIn("/", "demo");
    expect((await demo.get(`${stack.gate.url}/docs/demo`, NAVIGATE)).status).toBe(200);
    const { client: petrov } = await stack.signIn("/admin/", "petrov");
    expect((await petrov.get(`${stack.gate.url}/docs/petrov`, NAVIGATE)).status).toBe(200);
    expect(stack.originRequests("/docs/intro")[0]!.headers["x-forwarded-user"]).toBeUndefined();
    expect(stack.originRequests("/docs/demo")[0]!.headers["x-forwarded-user"]).toBe(sub("demo"));
    expect(stack.originRequests("/docs/petrov")[0]!.headers["x-forwarded-user"]).toBeUndefined();
  });

  it("first match decides: a later deny route under /docs/ is never reached", async () => {
    expect((await fetch(`${stack.gate.url}/docs/secret/x`, { headers: NAVIGATE })).status).toBe(200);
  });

  it("api: a navigation without a session gets 401 JSON with login_url, not a redirect", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/api/items`, NAVIGATE);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: "unauthenticated", login_url: "/_auth/login?rd=%2Fapi%2Fitems" });
  });

  it("a route's lists replace the global ones there, and only there", async () => {
    const { client: petrov } = await stack.signIn("/admin/", "petrov");
    const admin = await petrov.get(`${stack.gate.url}/admin/users`, NAVIGATE);
    expect(admin.status).toBe(200);
    const [seen] = stack.originRequests("/admin/users");
    expect(seen!.headers["x-forwarded-user"]).toBe(sub("petrov"));
    const claims = await verified(seen!.headers["x-auth-assertion"] as string, stack.origin.url);
    expect(claims).toMatchObject({ sub: sub("petrov"), route: "admin" });
    expect(typeof claims.auth_time).toBe("number");
    expect((await petrov.get(`${stack.gate.url}/elsewhere`, NAVIGATE)).status).toBe(403);

    const { client: demo } = await stack.signIn("/", "demo");
    expect((await demo.get(`${stack.gate.url}/admin/demo`, NAVIGATE)).status).toBe(403);
    expect((await demo.get(`${stack.gate.url}/elsewhere-demo`, NAVIGATE)).status).toBe(200);
    expect(stack.originRequests("/admin/demo")).toEqual([]);
    // Off every route the assertion names no route.
    const [fallback] = stack.originRequests("/elsewhere-demo");
    expect((await verified(fallback!.headers["x-auth-assertion"] as string, stack.origin.url)).route).toBeUndefined();
  });

  it("no spelling of /admin/ or /debug/ reaches the origin for a user the route refuses", async () => {
    const { client: demo } = await stack.signIn("/", "demo");
    const cookie = demo.jar.header(new URL(stack.gate.url)) ?? "";
    const before = stack.originRequests().length;
    const targets = [
      "/%61dmin/x",
      "/ADMIN/x",
      "/Admin/x",
      "/admin;jsessionid=1/x",
      "/docs/..;/admin/x",
      "/docs/%2e%2e/admin/x",
      "/docs%2f..%2fadmin/x",
      "/docs/%252e%252e/admin/x",
      "/docs/..%5cadmin/x",
      "//admin/x",
      "/docs/..\\admin/x",
      "/%ef%bc%a1dmin/x",
      "/%64ebug/x",
      "/DEBUG/x",
      "/docs/..;/debug/x",
    ];
    for (const target of targets) {
      const signedIn = await rawRequest(stack.gate.url, target, { ...NAVIGATE, cookie });
      expect([400, 403], `${target} → ${signedIn.status}`).toContain(signedIn.status);
      // A visitor is refused, or sent to log in for the route the origin would serve.
      const visitor = await rawRequest(stack.gate.url, target, NAVIGATE);
      expect([302, 400, 403], `${target} → ${visitor.status}`).toContain(visitor.status);
    }
    const reached = stack.originRequests().slice(before).filter((request: { url: string }) => /admin|debug/i.test(decodeURIComponent(decodeURIComponent(request.url))));
    expect(reached).toEqual([]);
  });

  it("a route's own origin gets its requests, with the assertion's aud set to that origin", async () => {
    const { client } = await stack.signIn("/", "demo");
    expect((await client.get(`${stack.gate.url}/second/page?q=1`, NAVIGATE)).status).toBe(200);
    const [seen] = second.requests;
    expect(seen!.url).toBe("/second/page?q=1");
    expect(stack.originRequests("/second")).toEqual([]);
    const claims = await verified(seen!.headers["x-auth-assertion"] as string, second.url);
    expect(claims).toMatchObject({ aud: second.url, route: "second", htu: `${second.url}/second/page?q=1` });
  });

  describe("machine clients", () => {
    const credentials = (secret = CI_SECRET) => ({ "x-gate-client-id": "ci", "x-gate-client-secret": secret, accept: "application/json" });

    it("the right token on a route that admits it is forwarded as service:ci, without a cookie or the credentials", async () => {
      const response = await fetch(`${stack.gate.url}/hooks/build`, { method: "POST", headers: { ...credentials(), "x-gate_client_secret": "copy" }, body: "payload" });
      expect(response.status).toBe(200);
      expect(response.headers.getSetCookie()).toEqual([]);
      const [seen] = stack.originRequests("/hooks/build");
      expect(seen!.body).toBe("payload");
      expect(seen!.headers["x-forwarded-user"]).toBe("service:ci");
      expect(Object.keys(seen!.headers).filter((name) => /gate.client/i.test(name))).toEqual([]);
      const claims = await verified(seen!.headers["x-auth-assertion"] as string, stack.origin.url);
      expect(claims).toMatchObject({ sub: "service:ci", route: "hooks", htm: "POST" });
    });

    it.each([
      ["a wrong secret", "/hooks/wrong", "POST", "not-the-secret"],
      ["a route without services", "/admin/ci", "GET", CI_SECRET],
      ["the global settings", "/ci-elsewhere", "GET", CI_SECRET],
      ["a method the route does not match", "/hooks/get", "GET", CI_SECRET],
      ["a public route", "/docs/ci", "GET", CI_SECRET],
    ])("%s: 401 JSON, nothing forwarded, logged", async (_what, path, method, secret) => {
      const response = await fetch(`${stack.gate.url}${path}`, { method, headers: credentials(secret) });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: "service_refused" });
      expect(stack.originRequests(path)).toEqual([]);
      expect(await logged(stack.gate.logs, (line) => line.code === "service_refused" && line.path === path)).toBeDefined();
    });

    it("never logs a secret", () => {
      expect(stack.gate.logs.join("\n")).not.toContain(CI_SECRET);
    });
  });
});

describe("ROUTES: every bad shape is named on the configuration page", () => {
  /** The configuration page and the gate's log for these settings. */
  async function pageFor(extra: Record<string, string>): Promise<{ page: string; logs: string }> {
    const secrets = await generateSecrets();
    const gate = await startGate({
      OIDC_CLIENT_ID: "x",
      OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET,
      SESSION_SECRETS: secrets.SESSION_SECRETS,
      ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY,
      ...extra,
    });
    try {
      const response = await fetch(`${gate.url}/anything`);
      expect(response.status).toBe(500);
      const page = await response.text();
      // workerd hands log lines over asynchronously.
      await until(() => gate.logs.some((line) => line.includes("config_invalid")));
      return { page, logs: gate.logs.join("\n") };
    } finally {
      await gate.close();
    }
  }

  it("names ROUTES, the route's index and field, all at once (what is wrong, with values, only in the log)", async () => {
    const routes = [{ path: "/ok/*" }, { path: "admin" }, { access: "sometimes", origin: "service:NOPE" }, { colour: "red" }, { origin: "http://example.ru" }];
    const { page, logs } = await pageFor({ ROUTES: JSON.stringify(routes), SERVICE_TOKENS: "ci=short" });
    for (const place of ['ROUTES: route 1, "path"', 'ROUTES: route 2, "access"', 'ROUTES: route 2, "origin"', 'ROUTES: route 3, "colour"', 'ROUTES: route 4, "origin"', "SERVICE_TOKENS"]) {
      expect(page).toContain(`- ${place}`);
    }
    expect(page).not.toContain("sometimes");
    expect(page).not.toContain("http://example.ru");
    for (const expected of [
      'ROUTES: route 1, \\"path\\": pattern \\"admin\\" must start with /',
      'ROUTES: route 2, \\"access\\": must be one of users, public, api, deny',
      'ROUTES: route 2, \\"origin\\": the service binding \\"NOPE\\" does not exist',
      'ROUTES: route 3, \\"colour\\": is not a route field',
      'ROUTES: route 4, \\"origin\\": must be an https:// URL',
      'SERVICE_TOKENS: the hash of \\"ci\\" must be the base64url SHA-256',
    ]) {
      expect(logs).toContain(expected);
    }
    expect(page).not.toContain("route 0");
  });

  it("names bad JSON", async () => {
    const { page, logs } = await pageFor({ ROUTES: "[{path:" });
    expect(page).toContain("- ROUTES");
    expect(logs).toContain("ROUTES: is not valid JSON");
  });
});
