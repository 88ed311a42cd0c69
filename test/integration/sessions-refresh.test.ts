import { SignJWT, decodeJwt, importJWK, type JWK } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { DEMO_USERS, generateSigningKey } from "../../tools/dev-provider/provider.mjs";
import { NAVIGATE } from "../helpers/stack.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { clearedSession, issuedSessionCookie } from "../helpers/session-cookie.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";

const DEMO_SUB = DEMO_USERS[0]!.claims.sub;
/** Short checks, and access tokens that are due at every check (30 s < the 60 s refresh margin). */
const DUE_AT_EVERY_CHECK = { vars: { SESSION_CHECK_INTERVAL: "1" }, provider: { accessTokenTTL: 30 } } as const;

let stack: SessionStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe("parallel requests of one session when its access token is due", () => {
  it("20 parallel requests: one token request, every request served as the user, and the session goes on with the new refresh token", async () => {
    stack = await startSessionStack(DUE_AT_EVERY_CHECK);
    const { client } = await stack.signIn();
    stack.provider.resetStats();
    await sleep(1100);
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => client.get(`${stack!.gate.url}/burst/${i}`, NAVIGATE)));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(1);
    const seen = stack.originRequests("/burst/");
    expect(seen).toHaveLength(20);
    expect(seen.map((r) => r.headers["x-forwarded-user"])).toEqual(Array(20).fill(DEMO_SUB));

    // The next check refreshes with the token the burst's refresh returned: the provider accepts it.
    await sleep(1100);
    expect((await client.get(`${stack.gate.url}/after-burst`, NAVIGATE)).status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(2);
    expect(stack.provider.stats.refreshReuse).toBe(0);
  });

  it("a request with a copy of the cookie from before the refresh takes the stored tokens instead of refreshing again", async () => {
    stack = await startSessionStack(DUE_AT_EVERY_CHECK);
    const { client } = await stack.signIn();
    const oldCookie = client.jar.header(new URL(stack.gate.url))!;
    stack.provider.resetStats();
    await sleep(1100);
    expect((await client.get(`${stack.gate.url}/first`, NAVIGATE)).status).toBe(200);
    // Another tab's request that left before the first one's answer came back.
    const late = await client.request(`${stack.gate.url}/late`, { headers: { ...NAVIGATE, cookie: oldCookie } });
    expect(late.status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(1);
    expect(stack.provider.stats.refreshReuse).toBe(0);
    expect(stack.originRequests("/late")[0]!.headers["x-forwarded-user"]).toBe(DEMO_SUB);
  });
});

