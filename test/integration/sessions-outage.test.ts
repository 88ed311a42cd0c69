/**
 * The provider's network failing for real, against the dev provider: a connection that drops and
 * an answer slower than OIDC_TIMEOUT, at a session's check, for discovery on a fresh gate, and at
 * the callback. Every shape of a wrong answer (5xx, HTML, malformed JSON, an untrusted discovery
 * document, a refresh naming someone else) and the session lasting until SESSION_TTL while the
 * provider is down are decided with a moved clock in test/unit/edge/app-provider-failures.test.ts and
 * test/unit/edge/app-session.test.ts.
 *
 * One stack for the file. OIDC_TIMEOUT is 3 s, so an honest answer is in time even with a loaded
 * neighbour beside this file, and the slow fault holds its answer far beyond that.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEMO_USERS, loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import type { Endpoint, Fault } from "../helpers/faulty-proxy.ts";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE } from "../helpers/stack.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { clearedSession, setsSession } from "../helpers/session-cookie.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";

const DEMO_SUB = DEMO_USERS[0]!.claims.sub;
const OIDC_TIMEOUT_S = 3;
/** Checks every second, access tokens due at every check. */
const SETTINGS = { vars: { SESSION_CHECK_INTERVAL: "1", OIDC_TIMEOUT: String(OIDC_TIMEOUT_S) }, provider: { accessTokenTTL: 30 } } as const;
/** Longer than a check interval: the next request is due for a check. */
const NEXT_CHECK_MS = 1100;

const DOWN: Fault = { kind: "down" };
/** Held four times OIDC_TIMEOUT: the gate has given up long before the proxy would send it on. */
const SLOW: Fault = { kind: "slow", ms: 4 * OIDC_TIMEOUT_S * 1000 };
const NETWORK_FAULTS: Array<[string, Fault]> = [
  ["down (connection closed)", DOWN],
  ["slower than OIDC_TIMEOUT", SLOW],
];

let stack: SessionStack;
beforeAll(async () => {
  stack = await startSessionStack(SETTINGS);
});
afterEach(() => stack.proxy.clear());
afterAll(() => stack.close());

function expectServedAsDemo(response: Response, path: string): void {
  expect(response.status).toBe(200);
  expect(clearedSession(response)).toBe(false);
  expect(stack.originRequests(path)[0]?.headers["x-forwarded-user"]).toBe(DEMO_SUB);
}

describe("the token endpoint fails at a check: the session goes on from the cookie", () => {
  it.each(NETWORK_FAULTS)("token endpoint %s: served from the cookie, and the check succeeds once the provider is back", async (name, fault) => {
    const { client } = await stack.signIn();
    const path = `/during-${fault.kind}-${name.length}`;
    stack.proxy.set("token", fault);
    stack.provider.resetStats();
    await sleep(NEXT_CHECK_MS);
    const hitsBefore = stack.proxy.hits.token;
    expectServedAsDemo(await client.get(`${stack.gate.url}${path}`, NAVIGATE), path);
    expect(stack.proxy.hits.token).toBe(hitsBefore + 1);
    // The provider never processed it (a slow answer is given up after OIDC_TIMEOUT, before it is sent on).
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(0);

    stack.proxy.clear();
    stack.provider.resetStats();
    // The failed check is retried at the next interval (here: at once, the interval being shorter than the retry delay).
    await sleep(NEXT_CHECK_MS);
    const after = `${path}-after`;
    expectServedAsDemo(await client.get(`${stack.gate.url}${after}`, NAVIGATE), after);
    // The retried check refreshed with the refresh token the session still had: accepted.
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(1);
    expect(stack.provider.stats.refreshReuse).toBe(0);
  });
});

describe("discovery fails on a fresh gate instance (nothing cached in the isolate)", () => {
  it("down (connection closed), then slower than OIDC_TIMEOUT: sessions go on, new logins get a 503 page with Retry-After, /health says 503; logins start again once it is back", async () => {
    const { client } = await stack.signIn();
    // One fresh isolate for both faults: a failed discovery is not cached, so it stays fresh.
    stack.proxy.set("discovery", DOWN);
    await stack.restart({});
    for (const [name, fault] of NETWORK_FAULTS) {
      stack.proxy.set("discovery", fault);
      await sleep(NEXT_CHECK_MS);
      const path = `/discovery-${fault.kind}`;
      const visitor = new HttpClient();
      // Together: they share the isolate's one discovery attempt (single flight), so a slow provider
      // costs one OIDC_TIMEOUT here, not three.
      const [session, login, health] = await Promise.all([
        client.get(`${stack.gate.url}${path}`, NAVIGATE),
        visitor.get(`${stack.gate.url}/protected`, NAVIGATE),
        visitor.get(`${stack.gate.url}/_auth/health`, { accept: "application/json" }),
      ]);
      expectServedAsDemo(session, path);
      expect(login.status, name).toBe(503);
      expect(login.headers.get("retry-after"), name).toBe("30");
      expect(login.headers.get("content-type"), name).toContain("text/html");
      expect(await login.text(), name).toContain("Сервис входа недоступен");
      expect(login.headers.getSetCookie(), name).toEqual([]);
      expect(stack.originRequests("/protected"), name).toEqual([]);
      expect(health.status, name).toBe(503);
    }

    stack.proxy.clear();
    const recovered = await new HttpClient().get(`${stack.gate.url}/protected`, NAVIGATE);
    expect(recovered.status).toBe(302);
    expect(recovered.headers.get("location")).toContain("/connect/authorize");
  });
});

describe("new logins while the provider's network fails: a clear page, never a hang or a 500", () => {
  const cases: Array<[Endpoint, string, Fault]> = [
    ["token", ...NETWORK_FAULTS[0]!],
    ["token", ...NETWORK_FAULTS[1]!],
    ["jwks", ...NETWORK_FAULTS[0]!],
  ];

  it.each(cases)("%s endpoint %s at the callback: 503 with Retry-After, no session; a new login works once it is back", async (endpoint, _name, fault) => {
    // The callback needs the JWKS only when the isolate has none cached.
    if (endpoint === "jwks") await stack.restart({});
    const client = new HttpClient();
    const path = `/reports-${endpoint}-${fault.kind}`;
    const start = await client.get(`${stack.gate.url}${path}`, NAVIGATE);
    expect(start.status).toBe(302);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    stack.proxy.set(endpoint, fault);
    stack.provider.resetStats();
    const hitsBefore = stack.proxy.hits[endpoint];
    const callback = await client.get(callbackUrl, NAVIGATE);
    expect(callback.status).toBe(503);
    expect(callback.headers.get("retry-after")).toBe("30");
    expect(stack.proxy.hits[endpoint]).toBe(hitsBefore + 1);
    if (endpoint === "token") expect(stack.provider.stats.tokenRequests.authorization_code).toBe(0);
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

  it("a token endpoint that answers a second late, well within OIDC_TIMEOUT, still signs the visitor in", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/late-but-fine`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    stack.proxy.set("token", { kind: "slow", ms: 1000 });
    const callback = await client.get(callbackUrl, NAVIGATE);
    expect(callback.status).toBe(302);
    expect(setsSession(callback)).toBe(true);
  });
});
