import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { AUTHORIZE, Browser, clearsSession, IVANOV, NAVIGATE, SESSION_COOKIE, setsSession, SITE, startApp, type Account, type AppHarness } from "../app";
import { randomSecret } from "../fixtures";

/**
 * A session's life through the whole app, with a clock the test moves instead of sleeping: what it
 * costs (the cookie's size, KV left alone between checks, the idle limit without KV writes), how it
 * ends (a copy of the cookie outliving a logout only until the next check, sign-out everywhere), and
 * SESSION_SECRETS rotation across a redeployment on the same KV and provider. The real stack's side
 * is test/integration/session.test.ts, sessions-ending.test.ts and sessions-rotation.test.ts.
 */
const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const INTERVAL = 300;

let gate: AppHarness | undefined;
afterEach(() => {
  gate?.restore();
  gate = undefined;
});

/** The gate deployed with `settings`, or redeployed on the same KV, provider and clock when one runs. */
async function deploy(settings: Record<string, string>): Promise<AppHarness> {
  gate = await startApp(settings, gate);
  return gate;
}

const paths = (app: AppHarness) => app.origin.map((request) => new URL(request.url).pathname);
const status = async (app: AppHarness, browser: Browser, path: string) => (await app.request(path, { headers: NAVIGATE }, browser)).status;

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

const PETROV: Account = {
  sub: "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d",
  claims: { email: "petrov@example.kontur.ru", email_verified: true, name: "Петров Пётр Петрович" },
};
const EVERYWHERE = { method: "POST", headers: { origin: SITE, "sec-fetch-site": "same-origin", "content-type": "application/x-www-form-urlencoded" }, body: "everywhere=1" };

/** Session-related KV keys (records and index entries), sorted. */
async function sessionKeys(): Promise<string[]> {
  const names: string[] = [];
  for (const prefix of ["session:", "user:", "psid:"]) names.push(...(await SESSIONS.list({ prefix })).keys.map((key) => key.name));
  return names.sort();
}

/** The id of the key that sealed a value (`1.<key id>.<data>`). */
function sealedBy(sealed: string | null | undefined): string | undefined {
  return sealed?.split(".")[1];
}

/** The session cookie a response stores (not a deletion). */
function issuedCookie(response: Response): string | undefined {
  const line = response.headers.getAll("set-cookie").find((c: string) => c.startsWith(`${SESSION_COOKIE}=`) && !/max-age=0/i.test(c));
  return line?.split(";")[0]!.slice(SESSION_COOKIE.length + 1);
}

/** Every KV key with its expiration, and the sealed session records' values. */
async function kvState(): Promise<{ keys: KVNamespaceListKey<unknown>[]; records: (string | null)[] }> {
  const { keys } = await SESSIONS.list();
  const records = await Promise.all(keys.filter((key) => key.name.startsWith("session:")).map((key) => SESSIONS.get(key.name)));
  return { keys, records };
}

describe("size and cost of a session", () => {
  it("the session cookie stays within 1,200 bytes for a long Cyrillic name and a 200-character e-mail", async () => {
    expect(LONG_EMAIL).toHaveLength(200);
    const app = await deploy({ OIDC_SCOPES: "openid profile email phone offline_access" });
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
    const app = await deploy({ SESSION_CHECK_INTERVAL: "5m" });
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
    const app = await deploy({ SESSION_IDLE_TTL: "4" });
    const browser = await app.signIn();
    const before = await kvState();
    let reissues = 0;
    for (let i = 0; i < 12; i++) {
      app.clock.advance(0.5);
      const response = await app.request(`/active-${i}`, { headers: NAVIGATE }, browser);
      expect(response.status).toBe(200);
      if (setsSession(response)) reissues += 1;
    }
    // Six seconds of activity with a 4-second idle limit: alive, with about one re-issue a second.
    expect(reissues).toBeGreaterThan(0);
    expect(reissues).toBeLessThan(12);
    expect(await kvState()).toEqual(before);

    app.clock.advance(5.2);
    const idle = await app.request("/after-idle", { headers: NAVIGATE }, browser);
    expect(idle.status).toBe(302);
    expect(clearsSession(idle)).toBe(true);
    expect(paths(app)).not.toContain("/after-idle");
  });
});

