/**
 * Two gates (two workerd processes, two isolates) on one KV refreshing one session with Kontur's
 * one-time refresh tokens, against the real dev provider: what only separate processes sharing a
 * store can show. One isolate's parallel requests at a check, and a refresh whose id_token names
 * someone else, are decided with a moved clock in test/unit/edge/app-provider-failures.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_USERS } from "../../tools/dev-provider/provider.mjs";
import type { Fault } from "../helpers/faulty-proxy.ts";
import type { Gate } from "../helpers/gate.ts";
import type { HttpClient } from "../helpers/http.ts";
import { NAVIGATE } from "../helpers/stack.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { clearedSession } from "../helpers/session-cookie.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";

const DEMO_SUB = DEMO_USERS[0]!.claims.sub;
/** Short checks, and access tokens that are due at every check (30 s < the 60 s refresh margin). */
const DUE_AT_EVERY_CHECK = { vars: { SESSION_CHECK_INTERVAL: "1" }, provider: { accessTokenTTL: 30 } } as const;
/** Longer than a check interval: the next request is due for a check. */
const NEXT_CHECK_MS = 1100;

/** A gate stack and its twin (a second gate on the same KV), for one describe block. */
function twoGates(options: Parameters<typeof startSessionStack>[0]): { stack: () => SessionStack; other: () => Gate } {
  let stack: SessionStack | undefined;
  let other: Gate | undefined;
  beforeAll(async () => {
    stack = await startSessionStack(options);
    other = await stack.twin();
  });
  afterAll(() => stack?.close());
  return { stack: () => stack!, other: () => other! };
}

/** Signs a visitor in: the client, and the KV key of the session's record. */
async function signedIn(stack: SessionStack): Promise<{ client: HttpClient; key: string }> {
  const before = await stack.sessionKeys();
  const { client } = await stack.signIn();
  const added = (await stack.sessionKeys()).filter((key) => !before.includes(key));
  expect(added).toHaveLength(1);
  return { client, key: added[0]! };
}

/**
 * Both gates' token requests are held until both arrived, then sent on one after the other: the
 * second only once the first gate's refreshed record has landed in KV. Both read the record before
 * either got an answer; the loser's invalid_grant then finds the winner's tokens at once, however
 * loaded the machine, instead of depending on the winner writing within the loser's ~2 s wait
 * (that bounded wait is test/unit/edge/app-provider-failures.test.ts's).
 */
function raceUntilStored(stack: SessionStack, key: string, stored: string | null): Fault {
  return {
    kind: "race",
    count: 2,
    settle: async () => {
      await expect.poll(() => stack.current.kv.get(key), { timeout: 20_000, interval: 50 }).not.toBe(stored);
    },
  };
}

describe("two gates (two isolates) sharing the KV race on one session", () => {
  const gates = twoGates(DUE_AT_EVERY_CHECK);

  it("both request the same one-time refresh token: the loser gets invalid_grant, adopts the winner's tokens, and nobody is logged out", async () => {
    const stack = gates.stack();
    const other = gates.other();
    const { client, key } = await signedIn(stack);
    stack.provider.resetStats();
    await sleep(NEXT_CHECK_MS);
    // Both gates read the record before either gets an answer; the provider then sees the token twice.
    stack.proxy.set("token", raceUntilStored(stack, key, await stack.current.kv.get(key)));
    const [a, b] = await Promise.all([client.get(`${stack.gate.url}/race-a`, NAVIGATE), client.get(`${other.url}/race-b`, NAVIGATE)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(2);
    expect(stack.provider.stats.refreshReuse).toBe(1);
    expect([...stack.originRequests("/race-a"), ...stack.originRequests("/race-b")].map((r) => r.headers["x-forwarded-user"])).toEqual([DEMO_SUB, DEMO_SUB]);
    expect(clearedSession(a) || clearedSession(b)).toBe(false);
    // Miniflare hands the Worker's log lines over asynchronously.
    await expect.poll(() => other.logs.join("\n") + stack.gate.logs.join("\n")).toContain('"adopted":true');

    // The winner's refresh token is the session's now: the next check on either gate refreshes fine.
    await sleep(NEXT_CHECK_MS);
    expect((await client.get(`${other.url}/after-race`, NAVIGATE)).status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(3);
    expect(stack.provider.stats.refreshReuse).toBe(1);
  });
});

describe("two gates on one KV against a provider that revokes the whole grant when a used refresh token comes back", () => {
  // oidc-provider's own behaviour, not Kontur's. Without revalidation: with it, the userinfo call
  // of the same check may already find the winner's new access token revoked and end the session
  // a check earlier. Each test signs its own visitor in (its own grant).
  const gates = twoGates({
    vars: { ...DUE_AT_EVERY_CHECK.vars, SESSION_REVALIDATE: "off" },
    provider: { ...DUE_AT_EVERY_CHECK.provider, revokeOnReuse: true },
  });

  it("a gate that reads the record after the other gate's refresh takes its tokens without calling the provider", async () => {
    // Not calling the provider is what keeps the session alive here.
    const stack = gates.stack();
    const other = gates.other();
    const { client } = await signedIn(stack);
    const cookieBefore = client.jar.header(new URL(stack.gate.url))!;
    stack.provider.resetStats();
    await sleep(NEXT_CHECK_MS);
    expect((await client.get(`${stack.gate.url}/first`, NAVIGATE)).status).toBe(200);
    const viaOther = await client.request(`${other.url}/second`, { headers: { ...NAVIGATE, cookie: cookieBefore } });
    expect(viaOther.status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(1);
    await sleep(NEXT_CHECK_MS);
    expect((await client.get(`${other.url}/third`, NAVIGATE)).status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(2);
    expect(stack.provider.stats.refreshReuse).toBe(0);
  });

  it("limit: both racing requests are served, but the session ends at its next refresh", async () => {
    const stack = gates.stack();
    const other = gates.other();
    const { client, key } = await signedIn(stack);
    await sleep(NEXT_CHECK_MS);
    stack.proxy.set("token", raceUntilStored(stack, key, await stack.current.kv.get(key)));
    const [a, b] = await Promise.all([client.get(`${stack.gate.url}/race-a`, NAVIGATE), client.get(`${other.url}/race-b`, NAVIGATE)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    // The replayed token made the provider revoke the winner's new tokens too: the next refresh
    // gets invalid_grant, and the visitor is sent to log in again (no error page, no loop).
    await sleep(NEXT_CHECK_MS);
    const next = await client.get(`${stack.gate.url}/after-race`, NAVIGATE);
    expect(next.status).toBe(302);
    expect(next.headers.get("location")).toContain("/connect/authorize");
    expect(clearedSession(next)).toBe(true);
    expect(stack.originRequests("/after-race")).toEqual([]);
  });
});
