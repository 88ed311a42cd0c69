import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, loopbackGateVars, startGate, type Gate } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { rawRequest } from "../helpers/raw-http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { startWsOrigin, type WsOrigin } from "../helpers/ws-origin.ts";

const JSON_CLIENT = { accept: "application/json", "sec-fetch-mode": "cors" };

describe("caching: personal answers never go to shared caches unless the origin marks them public", () => {
  let origin: WsOrigin;
  let stack: Stack;
  let client: HttpClient;
  beforeAll(async () => {
    origin = await startWsOrigin();
    stack = await startStack({ vars: { ORIGIN_URL: origin.url, PUBLIC_PATHS: "/static/*" } });
    ({ client } = await stack.signIn("/"));
  });
  afterAll(async () => {
    await stack.close();
    await origin.close();
  });

  it.each([
    ["no Cache-Control", null, "private"],
    ["a max-age", "max-age=600", "private, max-age=600"],
    ["an s-maxage meant for shared caches", "s-maxage=600", "private, s-maxage=600"],
    ["no-cache", "no-cache", "private, no-cache"],
    ["public", "public, max-age=600", "public, max-age=600"],
    ["private", "private, max-age=60", "private, max-age=60"],
    ["no-store", "no-store", "no-store"],
  ])("origin says %s → the browser gets %j", async (_, sent, expected) => {
    const query = sent === null ? "" : `?cache-control=${encodeURIComponent(sent)}`;
    const response = await client.get(`${stack.gate.url}/page${query}`, NAVIGATE);
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe(expected);
  });

  it("an anonymous answer on a public path is left as the origin made it", async () => {
    const bare = await new HttpClient().get(`${stack.gate.url}/static/app.css`, NAVIGATE);
    expect(bare.headers.get("cache-control")).toBeNull();
    const cached = await new HttpClient().get(`${stack.gate.url}/static/app.css?cache-control=max-age%3D3600`, NAVIGATE);
    expect(cached.headers.get("cache-control")).toBe("max-age=3600");
  });

  it("the same public path for a signed-in user is personal (it carries identity)", async () => {
    const response = await client.get(`${stack.gate.url}/static/app.css?cache-control=max-age%3D3600`, NAVIGATE);
    expect(response.headers.get("cache-control")).toBe("private, max-age=3600");
    expect(origin.requests.at(-1)!.headers["x-forwarded-user"]).toEqual(expect.any(String));
  });

  it("personal requests are fetched past Cloudflare's cache (cache: no-store), anonymous ones are not", async () => {
    // The runtime marks a no-store subrequest with these request headers: proof the mode took effect.
    await client.get(`${stack.gate.url}/mine`, NAVIGATE);
    expect(origin.requests.at(-1)!.headers).toMatchObject({ "cache-control": "no-cache", pragma: "no-cache" });
    await new HttpClient().get(`${stack.gate.url}/static/shared.css`, NAVIGATE);
    expect(origin.requests.at(-1)!.headers["cache-control"]).toBeUndefined();
    expect(origin.requests.at(-1)!.headers.pragma).toBeUndefined();
  });
});

