import { env } from "cloudflare:workers";
import { decodeJwt } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AUTHORIZE, clearsSession, IVANOV, NAVIGATE, startApp, type Account, type AppHarness, type UserinfoFault } from "../app";

/**
 * Kontur's userinfo and access tokens over a session's life, through the whole app with a clock the
 * test moves: what userinfo's answer at a check does to the session (SESSION_REVALIDATE), and an
 * access token that expires with nothing to renew it. The real IdentityServer-shaped provider's side
 * (its userinfo really refuses a disabled account, carries a rename and the profile the id_token
 * lacks; revocation at logout) is test/integration/kontur-userinfo.test.ts and kontur-tokens.test.ts.
 */
const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const INTERVAL = 300;
const SCRIPT = { accept: "application/json", "sec-fetch-mode": "cors" };
const TOKEN_TTL = 120; // shorter than the 5-minute check interval
const PETROV: Account = {
  sub: "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d",
  claims: { email: "petrov@example.kontur.ru", email_verified: true, name: "Петров Пётр Петрович" },
};

let gate: AppHarness | undefined;
afterEach(() => {
  gate?.restore();
  gate = undefined;
  vi.restoreAllMocks();
});

/** The gate as Kontur serves it: the id_token without the profile, no refresh token without offline_access. */
async function start(settings: Record<string, string> = {}, claimsInIdToken = false): Promise<AppHarness> {
  gate = await startApp({ SESSION_CHECK_INTERVAL: String(INTERVAL), ...settings });
  gate.provider.claimsInIdToken = claimsInIdToken;
  gate.provider.refreshTokenNeedsOfflineAccess = true;
  return gate;
}

/** The gate's JSON log lines from now on. */
function logLines(): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  const keep = (line: unknown) => {
    if (typeof line === "string" && line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>);
  };
  vi.spyOn(console, "log").mockImplementation(keep);
  vi.spyOn(console, "error").mockImplementation(keep);
  return lines;
}

async function sessionKeys(): Promise<string[]> {
  return (await SESSIONS.list({ prefix: "session:" })).keys.map((key) => key.name);
}

const paths = (app: AppHarness) => app.origin.map((request) => new URL(request.url).pathname);
const seenAt = (app: AppHarness, path: string) => app.origin.find((request) => new URL(request.url).pathname === path)?.headers ?? {};