describe("two gates (two isolates) sharing the KV race on one session", () => {
  it("both request the same one-time refresh token: the loser gets invalid_grant, adopts the winner's tokens, and nobody is logged out", async () => {
    stack = await startSessionStack(DUE_AT_EVERY_CHECK);
    const other = await stack.twin();
    const { client } = await stack.signIn();
    stack.provider.resetStats();
    await sleep(1100);
    // Both gates read the record before either gets an answer; the provider then sees the token twice.
    stack.proxy.set("token", { kind: "race", count: 2 });
    const [a, b] = await Promise.all([client.get(`${stack.gate.url}/race-a`, NAVIGATE), client.get(`${other.url}/race-b`, NAVIGATE)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(2);
    expect(stack.provider.stats.refreshReuse).toBe(1);
    expect([...stack.originRequests("/race-a"), ...stack.originRequests("/race-b")].map((r) => r.headers["x-forwarded-user"])).toEqual([DEMO_SUB, DEMO_SUB]);
    expect(clearedSession(a) || clearedSession(b)).toBe(false);
    expect(other.logs.join("\n") + stack.gate.logs.join("\n")).toContain('"adopted":true');

    // The winner's refresh token is the session's now: the next check on either gate refreshes fine.
    await sleep(1100);
    expect((await client.get(`${other.url}/after-race`, NAVIGATE)).status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(3);
    expect(stack.provider.stats.refreshReuse).toBe(1);
  });

  it("a gate that reads the record after the other gate's refresh takes its tokens without calling the provider", async () => {
    // Against a provider that revokes the whole grant when a used refresh token comes back
    // (oidc-provider's own behaviour), not calling it is what keeps the session alive.
    // Without revalidation: with it, the userinfo call of the same check may already find the
    // winner's new access token revoked and end the session a check earlier.
    stack = await startSessionStack({
      vars: { ...DUE_AT_EVERY_CHECK.vars, SESSION_REVALIDATE: "off" },
      provider: { ...DUE_AT_EVERY_CHECK.provider, revokeOnReuse: true },
    });
    const other = await stack.twin();
    const { client } = await stack.signIn();
    const cookieBefore = client.jar.header(new URL(stack.gate.url))!;
    stack.provider.resetStats();
    await sleep(1100);
    expect((await client.get(`${stack.gate.url}/first`, NAVIGATE)).status).toBe(200);
    const viaOther = await client.request(`${other.url}/second`, { headers: { ...NAVIGATE, cookie: cookieBefore } });
    expect(viaOther.status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(1);
    await sleep(1100);
    expect((await client.get(`${other.url}/third`, NAVIGATE)).status).toBe(200);
    expect(stack.provider.stats.tokenRequests.refresh_token).toBe(2);
    expect(stack.provider.stats.refreshReuse).toBe(0);
  });

  it("limit: a provider that revokes the whole grant on reuse (not Kontur's behaviour) serves both racing requests but ends the session at its next refresh", async () => {
    // Without revalidation: with it, the userinfo call of the same check may already find the
    // winner's new access token revoked and end the session a check earlier.
    stack = await startSessionStack({
      vars: { ...DUE_AT_EVERY_CHECK.vars, SESSION_REVALIDATE: "off" },
      provider: { ...DUE_AT_EVERY_CHECK.provider, revokeOnReuse: true },
    });
    const other = await stack.twin();
    const { client } = await stack.signIn();
    await sleep(1100);
    stack.proxy.set("token", { kind: "race", count: 2 });
    const [a, b] = await Promise.all([client.get(`${stack.gate.url}/race-a`, NAVIGATE), client.get(`${other.url}/race-b`, NAVIGATE)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    // The replayed token made the provider revoke the winner's new tokens too: the next refresh
    // gets invalid_grant, and the visitor is sent to log in again (no error page, no loop).
    await sleep(1100);
    const next = await client.get(`${stack.gate.url}/after-race`, NAVIGATE);
    expect(next.status).toBe(302);
    expect(next.headers.get("location")).toContain("/connect/authorize");
    expect(clearedSession(next)).toBe(true);
    expect(stack.originRequests("/after-race")).toEqual([]);
  });
});

/** A rewrite of token responses that re-signs the id_token with the provider's key, with `changes`. */
async function resignedIdToken(key: JWK, changes: Record<string, unknown>) {
  const privateKey = await importJWK(key, "RS256");
  return async (body: Record<string, unknown>) => {
    if (typeof body.id_token !== "string") return body;
    const claims = decodeJwt(body.id_token);
    const id_token = await new SignJWT({ ...claims, ...changes }).setProtectedHeader({ alg: "RS256", kid: key.kid! }).sign(privateKey);
    return { ...body, id_token };
  };
}

describe("identity continuity: a refresh that names someone else ends the session", () => {
  const cases: Array<[string, (key: JWK) => Promise<(body: Record<string, unknown>) => Promise<Record<string, unknown>>>]> = [
    ["another sub (signed by the provider's own key)", (key) => resignedIdToken(key, { sub: DEMO_USERS[1]!.claims.sub })],
    ["another issuer (signed by the provider's own key)", (key) => resignedIdToken(key, { iss: "http://localhost:1/another-issuer" })],
    [
      "a signature that does not verify",
      async () => async (body) => {
        const [header, , signature] = String(body.id_token).split(".");
        const claims = { ...decodeJwt(String(body.id_token)), name: "Mallory" };
        return { ...body, id_token: `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}` };
      },
    ],
  ];

  it.each(cases)("a refreshed id_token with %s: login again, cookie cleared, record deleted, origin sees nothing", async (_name, makeRewrite) => {
    const key = await generateSigningKey();
    stack = await startSessionStack({ ...DUE_AT_EVERY_CHECK, provider: { ...DUE_AT_EVERY_CHECK.provider, jwks: { keys: [key] } } });
    const { client } = await stack.signIn();
    expect(await stack.sessionKeys()).toHaveLength(1);
    stack.proxy.set("token", { kind: "rewrite", rewrite: await makeRewrite(key as JWK) });
    await sleep(1100);
    const response = await client.get(`${stack.gate.url}/someone-else`, NAVIGATE);
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toContain("/connect/authorize");
    expect(clearedSession(response)).toBe(true);
    expect(stack.originRequests("/someone-else")).toEqual([]);
    expect(await stack.sessionKeys()).toEqual([]);
    expect(stack.gate.logs.join("\n")).toContain('"failure":"identity_changed"');
  });

  it("a refreshed id_token with the same sub, re-signed by the provider's key, continues the session (the test's rewrite itself is sound)", async () => {
    const key = await generateSigningKey();
    stack = await startSessionStack({ ...DUE_AT_EVERY_CHECK, provider: { ...DUE_AT_EVERY_CHECK.provider, jwks: { keys: [key] } } });
    const { client } = await stack.signIn();
    stack.proxy.set("token", { kind: "rewrite", rewrite: await resignedIdToken(key as JWK, {}) });
    await sleep(1100);
    const response = await client.get(`${stack.gate.url}/same-one`, NAVIGATE);
    expect(response.status).toBe(200);
    expect(issuedSessionCookie(response)).toBeDefined();
    expect(stack.originRequests("/same-one")[0]!.headers["x-forwarded-user"]).toBe(DEMO_SUB);
  });

  it("invalid_grant (the account was deleted at the provider) ends the session at its next check", async () => {
    stack = await startSessionStack(DUE_AT_EVERY_CHECK);
    const { client } = await stack.signIn();
    stack.provider.removeUser("demo");
    await sleep(1100);
    const response = await client.get(`${stack.gate.url}/deleted`, { accept: "application/json" });
    expect(response.status).toBe(401);
    expect(clearedSession(response)).toBe(true);
    expect(stack.originRequests("/deleted")).toEqual([]);
    expect(await stack.sessionKeys()).toEqual([]);
  });
});