describe("caching: every page and error of the gate itself is no-store", () => {
  let stack: Stack;
  let signedIn: HttpClient;
  beforeAll(async () => {
    stack = await startStack({ vars: { ALLOWED_EMAILS: "demo@example.kontur.ru" } });
    ({ client: signedIn } = await stack.signIn("/"));
  });
  afterAll(() => stack.close());

  async function expectNoStore(response: Response | Promise<Response>, status: number): Promise<void> {
    const r = await response;
    expect(r.status).toBe(status);
    expect(r.headers.get("cache-control")).toBe("no-store");
  }

  it("the login redirect of a navigation, and /_auth/login", async () => {
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/reports`, NAVIGATE), 302);
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/login?rd=/x`, NAVIGATE), 302);
  });

  it("the callback: success, expired (page and JSON), declined", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/_auth/login`, NAVIGATE);
    await expectNoStore(client.get(await loginThroughProvider(start.headers.get("location")!, {}), NAVIGATE), 302);
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/callback?code=x&state=${"s".repeat(43)}`, NAVIGATE), 400);
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/callback?code=x&state=${"s".repeat(43)}`, JSON_CLIENT), 400);
    const declining = new HttpClient();
    const again = await declining.get(`${stack.gate.url}/_auth/login`, NAVIGATE);
    await expectNoStore(declining.get(await loginThroughProvider(again.headers.get("location")!, { deny: true }), NAVIGATE), 403);
  });

  it("logout: the confirmation page, the redirect, a cross-site post, the signed-out page", async () => {
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/logout`, { ...NAVIGATE, "sec-fetch-site": "cross-site" }), 200);
    const { client } = await stack.signIn("/");
    await expectNoStore(client.get(`${stack.gate.url}/_auth/logout`, { ...NAVIGATE, "sec-fetch-site": "same-origin" }), 303);
    await expectNoStore(new HttpClient().request(`${stack.gate.url}/_auth/logout`, { method: "POST", headers: { ...NAVIGATE, "sec-fetch-site": "cross-site" } }), 403);
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/signed-out`, NAVIGATE), 200);
  });

  it("/_auth/me signed in and not, /_auth/health, an unknown gate endpoint", async () => {
    await expectNoStore(signedIn.get(`${stack.gate.url}/_auth/me`, JSON_CLIENT), 200);
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/me`, JSON_CLIENT), 401);
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/health`, JSON_CLIENT), 200);
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/_auth/nothing-here`, NAVIGATE), 404);
  });

  it("/_auth/jwks.json is the one public answer: a public key set, cacheable for five minutes", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/jwks.json`, JSON_CLIENT);
    expect(response.headers.get("cache-control")).toBe("public, max-age=300");
  });

  it("the 401 for scripts, and the 403 of the allow-lists as a page and as JSON", async () => {
    await expectNoStore(new HttpClient().get(`${stack.gate.url}/api/x`, JSON_CLIENT), 401);
    const { client: petrov } = await stack.signIn("/", "petrov");
    await expectNoStore(petrov.get(`${stack.gate.url}/`, NAVIGATE), 403);
    await expectNoStore(petrov.get(`${stack.gate.url}/api/x`, JSON_CLIENT), 403);
  });

  it("plain http on a host that is not loopback is refused with a no-store 400", async () => {
    const response = await rawRequest(stack.gate.url, "/", { host: "site.example", ...NAVIGATE });
    expect(response.status).toBe(400);
    expect(response.headers["cache-control"]).toBe("no-store");
  });
});

describe("caching: failures of the provider, the origin and the configuration are no-store too", () => {
  let gate: Gate;
  let misconfigured: Gate;
  beforeAll(async () => {
    const secrets = await generateSecrets();
    const closed = await freePort();
    gate = await startGate(
      loopbackGateVars(
        { issuer: `http://localhost:${closed}`, clientId: "kontur-gate-test", secrets, originUrl: `http://127.0.0.1:${closed}` },
        { PUBLIC_PATHS: "/static/*" },
      ),
    );
    misconfigured = await startGate({ OIDC_CLIENT_ID: "x" });
  });
  afterAll(async () => {
    await gate.close();
    await misconfigured.close();
  });

  it("the provider is down: the login page and health", async () => {
    const login = await new HttpClient().get(`${gate.url}/reports`, NAVIGATE);
    expect([login.status, login.headers.get("cache-control")]).toEqual([503, "no-store"]);
    const health = await new HttpClient().get(`${gate.url}/_auth/health`, JSON_CLIENT);
    expect([health.status, health.headers.get("cache-control")]).toEqual([503, "no-store"]);
  });

  it("the origin is down: the gate's error page", async () => {
    const response = await new HttpClient().get(`${gate.url}/static/app.css`, NAVIGATE);
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(response.headers.get("cache-control")).toBe("no-store");
  });

  it("the settings are wrong: the plain-text 500", async () => {
    const response = await new HttpClient().get(`${misconfigured.url}/`, NAVIGATE);
    expect([response.status, response.headers.get("cache-control")]).toEqual([500, "no-store"]);
  });
});
