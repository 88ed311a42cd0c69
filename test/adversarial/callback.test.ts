/**
 * The callback under attack: spliced, stripped, swapped or replayed parameters, forged pending-login
 * cookies, provider errors. (test/integration/login.test.ts already covers a forged state, a
 * callback opened in another browser, a replayed code, a state that does not match, a wrong `iss`,
 * a duplicated `code` and `error=access_denied`; these are the rest.)
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  attemptLogin,
  authorizeAt,
  expectLoggedRefusal,
  expectRefused,
  expectSignedOut,
  NAVIGATE,
  scanForSecrets,
  startHostileStack,
  startLogin,
  WatchedClient,
  type HostileStack,
} from "./harness.ts";
import { setsSession } from "../helpers/session-cookie.ts";

scanForSecrets();

function pendingCookies(client: WatchedClient, gateUrl: string) {
  return client.jar.list(new URL(gateUrl)).filter((cookie) => cookie.name.startsWith("kg_login_"));
}

function edited(url: URL, change: (params: URLSearchParams) => void): URL {
  const copy = new URL(url);
  change(copy.searchParams);
  return copy;
}

describe("callback: parameters spliced, stripped or swapped", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack();
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  /** A login that got as far as the provider's answer, with the callback URL not yet opened. */
  async function pendingCallback(): Promise<{ client: WatchedClient; callbackUrl: URL }> {
    const { client, authorizeUrl } = await startLogin(stack);
    return { client, callbackUrl: await authorizeAt(authorizeUrl) };
  }

  const splices: { name: string; status: number; change: (params: URLSearchParams) => void }[] = [
    { name: "no state at all", status: 400, change: (p) => p.delete("state") },
    { name: "an empty state", status: 400, change: (p) => p.set("state", "") },
    { name: "a 2000-character state", status: 400, change: (p) => p.set("state", "s".repeat(2000)) },
    { name: "the state twice (its own and a forged one)", status: 400, change: (p) => p.append("state", "A".repeat(43)) },
    { name: "no code (oauth4webapi refuses to make the exchange)", status: 401, change: (p) => p.delete("code") },
    { name: "the iss twice", status: 400, change: (p) => p.append("iss", "https://identity.evil.example") },
    {
      name: "no iss although discovery says the provider sends it (RFC 9207 mix-up defence)",
      status: 400,
      change: (p) => p.delete("iss"),
    },
    { name: "code and error=server_error together", status: 400, change: (p) => p.set("error", "server_error") },
    { name: "error=temporarily_unavailable instead of a code", status: 400, change: (p) => (p.delete("code"), p.set("error", "temporarily_unavailable")) },
    { name: "error twice", status: 400, change: (p) => (p.delete("code"), p.append("error", "access_denied"), p.append("error", "server_error")) },
  ];

  it.each(splices)("$name → $status, no session, no token request", async ({ status, change }) => {
    const { client, callbackUrl } = await pendingCallback();
    const callback = await client.get(edited(callbackUrl, change), NAVIGATE);
    expectRefused(stack, callback, status);
    expect(stack.provider.requestsTo("token")).toEqual([]);
    await expectSignedOut(stack, client);
  });

  it("the provider itself sends back another issuer's iss (a mix-up: the code is from another provider) → 400, no exchange", async () => {
    stack.provider.set({ callback: (params) => params.set("iss", "https://identity.evil.example") });
    const { client, callback } = await attemptLogin(stack);
    expectRefused(stack, callback, 400);
    expect(stack.provider.requestsTo("token")).toEqual([]);
    await expectSignedOut(stack, client);
  });

  it("error=access_denied with markup in error_description: 403, and nothing of it on the page", async () => {
    const { client, callbackUrl } = await pendingCallback();
    const marker = `<img src=x onerror=alert(1)>"'kg-marker`;
    const url = edited(callbackUrl, (p) => (p.delete("code"), p.set("error", "access_denied"), p.set("error_description", marker), p.set("error_uri", "https://evil.example/")));
    const callback = await client.get(url, { ...NAVIGATE, "accept-language": "en" });
    expectRefused(stack, callback, 403);
    const page = await callback.text();
    expect(page).toContain("Sign-in cancelled");
    expect(page).not.toContain("kg-marker");
    expect(page).not.toContain("evil.example");
  });

  it("the same callback opened again after it failed: the pending login is spent → 400", async () => {
    stack.provider.set({ token: () => ({ error: "nothing useful" }) });
    const { client, callbackUrl, callback } = await attemptLogin(stack);
    expect(callback.status).toBe(401);
    stack.reset();
    const again = await client.get(callbackUrl, NAVIGATE);
    expectRefused(stack, again, 400);
    expect(stack.provider.requestsTo("token")).toEqual([]);
  });

  it("a code swapped between two pending logins of one browser: the provider refuses the PKCE verifier → 401", async () => {
    const client = new WatchedClient();
    const first = await startLogin(stack, client, "/one");
    const second = await startLogin(stack, client, "/two");
    const firstBack = await authorizeAt(first.authorizeUrl);
    const secondBack = await authorizeAt(second.authorizeUrl);
    const swapped = edited(firstBack, (p) => p.set("code", secondBack.searchParams.get("code")!));
    const callback = await client.get(swapped, NAVIGATE);
    expectRefused(stack, callback, 401);
    expect(stack.provider.refusals.pkceMismatch).toBe(1);
  });

  it("the same swap at a provider that skips PKCE checks: the nonce gives it away → 401", async () => {
    stack.provider.set({ ignorePkce: true });
    const since = stack.gate.logs.length;
    const client = new WatchedClient();
    const first = await startLogin(stack, client, "/one");
    const second = await startLogin(stack, client, "/two");
    const firstBack = await authorizeAt(first.authorizeUrl);
    const secondBack = await authorizeAt(second.authorizeUrl);
    const callback = await client.get(edited(firstBack, (p) => p.set("code", secondBack.searchParams.get("code")!)), NAVIGATE);
    expectRefused(stack, callback, 401);
    await expectLoggedRefusal(stack, since, "login_rejected", '"nonce" claim value');
  });

  it("a code injected from the attacker's own login into the victim's callback → 401", async () => {
    const attacker = await pendingCallback();
    const victim = await pendingCallback();
    const injected = edited(victim.callbackUrl, (p) => p.set("code", attacker.callbackUrl.searchParams.get("code")!));
    // The victim's state and pending login, the attacker's code: PKCE and nonce bind the code to
    // the attacker's login, so the exchange fails.
    const callback = await victim.client.get(injected, NAVIGATE);
    expectRefused(stack, callback, 401);
    expect(stack.provider.refusals.pkceMismatch).toBe(1);
  });

  it("the callback as a POST (form_post, which the gate never asks for) is not a login", async () => {
    const { client, callbackUrl } = await pendingCallback();
    const body = new URLSearchParams(callbackUrl.searchParams);
    const callback = await client.request(`${stack.gate.url}/_auth/callback`, { method: "POST", body, headers: NAVIGATE });
    expectRefused(stack, callback, 404);
    expect(stack.provider.requestsTo("token")).toEqual([]);
  });
});

