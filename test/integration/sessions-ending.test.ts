import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEMO_USERS, loginThroughProvider, logoutThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { CookieJar } from "../../tools/lib/cookie-jar.mjs";
import { HttpClient } from "../helpers/http.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { logged, until } from "../helpers/gate-log.ts";
import { clearedSession } from "../helpers/session-cookie.ts";
import { CLIENT_ID, NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";
const subOf = (login: string): string => DEMO_USERS.find((user: { login: string }) => user.login === login)!.claims.sub;
const now = (): number => Math.floor(Date.now() / 1000);

/**
 * Sign-out everywhere and back-channel logout against the real stack, on one gate for the file:
 * back-channel logout registered at the provider, and checks every second. What each way of
 * ending a session decides, step by step in time, is test/unit/edge/app-session-life.test.ts.
 */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ backchannel: true, vars: { SESSION_CHECK_INTERVAL: "1" } });
});
afterAll(() => stack.close());
// Every test starts from an empty KV: the assertions count every session key.
beforeEach(async () => {
  for (const key of (await stack.gate.kv.list()).keys) await stack.gate.kv.delete(key.name);
});

/** Signs a visitor in and keeps the provider's cookies, so the test can log out at the provider as that browser. */
async function signInAt(s: Stack, login: string): Promise<{ client: HttpClient; providerJar: CookieJar }> {
  const client = new HttpClient();
  const first = await client.get(`${s.gate.url}/`, NAVIGATE);
  const providerJar = new CookieJar();
  const callback = await loginThroughProvider(new URL(first.headers.get("location")!), { login, password: login, cookieJar: providerJar });
  expect((await client.get(callback, NAVIGATE)).status).toBe(302);
  return { client, providerJar };
}

async function status(s: Stack, client: HttpClient, path: string): Promise<number> {
  return (await client.get(`${s.gate.url}${path}`, NAVIGATE)).status;
}

/** Every session-related KV key, sorted: records and index entries. */
async function sessionKeys(s: Stack): Promise<string[]> {
  const names: string[] = [];
  for (const prefix of ["session:", "user:", "psid:"]) names.push(...(await s.gate.kv.list({ prefix })).keys.map((key) => key.name));
  return names.sort();
}

/** A logout token signed with the provider's own private key, as the provider would sign it. */
async function logoutToken(s: Stack, claims: JWTPayload, key?: { jwk: JWK; alg: string }): Promise<string> {
  const jwk = key?.jwk ?? (s.provider.jwks.keys[0] as JWK);
  const alg = key?.alg ?? "RS256";
  const payload: JWTPayload = { events: { [BACKCHANNEL_EVENT]: {} }, jti: crypto.randomUUID(), ...claims };
  return new SignJWT(payload)
    .setProtectedHeader({ alg, typ: "logout+jwt", ...(jwk.kid === undefined ? {} : { kid: jwk.kid }) })
    .setIssuer(s.provider.issuer)
    .setAudience(claims.aud ?? CLIENT_ID)
    .setIssuedAt(typeof claims.iat === "number" ? claims.iat : now())
    .sign(await importJWK(jwk, alg));
}

function postLogoutToken(s: Stack, token: string): Promise<Response> {
  return fetch(`${s.gate.url}/_auth/backchannel-logout`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ logout_token: token }),
  });
}

