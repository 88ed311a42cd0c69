/**
 * Kontur's tokens as they really are (issue 11), against the IdentityServer-shaped dev provider:
 * revocation of both tokens at logout, and a client not set up for PKCE diagnosed with a hint
 * instead of a mystery. Access tokens that expire (never forwarded past their expiry; the session
 * that needs one ends when it expires without a refresh token) are decided with a moved clock in
 * test/unit/edge/app-kontur.test.ts.
 *
 * One stack for the file, whose provider refuses a code_verifier as an IdentityServer client
 * without PKCE does: the gate runs with OIDC_PKCE=off (the fix) until the PKCE tests redeploy it
 * with the default.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { HttpClient } from "../helpers/http.ts";
import { clearedSession } from "../helpers/session-cookie.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";
import { NAVIGATE } from "../helpers/stack.ts";
import { logged, until } from "../helpers/gate-log.ts";

const JSON_ACCEPT = { accept: "application/json" };
const SAME_ORIGIN_POST = (gateUrl: string) => ({ method: "POST", headers: { origin: gateUrl, "sec-fetch-site": "same-origin" } });

let stack: SessionStack;
beforeAll(async () => {
  stack = await startSessionStack({ vars: { PASS_ACCESS_TOKEN: "true", OIDC_TIMEOUT: "1", OIDC_PKCE: "off" }, provider: { pkce: "refuse" } });
});
afterEach(() => stack.proxy.clear());
afterAll(() => stack.close());

describe("logout revokes the session's tokens at the provider (RFC 7009)", () => {
  it("both the access token and the refresh token are revoked after the response; userinfo then refuses the token", async () => {
    const beforeLogin = Math.floor(Date.now() / 1000);
    const { client } = await stack.signIn("/");
    const afterLogin = Math.floor(Date.now() / 1000);
    await client.get(`${stack.gate.url}/token`, NAVIGATE);
    const accessToken = stack.originRequests("/token")[0]!.headers["x-forwarded-access-token"] as string;
    // The provider's expires_in (3600 s, Kontur's example) reaches the origin as the token's expiry.
    const expires = Number(stack.originRequests("/token")[0]!.headers["x-forwarded-access-token-expires"]);
    expect(expires).toBeGreaterThanOrEqual(beforeLogin + 3600);
    expect(expires).toBeLessThanOrEqual(afterLogin + 3600);
    stack.provider.resetStats();
    const logout = await client.request(`${stack.gate.url}/_auth/logout`, SAME_ORIGIN_POST(stack.gate.url));
    expect(logout.status).toBe(303);
    await until(() => stack.provider.stats.revoked.RefreshToken === 1);
    expect(stack.provider.stats.revoked).toEqual({ AccessToken: 1, RefreshToken: 1 });
    const userinfo = await fetch(`${stack.provider.issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(userinfo.status).toBe(401);
    const line = await logged(stack.current.logs, (l) => l.event === "tokens_revoked");
    expect(line).toMatchObject({ why: "logout", revoked: "access_token refresh_token" });
    expect(stack.current.logs.join("\n")).not.toContain(accessToken);
  });

  it("a new login in the same browser ends the previous session and revokes its tokens", async () => {
    const { client } = await stack.signIn("/");
    await client.get(`${stack.gate.url}/first`, NAVIGATE);
    const firstToken = stack.originRequests("/first")[0]!.headers["x-forwarded-access-token"] as string;
    stack.provider.resetStats();
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=/second`, NAVIGATE);
    const back = await loginThroughProvider(start.headers.get("location")!, {});
    expect((await client.get(back, NAVIGATE)).status).toBe(302);
    await until(() => stack.provider.stats.revoked.RefreshToken === 1);
    expect(stack.provider.stats.revoked).toEqual({ AccessToken: 1, RefreshToken: 1 });
    expect((await fetch(`${stack.provider.issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${firstToken}` } })).status).toBe(401);
    expect(await logged(stack.current.logs, (l) => l.event === "tokens_revoked" && l.why === "new_login")).toBeDefined();
    // The new session works.
    expect((await client.get(`${stack.gate.url}/second`, NAVIGATE)).status).toBe(200);
  });

  it("a revocation endpoint that hangs never delays the signed-out page; the failure is logged", async () => {
    const { client } = await stack.signIn("/");
    stack.proxy.set("revocation", { kind: "slow", ms: 3000 });
    const started = Date.now();
    const logout = await client.request(`${stack.gate.url}/_auth/logout`, SAME_ORIGIN_POST(stack.gate.url));
    expect(logout.status).toBe(303);
    expect(Date.now() - started).toBeLessThan(900);
    expect(clearedSession(logout)).toBe(true);
    expect(await logged(stack.current.logs, (l) => l.event === "provider_error" && l.step === "revocation")).toBeDefined();
  });
});

describe("a client not set up for PKCE: the refusal is diagnosed, never downgraded by itself", () => {
  it("with OIDC_PKCE=off the same client logs in", async () => {
    const { client, callback } = await stack.signIn("/pkce-off");
    expect(callback.status).toBe(302);
    expect((await client.get(`${stack.gate.url}/pkce-off`, NAVIGATE)).status).toBe(200);
  });

  describe("with OIDC_PKCE=auto (the default)", () => {
    beforeAll(async () => {
      // Discovery advertises S256 (OIDC_PKCE=auto sends it), the client refuses a code_verifier.
      await stack.restart({ OIDC_PKCE: "auto", OIDC_TIMEOUT: "5" });
    });

    it("the callback shows a page offering a new login, and the log names OIDC_PKCE=off", async () => {
      const { client, callback, authorizeUrl } = await stack.signIn("/pkce-page");
      expect(authorizeUrl.searchParams.has("code_challenge")).toBe(true);
      expect(callback.status).toBe(401);
      const page = await callback.text();
      expect(page).toContain('href="/_auth/login?rd=%2Fpkce-page"');
      expect(callback.headers.getSetCookie().some((c) => c.startsWith("kg_session=") && !/Max-Age=0/.test(c))).toBe(false);
      const line = await logged(stack.current.logs, (l) => l.event === "login_failed" && String(l.reason).includes("OIDC_PKCE=off"));
      expect(line).toMatchObject({ code: "login_rejected" });
      // No automatic downgrade: the next login sends PKCE again.
      const again = await client.get(`${stack.gate.url}/pkce-page`, NAVIGATE);
      expect(new URL(again.headers.get("location")!).searchParams.has("code_challenge")).toBe(true);
    });

    it("a script hitting the refused callback gets JSON (no page), still no session", async () => {
      const client = new HttpClient();
      const start = await client.get(`${stack.gate.url}/`, NAVIGATE);
      const back = await loginThroughProvider(start.headers.get("location")!, {});
      const response = await client.get(back, JSON_ACCEPT);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: "login_rejected" });
    });
  });
});