describe("callback: forged and juggled pending-login cookies", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack();
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  it("a tampered pending-login cookie → 400, no token request", async () => {
    const { client, authorizeUrl } = await startLogin(stack);
    const [pending] = pendingCookies(client, stack.gate.url);
    const value = pending!.value;
    const flipped = value.slice(0, -5) + (value.at(-5) === "A" ? "B" : "A") + value.slice(-4);
    client.jar.set("127.0.0.1", pending!.name, flipped);
    const callback = await client.get(await authorizeAt(authorizeUrl), NAVIGATE);
    expectRefused(stack, callback, 400);
    expect(stack.provider.requestsTo("token")).toEqual([]);
  });

  it("login A's sealed cookie under login B's name (the state is bound inside the seal) → 400", async () => {
    const client = new WatchedClient();
    const a = await startLogin(stack, client, "/a");
    const aCookie = pendingCookies(client, stack.gate.url)[0]!;
    const b = await startLogin(stack, client, "/b");
    const bCookie = pendingCookies(client, stack.gate.url).find((c) => c.name !== aCookie.name)!;
    client.jar.set("127.0.0.1", bCookie.name, aCookie.value);
    await authorizeAt(a.authorizeUrl);
    const callback = await client.get(await authorizeAt(b.authorizeUrl), NAVIGATE);
    expectRefused(stack, callback, 400);
    expect(stack.provider.requestsTo("token")).toEqual([]);
  });

  it("a pending-login cookie sealed by another deployment (other SESSION_SECRETS) → 400", async () => {
    const other = await startHostileStack();
    try {
      const { client: elsewhere } = await startLogin(other);
      const foreign = pendingCookies(elsewhere, other.gate.url)[0]!.value;
      const { client, authorizeUrl } = await startLogin(stack);
      const own = pendingCookies(client, stack.gate.url)[0]!;
      client.jar.set("127.0.0.1", own.name, foreign);
      const callback = await client.get(await authorizeAt(authorizeUrl), NAVIGATE);
      expectRefused(stack, callback, 400);
      expect(stack.provider.requestsTo("token")).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it("many cookies: ten logins started in one browser keep at most four pending, the oldest fail cleanly", async () => {
    const client = new WatchedClient();
    const starts = [];
    for (let i = 0; i < 10; i++) starts.push(await startLogin(stack, client, `/tab-${i}`));
    expect(pendingCookies(client, stack.gate.url)).toHaveLength(4);
    const oldest = await client.get(await authorizeAt(starts[0]!.authorizeUrl), NAVIGATE);
    expectRefused(stack, oldest, 400);
    const newest = await client.get(await authorizeAt(starts[9]!.authorizeUrl), NAVIGATE);
    expect(newest.status).toBe(302);
    expect(newest.headers.get("location")).toBe("/tab-9");
    expect(setsSession(newest)).toBe(true);
  });

  it("fifty forged kg_login_ cookies: the next login drops them instead of piling up", async () => {
    const client = new WatchedClient();
    for (let i = 0; i < 50; i++) client.jar.set("127.0.0.1", `kg_login_${(1000 + i).toString(36)}_${"x".repeat(16)}`, "junk");
    const start = await client.get(`${stack.gate.url}/private`, NAVIGATE);
    expect(start.status).toBe(302);
    expect(pendingCookies(client, stack.gate.url).length).toBeLessThanOrEqual(4);
    expect(stack.origin.requests).toEqual([]);
  });
});