describe("revocation takes effect at the next check, as the README states", () => {
  it("a cookie copied before logout works until the session's next check, and is refused from then on", async () => {
    const app = await deploy({ SESSION_CHECK_INTERVAL: "5m" });
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
    expect(clearsSession(refused)).toBe(true);
    const api = await app.request("/api/after", { headers: { accept: "application/json", cookie: stolen } });
    expect(api.status).toBe(401);
    expect(paths(app)).not.toContain("/after");
  });
});

describe("sign out everywhere", () => {
  it("ends both browsers of one user, at once here and at the next check there, and not another user's", async () => {
    const app = await deploy({ SESSION_CHECK_INTERVAL: String(INTERVAL) });
    const before = await sessionKeys();
    const a = await app.signIn(IVANOV);
    const b = await app.signIn(IVANOV);
    const c = await app.signIn(PETROV);
    for (const browser of [a, b, c]) expect(await status(app, browser, "/before")).toBe(200);

    const out = await app.request("/_auth/logout", EVERYWHERE, a);
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe(`${SITE}/_auth/signed-out`);
    expect(clearsSession(out)).toBe(true);
    // Only the other user's session is left in KV.
    const left = (await sessionKeys()).filter((key) => !before.includes(key));
    expect(left.filter((key) => key.startsWith("session:"))).toHaveLength(1);
    expect(left.some((key) => key.startsWith("user:"))).toBe(true);

    expect(await status(app, a, "/after")).toBe(302);
    // The other browser is served until its next check, and refused from then on.
    app.clock.advance(INTERVAL - 1);
    expect(await status(app, b, "/within")).toBe(200);
    app.clock.advance(1);
    expect(await status(app, b, "/checked")).toBe(302);
    expect(await status(app, c, "/still")).toBe(200);
    expect(app.origin.map((request) => new URL(request.url).pathname)).not.toContain("/checked");
  });

  it("the signed-out page offers it after an ordinary logout, and it then ends the user's other sessions", async () => {
    const app = await deploy({ SESSION_CHECK_INTERVAL: String(INTERVAL) });
    const before = await sessionKeys();
    const a = await app.signIn(IVANOV);
    const b = await app.signIn(IVANOV);
    await app.request("/_auth/logout", { method: "POST", headers: { origin: SITE, "sec-fetch-site": "same-origin" } }, a);
    const page = await (await app.request("/_auth/signed-out", { headers: NAVIGATE }, a)).text();
    expect(page).toContain('<button type="submit" name="everywhere" value="1">');
    // A browser that signed nobody out gets no such button.
    expect(await (await app.request("/_auth/signed-out", { headers: NAVIGATE }, new Browser())).text()).not.toContain("everywhere");

    const mine = async () => (await sessionKeys()).filter((key) => !before.includes(key));
    expect(await mine()).toHaveLength(2); // b's record and index entry
    const out = await app.request("/_auth/logout", EVERYWHERE, a);
    expect(out.status).toBe(303);
    expect(await mine()).toEqual([]);
    app.clock.advance(INTERVAL);
    expect(await status(app, b, "/after")).toBe(302);
  });
});

