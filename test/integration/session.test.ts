import { setTimeout as sleep } from "node:timers/promises";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logoutThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { clearedSession, setsSession } from "../helpers/session-cookie.ts";

async function sessionKeys(stack: Stack): Promise<string[]> {
  return (await stack.gate.kv.list({ prefix: "session:" })).keys.map((key) => key.name);
}

// One stack with the default settings for the cookie, /_auth/me, jwks and logout; the tests that
// need checks every second or logout at the provider share a second one (last describe).
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack.close());

describe("the session cookie and its KV record", () => {
  it("is HttpOnly, SameSite=Lax, Path=/, lives SESSION_TTL, and holds no token", async () => {
    const { callback } = await stack.signIn();
    const cookie = callback.headers.getSetCookie().find((c) => c.startsWith("kg_session="))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).toMatch(/Max-Age=28800/);
    const value = cookie.split(";")[0]!.split("=")[1]!;
    expect(value.length).toBeLessThan(1200);
    expect(value).not.toMatch(/eyJ[\w-]+\.eyJ/); // no JWT inside (random ciphertext may contain "eyJ" alone)
  });

  it("has a sealed KV record that holds the tokens", async () => {
    const before = await sessionKeys(stack);
    await stack.signIn();
    const after = await sessionKeys(stack);
    const [added] = after.filter((key) => !before.includes(key));
    const record = await stack.gate.kv.get(added!);
    expect(record).toMatch(/^1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(record).not.toMatch(/eyJ[\w-]+\.eyJ/);
  });

  it("/_auth/me tells a signed-in page who it is, with the session's expiry", async () => {
    const { client } = await stack.signIn();
    const response = await client.get(`${stack.gate.url}/_auth/me`, { accept: "application/json" });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const me = (await response.json()) as Record<string, unknown>;
    expect(me).toMatchObject({
      email: "demo@example.kontur.ru",
      name: "Иванов Иван Иванович",
      given_name: "Иван",
      family_name: "Иванов",
      middle_name: "Иванович",
      sub: expect.any(String),
    });
    expect((me.session_expires_at as number) - (me.session_started_at as number)).toBe(28800);
  });

  it("/_auth/me without a session is 401 JSON", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/me`, { accept: "application/json" });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: "unauthenticated", login_url: "/_auth/login?rd=%2F" });
  });

  it("/_auth/jwks.json publishes the assertion key, and the origin's assertion verifies with it", async () => {
    const { client } = await stack.signIn();
    await client.get(`${stack.gate.url}/verify-me`, NAVIGATE);
    const [seen] = stack.originRequests("/verify-me");
    const jwks = createRemoteJWKSet(new URL(`${stack.gate.url}/_auth/jwks.json`));
    const { payload } = await jwtVerify(seen!.headers["x-auth-assertion"] as string, jwks, {
      issuer: stack.gate.url,
      audience: stack.origin.url,
      algorithms: ["ES256", "EdDSA"],
    });
    expect(payload).toMatchObject({
      sub: seen!.headers["x-forwarded-user"],
      email: "demo@example.kontur.ru",
      name: "Иванов Иван Иванович",
      htm: "GET",
      htu: `${stack.origin.url}/verify-me`,
    });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
  });
});

describe("logout", () => {
  it("POST /_auth/logout deletes the KV record and the cookie; the next request goes to login", async () => {
    const { client } = await stack.signIn();
    const keys = await sessionKeys(stack);
    const response = await client.request(`${stack.gate.url}/_auth/logout`, { method: "POST", headers: { origin: stack.gate.url, "sec-fetch-site": "same-origin" } });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe(`${stack.gate.url}/_auth/signed-out`);
    expect(clearedSession(response)).toBe(true);
    expect((await sessionKeys(stack)).length).toBe(keys.length - 1);
    const next = await client.get(`${stack.gate.url}/`, NAVIGATE);
    expect(next.status).toBe(302);
    expect(next.headers.get("location")).toContain("/connect/authorize");
  });

  it("the signed-out page offers to sign in again", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/signed-out`, NAVIGATE);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain("Вы вышли");
    expect(page).toContain('href="/_auth/login?rd=%2F"');
  });

  it("a cross-site link to GET /_auth/logout asks for confirmation instead of logging out", async () => {
    const { client } = await stack.signIn();
    const response = await client.get(`${stack.gate.url}/_auth/logout`, { ...NAVIGATE, "sec-fetch-site": "cross-site" });
    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual([]);
    const page = await response.text();
    expect(page).toContain('method="post" action="/_auth/logout"');
    expect((await client.get(`${stack.gate.url}/still-in`, NAVIGATE)).status).toBe(200);
  });

  it("a GET /_auth/logout from the site's own page logs out and honours rd", async () => {
    const { client } = await stack.signIn();
    const response = await client.get(`${stack.gate.url}/_auth/logout?rd=%2Fbye`, { ...NAVIGATE, "sec-fetch-site": "same-origin" });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/bye");
  });

  it("a logout form posted from another site is refused with 403", async () => {
    const { client } = await stack.signIn();
    const response = await client.request(`${stack.gate.url}/_auth/logout`, {
      method: "POST",
      headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site", accept: "text/html" },
    });
    expect(response.status).toBe(403);
    expect((await client.get(`${stack.gate.url}/still-in-2`, NAVIGATE)).status).toBe(200);
  });
});

