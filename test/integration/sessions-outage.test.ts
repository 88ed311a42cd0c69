import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEMO_USERS, loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import type { Endpoint, Fault } from "../helpers/faulty-proxy.ts";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE } from "../helpers/stack.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { clearedSession } from "../helpers/session-cookie.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";

const DEMO_SUB = DEMO_USERS[0]!.claims.sub;
/** Checks every second, access tokens due at every check, and a 1-second provider timeout. */
const SETTINGS = { vars: { SESSION_CHECK_INTERVAL: "1", OIDC_TIMEOUT: "1" }, provider: { accessTokenTTL: 30 } } as const;

const FAULTS: Array<[string, Fault]> = [
  ["down (connection closed)", { kind: "down" }],
  ["slower than OIDC_TIMEOUT", { kind: "slow", ms: 3000 }],
  ["500 with a JSON error", { kind: "json", status: 500, body: { error: "server_error" } }],
  ["503 temporarily_unavailable", { kind: "json", status: 503, body: { error: "temporarily_unavailable" } }],
  ["502 with an HTML page", { kind: "html", status: 502 }],
  ["200 with an HTML page", { kind: "html", status: 200 }],
  ["200 with malformed JSON", { kind: "malformed" }],
];

function expectServedAsDemo(stack: SessionStack, response: Response, path: string): void {
  expect(response.status).toBe(200);
  expect(clearedSession(response)).toBe(false);
  expect(stack.originRequests(path)[0]?.headers["x-forwarded-user"]).toBe(DEMO_SUB);
}

describe("the token endpoint fails: existing sessions keep working, only invalid_grant ends one", () => {
  let stack: SessionStack;
  beforeAll(async () => {
    stack = await startSessionStack(SETTINGS);
  });
  afterEach(() => stack.proxy.clear());
  afterAll(() => stack.close());

  // Every shape of a failed answer (5xx, HTML, malformed JSON, invalid_client) is decided with a moved
  // clock in test/unit/app-session.test.ts. Here the network itself fails, against the real provider:
  // a dropped connection, and an answer slower than OIDC_TIMEOUT that the provider must never process.
  const cases = FAULTS.filter(([, fault]) => fault.kind === "down" || fault.kind === "slow");

  it.each(cases)("token endpoint %s: served from the cookie, and the check succeeds once the provider is back", async (name, fault) => {
    const { client } = await stack.signIn();
    const path = `/during-${fault.kind}-${name.length}`;
    stack.proxy.set("token", fault);
    stack.provider.resetStats();
    await sleep(1100);
    const hitsBefore = stack.proxy.hits.token;
    expectServedAsDemo(stack, await client.get(`${stack.gate.url}${path}`, NAVIGATE), path);
    expect(stack.proxy.hits.token).toBe(hitsBefore + 1);
    // The provider never processed it (a slow answer is given up after OIDC_TIMEOUT, before it is sent on).
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(0);

    stack.proxy.clear();
    stack.provider.resetStats();
    await sleep(1100);
    const after = `${path}-after`;
    expectServedAsDemo(stack, await client.get(`${stack.gate.url}${after}`, NAVIGATE), after);
    // The retried check refreshed with the refresh token the session still had: accepted.
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(1);
    expect(stack.provider.stats.refreshReuse).toBe(0);
  });

  it("a session whose provider stays down lasts until SESSION_TTL, then goes to login", async () => {
    const short = await startSessionStack({ ...SETTINGS, vars: { ...SETTINGS.vars, SESSION_TTL: "4" } });
    try {
      const { client } = await short.signIn();
      short.proxy.set("token", { kind: "down" });
      for (const path of ["/ttl-1", "/ttl-2"]) {
        await sleep(1100);
        expectServedAsDemo(short, await client.get(`${short.gate.url}${path}`, NAVIGATE), path);
      }
      await sleep(2100);
      const copy = client.jar.get("127.0.0.1", "kg_session");
      const ended = await new HttpClient().get(`${short.gate.url}/ttl-3`, { ...NAVIGATE, cookie: `kg_session=${copy}` });
      expect(ended.status).toBe(302);
      expect(short.originRequests("/ttl-3")).toEqual([]);
    } finally {
      await short.close();
    }
  });
});