describe("SESSION_SECRETS rotation: nobody is logged out by a new key", () => {
  /** A gate on `oldKey` and a browser signed in there: its session record's KV key and the key id its cookie is sealed with. */
  async function signedInUnder(oldKey: string) {
    const app = await deploy({ SESSION_SECRETS: oldKey, SESSION_CHECK_INTERVAL: String(INTERVAL) });
    const before = new Set((await SESSIONS.list({ prefix: "session:" })).keys.map((key) => key.name));
    const browser = await app.signIn();
    const [recordKey] = (await SESSIONS.list({ prefix: "session:" })).keys.map((key) => key.name).filter((name) => !before.has(name));
    return { browser, recordKey: recordKey!, oldCookieKey: sealedBy(browser.cookies.get(SESSION_COOKIE)) };
  }

  /** Asks `path` with the browser's cookie: Ivanov reaches the origin and gets a cookie sealed with another key; that key's id. */
  async function resealedOn(app: AppHarness, path: string, browser: Browser, oldCookieKey: string | undefined) {
    const response = await app.request(path, { headers: NAVIGATE }, browser);
    expect(response.status).toBe(200);
    expect(app.origin.at(-1)!.headers["x-forwarded-user"]).toBe(IVANOV.sub);
    const newCookieKey = sealedBy(issuedCookie(response));
    expect(newCookieKey).toBeDefined();
    expect(newCookieKey).not.toBe(oldCookieKey);
    return newCookieKey;
  }

  it("a new first key keeps old cookies and records readable, and re-seals them with the new key", async () => {
    const [oldKey, newKey] = [randomSecret(), randomSecret()];
    const { browser, recordKey, oldCookieKey } = await signedInUnder(oldKey);
    expect(oldCookieKey).toBeDefined();
    expect(sealedBy(await SESSIONS.get(recordKey))).toBe(oldCookieKey);

    let app = await deploy({ SESSION_SECRETS: `${newKey},${oldKey}` });
    app.clock.advance(INTERVAL);
    const newCookieKey = await resealedOn(app, "/after-new-key", browser, oldCookieKey);
    expect(sealedBy(await SESSIONS.get(recordKey))).toBe(newCookieKey);

    // Both are sealed with the new key now: the old one can go.
    app = await deploy({ SESSION_SECRETS: newKey });
    app.clock.advance(INTERVAL);
    expect((await app.request("/old-key-removed", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(app.origin.at(-1)!.headers["x-forwarded-user"]).toBe(IVANOV.sub);
  });

  it("a cookie sealed with an older key is re-sealed with the new one on its next request, before any check is due and without touching KV", async () => {
    const [oldKey, newKey] = [randomSecret(), randomSecret()];
    const { browser, recordKey, oldCookieKey } = await signedInUnder(oldKey);
    const record = await SESSIONS.get(recordKey);

    const app = await deploy({ SESSION_SECRETS: `${newKey},${oldKey}`, SESSION_CHECK_INTERVAL: String(INTERVAL) });
    await resealedOn(app, "/right-after-the-new-key", browser, oldCookieKey);
    // No check was due: the record is neither read for a verdict nor rewritten; it is re-sealed at the next check.
    expect(await SESSIONS.get(recordKey)).toBe(record);

    // The re-sealed cookie is current: the next request has nothing to re-issue.
    const next = await app.request("/next", { headers: NAVIGATE }, browser);
    expect(next.status).toBe(200);
    expect(next.headers.get("set-cookie")).toBeNull();
  });

  it("removing a key sends exactly the sessions still sealed with it to login, without an error page", async () => {
    const [oldKey, newKey] = [randomSecret(), randomSecret()];
    let app = await deploy({ SESSION_SECRETS: oldKey });
    const before = await app.signIn();
    app = await deploy({ SESSION_SECRETS: `${newKey},${oldKey}` });
    const after = await app.signIn();
    app = await deploy({ SESSION_SECRETS: newKey });

    const staleCookie = before.cookies.get(SESSION_COOKIE);
    expect(staleCookie).toBeDefined();
    const stale = await app.request("/stale", { headers: NAVIGATE }, before);
    expect(stale.status).toBe(302);
    expect(stale.headers.get("location")).toMatch(AUTHORIZE);
    expect(clearsSession(stale)).toBe(true);
    const staleApi = await app.request("/api/stale", { headers: { accept: "application/json", cookie: `${SESSION_COOKIE}=${staleCookie}` } });
    expect(staleApi.status).toBe(401);
    expect(app.origin.map((request) => new URL(request.url).pathname)).not.toContain("/stale");

    expect((await app.request("/fresh", { headers: NAVIGATE }, after)).status).toBe(200);
    expect(app.origin.at(-1)!.headers["x-forwarded-user"]).toBe(IVANOV.sub);
  });
});
