import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { NAVIGATE, SITE, startApp, type Account, type AppHarness } from "./app";

/**
 * What a session costs and how long it lives, through the whole app with a clock the test moves:
 * the cookie's size, KV left alone between checks, the idle limit without KV writes, and a copy of
 * the cookie outliving a logout only until the next check.
 */
const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const SESSION_COOKIE = "__Host-kg_session";

/** An account with the longest claims a real one plausibly has: a long Cyrillic name, a 200-character e-mail. */
const LONG_EMAIL = `${"ivanov.ivan.ivanovich.".repeat(8)}x@${"podrazdelenie.".repeat(3)}kontur.ru`.slice(-200);
const LONG: Account = {
  sub: "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e",
  claims: {
    name: "Константинопольская-Преображенская Александра-Христофора Вячеславовна",
    given_name: "Александра-Христофора",
    family_name: "Константинопольская-Преображенская",
    middle_name: "Вячеславовна",
    email: LONG_EMAIL,
    email_verified: true,
    phone_number: "+79990000099",
    phone_number_verified: true,
    updated_at: 1735689600,
  },
};

let gate: AppHarness | undefined;
afterEach(() => {
  gate?.restore();
  gate = undefined;
});

async function start(settings: Record<string, string>): Promise<AppHarness> {
  gate = await startApp(settings);
  return gate;
}

const reissued = (response: Response) => response.headers.getAll("set-cookie").some((c: string) => c.startsWith(`${SESSION_COOKIE}=`) && !/max-age=0/i.test(c));
const cleared = (response: Response) => response.headers.getAll("set-cookie").some((c: string) => c.startsWith(`${SESSION_COOKIE}=`) && /max-age=0/i.test(c));
const paths = (app: AppHarness) => app.origin.map((request) => new URL(request.url).pathname);

/** Every KV key with its expiration, and the sealed session records' values. */
async function kvState(): Promise<{ keys: KVNamespaceListKey<unknown>[]; records: (string | null)[] }> {
  const { keys } = await SESSIONS.list();
  const records = await Promise.all(keys.filter((key) => key.name.startsWith("session:")).map((key) => SESSIONS.get(key.name)));
  return { keys, records };
}

describe("size and cost of a session", () => {
  it("the session cookie stays within 1,200 bytes for a long Cyrillic name and a 200-character e-mail", async () => {
    expect(LONG_EMAIL).toHaveLength(200);
    const app = await start({ OIDC_SCOPES: "openid profile email phone offline_access" });
    app.provider.claimsInIdToken = false;
    const browser = await app.signIn(LONG);
    const cookie = `${SESSION_COOKIE}=${browser.cookies.get(SESSION_COOKIE)}`;
    expect(new TextEncoder().encode(cookie).byteLength).toBeLessThanOrEqual(1200);
    await app.request("/who", { headers: NAVIGATE }, browser);
    const seen = app.origin.at(-1)!.headers;
    expect(seen["x-forwarded-email"]).toBe(LONG_EMAIL);
    expect(decodeURIComponent(seen["x-forwarded-name"]!)).toBe(LONG.claims.name);
  });

  it("between checks, requests neither change the KV record or the session index nor re-issue the cookie", async () => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    app.provider.issueSid = true; // so the login also writes the provider-session index (psid:…)
    const beforeLogin = new Set((await SESSIONS.list()).keys.map((key) => key.name));
    const browser = await app.signIn();
    const before = await kvState();
    // The per-user index (user:…, psid:… with metadata) is written at login only.
    const written = before.keys.filter((key) => !beforeLogin.has(key.name));
    expect(written.map((key) => key.name.split(":")[0]).sort()).toEqual(["psid", "session", "user"]);
    for (let i = 0; i < 10; i++) {
      app.clock.advance(29);
      const response = await app.request(`/quiet-${i}`, { headers: NAVIGATE }, browser);
      expect(response.status).toBe(200);
      expect(response.headers.getAll("set-cookie")).toEqual([]);
    }
    // A write would re-seal the record (a fresh IV): it is byte for byte the same.
    expect(await kvState()).toEqual(before);
  });
});

describe("SESSION_IDLE_TTL: an unused session ends, an active one goes on, without writing to KV", () => {
  it("requests keep the session alive past the idle limit; the cookie is re-issued only now and then; KV is untouched", async () => {
    const app = await start({ SESSION_IDLE_TTL: "4" });
    const browser = await app.signIn();
    const before = await kvState();
    let reissues = 0;
    for (let i = 0; i < 12; i++) {
      app.clock.advance(0.5);
      const response = await app.request(`/active-${i}`, { headers: NAVIGATE }, browser);
      expect(response.status).toBe(200);
      if (reissued(response)) reissues += 1;
    }
    // Six seconds of activity with a 4-second idle limit: alive, with about one re-issue a second.
    expect(reissues).toBeGreaterThan(0);
    expect(reissues).toBeLessThan(12);
    expect(await kvState()).toEqual(before);

    app.clock.advance(5.2);
    const idle = await app.request("/after-idle", { headers: NAVIGATE }, browser);
    expect(idle.status).toBe(302);
    expect(cleared(idle)).toBe(true);
    expect(paths(app)).not.toContain("/after-idle");
  });
});

describe("revocation takes effect at the next check, as the README states", () => {
  it("a cookie copied before logout works until the session's next check, and is refused from then on", async () => {
    const app = await start({ SESSION_CHECK_INTERVAL: "5m" });
    const browser = await app.signIn();
    const stolen = browser.header();
    const out = await app.request("/_auth/logout", { method: "POST", headers: { origin: SITE, "sec-fetch-site": "same-origin" } }, browser);
    expect(out.status).toBe(303);
    // Within the check interval the copy is still honoured: that is the documented worst-case delay.
    app.clock.advance(5 * 60 - 1);
    expect((await app.request("/within", { headers: { ...NAVIGATE, cookie: stolen } })).status).toBe(200);
    app.clock.advance(1);
    const refused = await app.request("/after", { headers: { ...NAVIGATE, cookie: stolen } });
    expect(refused.status).toBe(302);
    expect(cleared(refused)).toBe(true);
    const api = await app.request("/api/after", { headers: { accept: "application/json", cookie: stolen } });
    expect(api.status).toBe(401);
    expect(paths(app)).not.toContain("/after");
  });
});