describe("userinfo is asked at login and at each check, never in between", () => {
  it("once at login, not again before the check interval has passed, once at the check", async () => {
    const app = await start();
    const browser = await app.signIn();
    expect(app.provider.stats.userinfo).toBe(1);
    app.clock.advance(INTERVAL - 1);
    expect((await app.request("/between", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(seenAt(app, "/between")["x-forwarded-email"]).toBe(IVANOV.claims.email);
    expect(app.provider.stats.userinfo).toBe(1);
    app.clock.advance(1);
    expect((await app.request("/checked", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(app.provider.stats.userinfo).toBe(2);
  });
});

describe("an account disabled at the provider: userinfo answers 401 at the next check", () => {
  it("until the check the session goes on; at it a navigation goes to login, a script gets 401, the origin sees nothing, the records are deleted", async () => {
    const app = await start();
    const before = await sessionKeys();
    const browser = await app.signIn(PETROV);
    const script = await app.signIn(PETROV);
    const created = (await sessionKeys()).filter((key) => !before.includes(key));
    expect(created).toHaveLength(2);
    app.provider.setDisabled(PETROV.sub, true);
    const lines = logLines();

    app.clock.advance(INTERVAL - 1);
    expect((await app.request("/before-check", { headers: NAVIGATE }, browser)).status).toBe(200);
    app.clock.advance(1);
    const navigation = await app.request("/after-disable", { headers: NAVIGATE }, browser);
    expect(navigation.status).toBe(302);
    expect(navigation.headers.get("location")).toMatch(AUTHORIZE);
    expect(clearsSession(navigation)).toBe(true);
    const api = await app.request("/api-after-disable", { headers: SCRIPT }, script);
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ error: "unauthenticated", login_url: expect.any(String) });
    expect(paths(app)).not.toContain("/after-disable");
    expect(paths(app)).not.toContain("/api-after-disable");
    expect(lines.filter((line) => line.event === "session_revoked" && line.reason === "revoked_at_provider")).toHaveLength(2);
    const left = await sessionKeys();
    expect(created.filter((key) => left.includes(key))).toEqual([]);
  });

  it.each([
    ["Kontur's shape (the profile only from userinfo)", false],
    ["the friendly shape (the profile in the id_token too)", true],
  ])("%s: the claims reach the origin, and the disabled account is caught at the next check", async (_name, claimsInIdToken) => {
    const app = await start({}, claimsInIdToken);
    const browser = await app.signIn();
    expect((await app.request("/shape", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(seenAt(app, "/shape")["x-forwarded-email"]).toBe(IVANOV.claims.email);
    app.provider.setDisabled(IVANOV.sub, true);
    app.clock.advance(INTERVAL);
    expect((await app.request("/shape-after", { headers: NAVIGATE }, browser)).status).toBe(302);
    expect(paths(app)).not.toContain("/shape-after");
  });
});

describe("a profile changed at the provider reaches the origin at the next check", () => {
  it("a rename: the header, the assertion and /_auth/me carry the new claims", async () => {
    const app = await start();
    const browser = await app.signIn();
    app.provider.updateAccount(IVANOV.sub, { name: "Иванова-Петрова Ивана Ивановна", email: "ivanova@example.kontur.ru" });
    app.clock.advance(INTERVAL - 1);
    await app.request("/not-yet", { headers: NAVIGATE }, browser);
    expect(decodeURIComponent(seenAt(app, "/not-yet")["x-forwarded-name"]!)).toBe(IVANOV.claims.name);
    app.clock.advance(1);
    const page = await app.request("/renamed", { headers: NAVIGATE }, browser);
    expect(page.status).toBe(200);
    const headers = seenAt(app, "/renamed");
    expect(decodeURIComponent(headers["x-forwarded-name"]!)).toBe("Иванова-Петрова Ивана Ивановна");
    expect(headers["x-forwarded-email"]).toBe("ivanova@example.kontur.ru");
    expect(decodeJwt(headers["x-auth-assertion"]!)).toMatchObject({ name: "Иванова-Петрова Ивана Ивановна", email: "ivanova@example.kontur.ru" });
    const me = (await (await app.request("/_auth/me", { headers: { accept: "application/json" } }, browser)).json()) as Record<string, string>;
    expect(me.name).toBe("Иванова-Петрова Ивана Ивановна");
  });
});

describe("userinfo fails at a check: the session goes on from the cookie, the check is retried soon", () => {
  const outages: Array<[string, UserinfoFault]> = [
    ["down", "network"],
    ["slower than OIDC_TIMEOUT", "hang"],
    ["503", { status: 503, body: JSON.stringify({ error: "temporarily_unavailable" }) }],
    ["502 HTML", { status: 502, body: "<!doctype html><html><body><h1>502</h1></body></html>", contentType: "text/html; charset=utf-8" }],
    ["200 malformed", { status: 200, body: '{"sub":"6f1c2a9e', contentType: "application/json" }],
  ];
  it.each(outages)("userinfo %s: served as the user with one attempt, not asked again within 30 s, and the retried check succeeds", async (_name, fault) => {
    const app = await start({ OIDC_TIMEOUT: "1" });
    const browser = await app.signIn();
    app.provider.userinfoFault = fault;
    app.clock.advance(INTERVAL);
    const attempts = app.provider.stats.userinfo;
    const during = await app.request("/during", { headers: NAVIGATE }, browser);
    expect(during.status).toBe(200);
    expect(clearsSession(during)).toBe(false);
    expect(seenAt(app, "/during")["x-forwarded-user"]).toBe(IVANOV.sub);
    expect(app.provider.stats.userinfo).toBe(attempts + 1);

    app.provider.userinfoFault = undefined;
    app.clock.advance(10);
    expect((await app.request("/soon", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(app.provider.stats.userinfo).toBe(attempts + 1);
    app.clock.advance(20);
    const after = await app.request("/after", { headers: NAVIGATE }, browser);
    expect(after.status).toBe(200);
    expect(app.provider.stats.userinfo).toBe(attempts + 2);
    expect(seenAt(app, "/after")["x-forwarded-user"]).toBe(IVANOV.sub);
  });

  it("parallel requests at a check share one userinfo call", async () => {
    const app = await start();
    const browser = await app.signIn();
    app.clock.advance(INTERVAL);
    const attempts = app.provider.stats.userinfo;
    const cookie = browser.header();
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => app.request(`/parallel-${i}`, { headers: { ...NAVIGATE, cookie } })));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    expect(app.provider.stats.userinfo).toBe(attempts + 1);
  });
});

describe("SESSION_REVALIDATE=off: userinfo only at login", () => {
  it("checks never ask userinfo; a disabled account keeps its session (what the setting trades away)", async () => {
    const app = await start({ SESSION_REVALIDATE: "off" });
    const browser = await app.signIn(PETROV);
    const atLogin = app.provider.stats.userinfo;
    app.provider.setDisabled(PETROV.sub, true);
    app.clock.advance(INTERVAL);
    expect((await app.request("/still", { headers: NAVIGATE }, browser)).status).toBe(200);
    app.clock.advance(INTERVAL);
    expect((await app.request("/still-2", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(app.provider.stats.userinfo).toBe(atLogin);
    expect(seenAt(app, "/still-2")["x-forwarded-email"]).toBe(PETROV.claims.email);
  });
});

/**
 * Kontur's access tokens expire (`expires_in`), and without offline_access there is nothing to renew
 * them: a token is never forwarded past its expiry, and the session that needs it ends when it
 * expires, not up to a check interval later.
 */
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
    expect(navigation.headers.get("location")).toMatch(AUTHORIZE);
    expect(clearsSession(navigation)).toBe(true);
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