describe("discovery or JWKS fail on a fresh gate instance (nothing cached in the isolate)", () => {
  let stack: SessionStack;
  beforeAll(async () => {
    stack = await startSessionStack(SETTINGS);
  });
  afterEach(() => stack.proxy.clear());
  afterAll(() => stack.close());

  it.each(FAULTS)("discovery %s: sessions go on, new logins get a 503 page with Retry-After, /health says 503", async (name, fault) => {
    const { client } = await stack.signIn();
    stack.proxy.set("discovery", fault);
    await stack.restart({});
    await sleep(1100);
    const path = `/discovery-${fault.kind}-${name.length}`;
    expectServedAsDemo(stack, await client.get(`${stack.gate.url}${path}`, NAVIGATE), path);

    const visitor = new HttpClient();
    const login = await visitor.get(`${stack.gate.url}/protected`, NAVIGATE);
    expect(login.status).toBe(503);
    expect(login.headers.get("retry-after")).toBe("30");
    expect(login.headers.get("content-type")).toContain("text/html");
    expect(await login.text()).toContain("Сервис входа недоступен");
    expect(login.headers.getSetCookie()).toEqual([]);
    expect(stack.originRequests("/protected")).toEqual([]);
    expect((await visitor.get(`${stack.gate.url}/_auth/health`, { accept: "application/json" })).status).toBe(503);

    stack.proxy.clear();
    const recovered = await visitor.get(`${stack.gate.url}/protected`, NAVIGATE);
    expect(recovered.status).toBe(302);
    expect(recovered.headers.get("location")).toContain("/connect/authorize");
  });

  it("JWKS down when a refresh needs it: the refreshed tokens are kept on the token endpoint's word, the session goes on", async () => {
    const { client } = await stack.signIn();
    stack.proxy.set("jwks", { kind: "down" });
    await stack.restart({});
    stack.provider.resetStats();
    for (const path of ["/jwks-down-1", "/jwks-down-2"]) {
      await sleep(1100);
      expectServedAsDemo(stack, await client.get(`${stack.gate.url}${path}`, NAVIGATE), path);
    }
    // Two refreshes in a row: the second used the refresh token the first one stored.
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(2);
    expect(stack.provider.stats.refreshReuse).toBe(0);
    expect(stack.proxy.hits.jwks).toBeGreaterThanOrEqual(2);
  });
});

describe("new logins while the provider fails: a clear page, never a hang or a 500", () => {
  let stack: SessionStack;
  beforeAll(async () => {
    stack = await startSessionStack(SETTINGS);
  });
  afterEach(() => stack.proxy.clear());
  afterAll(() => stack.close());

  const cases: Array<[Endpoint, ...(typeof FAULTS)[number]]> = [
    ["token", ...FAULTS[0]!],
    ["token", ...FAULTS[1]!],
    ["token", ...FAULTS[4]!],
    ["jwks", ...FAULTS[0]!],
    ["jwks", ...FAULTS[6]!],
  ];

  it.each(cases)("%s endpoint %s at the callback: 503 with Retry-After, no session; a new login works once it is back", async (endpoint, _name, fault) => {
    await stack.restart({}); // nothing cached: the callback needs the JWKS too
    const client = new HttpClient();
    const path = `/reports-${endpoint}-${fault.kind}`;
    const start = await client.get(`${stack.gate.url}${path}`, NAVIGATE);
    expect(start.status).toBe(302);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    stack.proxy.set(endpoint, fault);
    const callback = await client.get(callbackUrl, NAVIGATE);
    expect(callback.status).toBe(503);
    expect(callback.headers.get("retry-after")).toBe("30");
    const page = await callback.text();
    expect(page).toContain("Сервис входа недоступен");
    // "Try again" starts a new login for the same page: the spent code is not offered again.
    expect(page).toContain(`href="/_auth/login?rd=${encodeURIComponent(path)}"`);
    expect(page).not.toContain(new URL(callbackUrl).searchParams.get("code")!);
    expect(client.jar.get("127.0.0.1", "kg_session")).toBeUndefined();
    expect(stack.originRequests(path)).toEqual([]);

    stack.proxy.clear();
    const again = await client.follow(`${stack.gate.url}${path}`, { init: { headers: NAVIGATE } });
    const callbackAgain = await loginThroughProvider(again[0]!.location!, {});
    const final = await client.follow(callbackAgain, { init: { headers: NAVIGATE } });
    expect(final.at(-1)!.status).toBe(200);
    expect(stack.originRequests(path)).toHaveLength(1);
  });
});
