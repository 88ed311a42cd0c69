import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { AUTHORIZE, clearsSession, IVANOV, NAVIGATE, setsSession, startApp, type AppHarness } from "../app";

/**
 * Session timing through the whole app, with a clock the test moves: what used to need seconds of
 * sleeping against a real provider is decided here in milliseconds.
 */
let gate: AppHarness | undefined;
afterEach(() => {
  gate?.restore();
  gate = undefined;
});

async function start(settings: Record<string, string>): Promise<AppHarness> {
  gate = await startApp(settings);
  return gate;
}


describe("a signed-in visitor through app.request()", () => {
  it("reaches the origin named, with the assertion, and nothing is re-issued between checks", async () => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    const browser = await app.signIn();
    app.clock.advance(60);
    const response = await app.request("/page", { headers: NAVIGATE }, browser);
    expect(response.status).toBe(200);
    expect(setsSession(response)).toBe(false);
    const seen = app.origin.at(-1)!;
    expect(seen.url).toBe("https://origin.test/page");
    expect(seen.headers["x-forwarded-user"]).toBe(IVANOV.sub);
    expect(seen.headers["x-auth-assertion"]).toMatch(/^ey/);
    expect(app.provider.stats.token).toBe(1);
  });
});

describe("revocation: the KV record is the server-side truth, read only at checks", () => {
  const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
  async function deleteAllRecords(): Promise<void> {
    for (const key of (await SESSIONS.list({ prefix: "session:" })).keys) await SESSIONS.delete(key.name);
  }

  it("between checks a deleted record goes unnoticed: the hot path reads no KV", async () => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    const browser = await app.signIn();
    await deleteAllRecords();
    app.clock.advance(4 * 60);
    expect((await app.request("/between", { headers: NAVIGATE }, browser)).status).toBe(200);
  });

  it("a session whose record was deleted ends at its next check: login, cookie cleared, origin not reached", async () => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    const browser = await app.signIn();
    await deleteAllRecords();
    app.clock.advance(5 * 60);
    const ended = await app.request("/checked", { headers: NAVIGATE }, browser);
    expect(ended.status).toBe(302);
    expect(clearsSession(ended)).toBe(true);
    expect(app.origin.map((r) => new URL(r.url).pathname)).not.toContain("/checked");
  });
});

describe("SESSION_TTL ends a session at its absolute end, whatever happens in between", () => {
  it("one second before the end the origin is reached; at the end a navigation goes to login and the cookie is cleared", async () => {
    const app = await start({ SESSION_TTL: "1h", SESSION_CHECK_INTERVAL: "5m" });
    const browser = await app.signIn();
    app.clock.advance(3599);
    expect((await app.request("/before", { headers: NAVIGATE }, browser)).status).toBe(200);
    app.clock.advance(1);
    const ended = await app.request("/after", { headers: NAVIGATE }, browser);
    expect(ended.status).toBe(302);
    expect(ended.headers.get("location")).toMatch(AUTHORIZE);
    expect(clearsSession(ended)).toBe(true);
    expect(app.origin.map((r) => new URL(r.url).pathname)).not.toContain("/after");
  });

  it("a script gets 401 JSON with the login URL instead", async () => {
    const app = await start({ SESSION_TTL: "1h", SESSION_CHECK_INTERVAL: "5m" });
    const browser = await app.signIn();
    app.clock.advance(3600);
    const ended = await app.request("/api/data", { headers: { accept: "application/json", "sec-fetch-mode": "cors" } }, browser);
    expect(ended.status).toBe(401);
    expect(await ended.json()).toMatchObject({ error: "unauthenticated", login_url: "/_auth/login?rd=%2Fapi%2Fdata" });
  });
});

describe("SESSION_IDLE_TTL ends a session nobody used for that long", () => {
  it("requests within the idle limit keep it alive past several limits; silence ends it", async () => {
    const app = await start({ SESSION_IDLE_TTL: "10m", SESSION_CHECK_INTERVAL: "1h" });
    const browser = await app.signIn();
    for (let i = 0; i < 6; i += 1) {
      app.clock.advance(9 * 60);
      expect((await app.request(`/active-${i}`, { headers: NAVIGATE }, browser)).status).toBe(200);
    }
    app.clock.advance(10 * 60 + 1);
    const ended = await app.request("/idle", { headers: NAVIGATE }, browser);
    expect(ended.status).toBe(302);
    expect(clearsSession(ended)).toBe(true);
  });
});

describe("SESSION_CHECK_INTERVAL: the session is checked, and its token refreshed when due", () => {
  it("a due access token is refreshed once at the check, and the session goes on", async () => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    app.provider.accessTokenTtl = 600;
    const browser = await app.signIn();
    app.clock.advance(5 * 60);
    const checked = await app.request("/checked", { headers: NAVIGATE }, browser);
    expect(checked.status).toBe(200);
    expect(setsSession(checked)).toBe(true);
    expect(app.provider.stats.refresh).toBe(1);
  });

  it("invalid_grant at the refresh ends the session: login, cookie cleared, origin not reached", async () => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    app.provider.accessTokenTtl = 600;
    const browser = await app.signIn();
    app.provider.tokenFault = { status: 400, body: JSON.stringify({ error: "invalid_grant" }) };
    app.clock.advance(5 * 60);
    const ended = await app.request("/revoked", { headers: NAVIGATE }, browser);
    expect(ended.status).toBe(302);
    expect(clearsSession(ended)).toBe(true);
    expect(app.origin.map((r) => new URL(r.url).pathname)).not.toContain("/revoked");
  });
});

describe("the token endpoint fails at a check: the session goes on from the cookie, the check is retried soon", () => {
  const faults: Array<[string, AppHarness["provider"]["tokenFault"]]> = [
    ["down (connection lost)", "network"],
    ["500 with a JSON error", { status: 500, body: JSON.stringify({ error: "server_error" }) }],
    ["503 temporarily_unavailable", { status: 503, body: JSON.stringify({ error: "temporarily_unavailable" }) }],
    ["502 with an HTML page", { status: 502, body: "<html>bad gateway</html>", contentType: "text/html" }],
    ["200 with an HTML page", { status: 200, body: "<html>maintenance</html>", contentType: "text/html" }],
    ["200 with malformed JSON", { status: 200, body: "{\"access_token\":", contentType: "application/json" }],
    ["400 invalid_client (anything but invalid_grant)", { status: 400, body: JSON.stringify({ error: "invalid_client" }) }],
  ];

  it.each(faults)("token endpoint %s", async (_name, fault) => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    app.provider.accessTokenTtl = 600;
    const browser = await app.signIn();
    app.provider.tokenFault = fault;
    app.clock.advance(5 * 60);
    const during = await app.request("/during", { headers: NAVIGATE }, browser);
    expect(during.status).toBe(200);
    expect(clearsSession(during)).toBe(false);
    expect(app.origin.at(-1)?.headers["x-forwarded-user"]).toBe(IVANOV.sub);
    const attempts = app.provider.stats.token;

    // Within the retry delay nothing asks the provider again.
    app.clock.advance(10);
    expect((await app.request("/soon", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(app.provider.stats.token).toBe(attempts);

    // The provider is back: the retried check refreshes with the refresh token the session still had.
    app.provider.tokenFault = undefined;
    app.clock.advance(30);
    const after = await app.request("/after", { headers: NAVIGATE }, browser);
    expect(after.status).toBe(200);
    expect(app.provider.stats.refresh).toBeGreaterThanOrEqual(1);
    expect(app.provider.stats.refreshReuse).toBe(0);
  });
});
