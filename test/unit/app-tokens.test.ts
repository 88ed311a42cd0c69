import { afterEach, describe, expect, it } from "vitest";
import { IVANOV, NAVIGATE, startApp, type AppHarness } from "./app";

/**
 * Kontur's access tokens expire (`expires_in`), and without offline_access there is nothing to renew
 * them: through the whole app with a clock the test moves, a token is never forwarded past its
 * expiry, and the session that needs it ends when it expires, not up to a check interval later.
 * Revocation at the real provider is test/integration/kontur-tokens.test.ts.
 */
const TOKEN_TTL = 120; // shorter than the 5-minute check interval
const SCRIPT = { accept: "application/json", "sec-fetch-mode": "cors" };

let gate: AppHarness | undefined;
afterEach(() => {
  gate?.restore();
  gate = undefined;
});

const cleared = (response: Response) => response.headers.getAll("set-cookie").some((c: string) => c.startsWith("__Host-kg_session=") && /max-age=0/i.test(c));

describe("access tokens expire: never forwarded past expiry, X-Forwarded-Access-Token-Expires", () => {
  it("the origin gets the token with its expiry; once it expires a navigation goes back through the provider and a script gets 401", async () => {
    // No offline_access (no refresh token), the default 5-minute check interval.
    const app = (gate = await startApp({ PASS_ACCESS_TOKEN: "true", OIDC_SCOPES: "openid profile email" }));
    app.provider.refreshTokenNeedsOfflineAccess = true;
    app.provider.accessTokenTtl = TOKEN_TTL;
    const loginAt = Math.floor(app.clock.now / 1000);
    const browser = await app.signIn();
    const script = await app.signIn();
    /** Every token the origin received, with the gate's time when it arrived. */
    const forwarded: Array<{ token: string | undefined; expires: number; at: number }> = [];
    const get = async (path: string, headers: Record<string, string>, who = browser) => {
      const response = await app.request(path, { headers }, who);
      const seen = app.origin.at(-1);
      if (response.status === 200 && seen !== undefined && new URL(seen.url).pathname === path) {
        forwarded.push({ token: seen.headers["x-forwarded-access-token"], expires: Number(seen.headers["x-forwarded-access-token-expires"]), at: app.clock.now });
      }
      return response;
    };

    expect((await get("/fresh", NAVIGATE)).status).toBe(200);
    const { token, expires } = forwarded[0]!;
    expect(token).toEqual(expect.any(String));
    expect(expires).toBeGreaterThanOrEqual(loginAt + TOKEN_TTL - 1);
    expect(expires).toBeLessThanOrEqual(loginAt + TOKEN_TTL + 1);

    app.clock.now = (expires - 1) * 1000;
    expect((await get("/last-second", NAVIGATE)).status).toBe(200);
    expect((await get("/api-last-second", SCRIPT, script)).status).toBe(200);

    app.clock.now = expires * 1000;
    const navigation = await get("/expired", NAVIGATE);
    expect(navigation.status).toBe(302);
    expect(navigation.headers.get("location")).toMatch(/^https:\/\/identity\.test\/connect\/authorize\?/);
    expect(cleared(navigation)).toBe(true);
    const api = await get("/expired-api", SCRIPT, script);
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ error: "unauthenticated", login_url: expect.any(String) });
    const paths = app.origin.map((request) => new URL(request.url).pathname);
    expect(paths).not.toContain("/expired");
    expect(paths).not.toContain("/expired-api");
    // Every token the origin ever received was still valid when it arrived.
    expect(forwarded).toHaveLength(3);
    for (const seen of forwarded) {
      expect(seen.token).toEqual(expect.any(String));
      expect(seen.expires * 1000).toBeGreaterThan(seen.at);
    }
    expect(app.origin.every((request) => request.headers["x-forwarded-user"] === IVANOV.sub)).toBe(true);
  });
});