describe("sign out everywhere", () => {
  it("ends both browsers of one user, at once here and at the next check there, and not another user's; the delay is measured", async () => {
    const a = await signInAt(stack, "demo");
    const b = await signInAt(stack, "demo");
    const c = await signInAt(stack, "petrov");
    for (const browser of [a, b, c]) expect(await status(stack, browser.client, "/before")).toBe(200);
    stack.provider.resetStats();

    const started = Date.now();
    const out = await a.client.request(`${stack.gate.url}/_auth/logout`, {
      method: "POST",
      headers: { origin: stack.gate.url, "content-type": "application/x-www-form-urlencoded" },
      body: "everywhere=1",
    });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe(`${stack.gate.url}/_auth/signed-out`);
    expect(clearedSession(out)).toBe(true);
    // Only the other user's session is left in KV.
    const left = await sessionKeys(stack);
    expect(left.filter((key) => key.startsWith("session:"))).toHaveLength(1);
    expect(left.some((key) => key.startsWith("user:"))).toBe(true);

    expect(await status(stack, a.client, "/after")).toBe(302);
    // The other browser is refused at its next check at the latest: poll until it is, noting when
    // each request was sent. The delay is measured on the sending side, so a slow machine cannot
    // blur it: no request sent more than SESSION_CHECK_INTERVAL (1 s) after the sign-out is served.
    let lastServedSentAt = started;
    let refusedSentAt: number | undefined;
    while (Date.now() - started < 8000) {
      const sentAt = Date.now();
      if ((await status(stack, b.client, "/poll")) === 302) {
        refusedSentAt = sentAt;
        break;
      }
      lastServedSentAt = sentAt;
      await sleep(100);
    }
    expect(refusedSentAt).toBeDefined();
    // KV here is one location: no propagation delay to add.
    expect(lastServedSentAt - started).toBeLessThan(1000);
    expect(await status(stack, c.client, "/still")).toBe(200);

    // Both sessions' tokens are revoked at the provider: this browser's by its logout, the other's
    // by sign out everywhere; the other user's are left alone.
    await until(() => stack.provider.stats.revoked.RefreshToken === 2);
    expect(stack.provider.stats.revoked).toEqual({ AccessToken: 2, RefreshToken: 2 });
    expect(await logged(stack.gate.logs, (l) => l.event === "tokens_revoked" && l.why === "everywhere")).toMatchObject({ revoked: "access_token refresh_token" });
    expect(await logged(stack.gate.logs, (l) => l.event === "logout" && l.everywhere === true)).toMatchObject({ ended: 2, revoking: 1 });
  });

  it("the logout confirmation page has the button too, and a cross-site post of it is refused", async () => {
    const a = await signInAt(stack, "demo");
    const page = await (await a.client.get(`${stack.gate.url}/_auth/logout`, { accept: "text/html" })).text();
    expect(page).toContain('<button type="submit" name="everywhere" value="1">');
    const before = await sessionKeys(stack);
    const forged = await a.client.request(`${stack.gate.url}/_auth/logout`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" },
      body: "everywhere=1",
    });
    expect(forged.status).toBe(403);
    expect(await sessionKeys(stack)).toEqual(before);
  });
});