// Lifetimes (TTL, idle), revocation by a deleted record and the hot path's KV silence are decided
// with a moved clock in test/unit/edge/app-session.test.ts and app-session-life.test.ts; the real
// stack proves the refresh, the replayed cookie refused and the provider's end-session page here.
describe("against the real provider, with checks every second and logout at the provider", () => {
  // Access tokens of 30 s are due at every check (within the 60 s refresh margin).
  let short: Stack;
  beforeAll(async () => {
    short = await startStack({ vars: { SESSION_CHECK_INTERVAL: "1", LOGOUT_AT_PROVIDER: "true" }, provider: { accessTokenTTL: 30 } });
  });
  afterAll(() => short.close());

  it("an access token that is due is refreshed at the check, once, and the session continues", async () => {
    const before = await sessionKeys(short);
    const { client } = await short.signIn();
    const [key] = (await sessionKeys(short)).filter((name) => !before.includes(name));
    const stored = await short.gate.kv.get(key!);
    short.provider.resetStats();
    await sleep(1100);
    const response = await client.get(`${short.gate.url}/after-refresh`, NAVIGATE);
    expect(response.status).toBe(200);
    expect(short.provider.stats.tokenRequests.refresh_token).toBe(1);
    expect(await short.gate.kv.get(key!)).not.toBe(stored);
    expect(setsSession(response)).toBe(true);
    expect(short.originRequests("/after-refresh")[0]!.headers["x-forwarded-email"]).toBe("demo@example.kontur.ru");
  });

  it("a stolen cookie replayed after logout is refused at the next check", async () => {
    const { client } = await short.signIn();
    const stolen = client.jar.header(new URL(short.gate.url))!;
    await client.request(`${short.gate.url}/_auth/logout`, { method: "POST", headers: { origin: short.gate.url } });
    await sleep(1100);
    const replay = await new HttpClient().get(`${short.gate.url}/secret`, { ...NAVIGATE, cookie: stolen });
    expect(replay.status).toBe(302);
    expect(short.originRequests("/secret")).toEqual([]);
  });

  it("with LOGOUT_AT_PROVIDER=true the browser continues to the provider's end-session endpoint", async () => {
    const { client } = await short.signIn();
    const response = await client.request(`${short.gate.url}/_auth/logout`, { method: "POST", headers: { origin: short.gate.url } });
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get("location")!);
    expect(`${location.origin}${location.pathname}`).toBe(`${short.provider.issuer}/connect/endsession`);
    expect(location.searchParams.get("post_logout_redirect_uri")).toBe(`${short.gate.url}/_auth/signed-out`);
    expect(location.searchParams.get("id_token_hint")).toMatch(/^eyJ/);
    const final = await logoutThroughProvider(location);
    expect(final.startsWith(`${short.gate.url}/_auth/signed-out`)).toBe(true);
  });
});