describe("back-channel logout", () => {
  it("logging out at the provider ends that browser's session (by sid) and not the same user's other one", async () => {
    const a = await signInAt(stack, "demo");
    const b = await signInAt(stack, "demo");
    expect((await sessionKeys(stack)).filter((key) => key.startsWith("psid:"))).toHaveLength(2);
    // The provider POSTs its logout token to the gate while it ends its own session.
    stack.provider.resetStats();
    await logoutThroughProvider(`${stack.provider.issuer}/connect/endsession?client_id=${CLIENT_ID}`, { cookieJar: a.providerJar });
    expect((await sessionKeys(stack)).filter((key) => key.startsWith("session:"))).toHaveLength(1);
    // The ended session's tokens are revoked too (found through the provider's sid), the other's not.
    await until(() => stack.provider.stats.revoked.RefreshToken === 1);
    expect(stack.provider.stats.revoked).toEqual({ AccessToken: 1, RefreshToken: 1 });
    expect(await logged(stack.gate.logs, (l) => l.event === "tokens_revoked" && l.why === "backchannel")).toBeDefined();
    await sleep(1100);
    expect(await status(stack, a.client, "/after")).toBe(302);
    expect(await status(stack, b.client, "/after")).toBe(200);
  });

  it("a token naming only sub ends every session of that user, answered 200 no-store", async () => {
    const a = await signInAt(stack, "demo");
    const b = await signInAt(stack, "demo");
    const c = await signInAt(stack, "petrov");
    stack.provider.resetStats();
    const response = await postLogoutToken(stack, await logoutToken(stack, { sub: subOf("demo") }));
    expect(response.status).toBe(200);
    await until(() => stack.provider.stats.revoked.RefreshToken === 2);
    expect(stack.provider.stats.revoked).toEqual({ AccessToken: 2, RefreshToken: 2 });
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect((await sessionKeys(stack)).filter((key) => key.startsWith("session:"))).toHaveLength(1);
    await sleep(1100);
    expect(await status(stack, a.client, "/after")).toBe(302);
    expect(await status(stack, b.client, "/after")).toBe(302);
    expect(await status(stack, c.client, "/after")).toBe(200);
  });

  it("refuses bad tokens with 400 JSON and ends nothing", async () => {
    await signInAt(stack, "demo");
    await signInAt(stack, "phone");
    const demo = subOf("demo");
    const stranger = await generateKeyPair("RS256", { extractable: true });
    const forgedJwk = { ...(await exportJWK(stranger.privateKey)), kid: (stack.provider.jwks.keys[0] as JWK).kid };
    const events = { [BACKCHANNEL_EVENT]: {} };
    const cases: [string, Promise<string>][] = [
      ["bad signature (another key under the provider's kid)", logoutToken(stack, { sub: demo }, { jwk: forgedJwk, alg: "RS256" })],
      ["another audience", logoutToken(stack, { sub: demo, aud: "someone-else" })],
      ["a nonce", logoutToken(stack, { sub: demo, nonce: "n-0S6_WzA2Mj" })],
      ["no events", logoutToken(stack, { sub: demo, events: undefined })],
      ["an events claim without the back-channel member", logoutToken(stack, { sub: demo, events: { "http://example.com/other": {} } })],
      ["iat in the future", logoutToken(stack, { sub: demo, iat: now() + 600 })],
      ["iat too old", logoutToken(stack, { sub: demo, iat: now() - 600 })],
      ["neither sub nor sid", logoutToken(stack, {})],
      ["no jti", logoutToken(stack, { sub: demo, jti: undefined })],
      ["HS256 with the client secret (not the pinned algorithm)", logoutToken(stack, { sub: demo, events }, { jwk: { kty: "oct", k: Buffer.from(stack.secrets.OIDC_CLIENT_SECRET).toString("base64url") }, alg: "HS256" })],
      ["not a JWT", Promise.resolve("not-a-jwt")],
    ];
    const before = await sessionKeys(stack);
    for (const [name, token] of cases) {
      const response = await postLogoutToken(stack, await token);
      expect(response.status, name).toBe(400);
      expect(await response.json(), name).toMatchObject({ error: "logout_token_invalid" });
    }
    // Another issuer: signed correctly, but not by this provider's issuer name.
    const otherIssuer = await new SignJWT({ events, jti: crypto.randomUUID(), sub: demo })
      .setProtectedHeader({ alg: "RS256", kid: (stack.provider.jwks.keys[0] as JWK).kid! })
      .setIssuer("https://identity.example")
      .setAudience(CLIENT_ID)
      .setIssuedAt()
      .sign(await importJWK(stack.provider.jwks.keys[0] as JWK, "RS256"));
    expect((await postLogoutToken(stack, otherIssuer)).status).toBe(400);
    const noToken = await fetch(`${stack.gate.url}/_auth/backchannel-logout`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(noToken.status).toBe(400);
    expect(await sessionKeys(stack)).toEqual(before);

    // A replayed jti: the first use ends the phone user's session, the replay (after a new login) ends nothing.
    const once = await logoutToken(stack, { sub: subOf("phone") });
    expect((await postLogoutToken(stack, once)).status).toBe(200);
    await signInAt(stack, "phone");
    const afterLogin = await sessionKeys(stack);
    const replay = await postLogoutToken(stack, once);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: "logout_token_invalid" });
    expect(await sessionKeys(stack)).toEqual(afterLogin);
  });
});
