import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { IVANOV, NAVIGATE, startApp, type AppHarness } from "./app";
import { randomSecret } from "./fixtures";

/**
 * SESSION_SECRETS rotation through the whole app, redeployed with new settings on the same KV and
 * provider, with a clock the test moves: nobody is logged out by a new key, and removing a key ends
 * exactly the sessions still sealed with it. (The assertion key's rotation, seen by an origin over
 * HTTP, is test/integration/sessions-rotation.test.ts.)
 */
const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const SESSION_COOKIE = "__Host-kg_session";
const INTERVAL = 300;

let gate: AppHarness | undefined;
afterEach(() => {
  gate?.restore();
  gate = undefined;
});

/** The gate redeployed (or first deployed) with `settings`. */
async function deploy(settings: Record<string, string>): Promise<AppHarness> {
  gate = await startApp(settings, gate);
  return gate;
}

/** The id of the key that sealed a value (`1.<key id>.<data>`). */
function sealedBy(sealed: string | null | undefined): string | undefined {
  return sealed?.split(".")[1];
}

function issuedCookie(response: Response): string | undefined {
  const line = response.headers.getAll("set-cookie").find((c: string) => c.startsWith(`${SESSION_COOKIE}=`) && !/max-age=0/i.test(c));
  return line?.split(";")[0]!.slice(SESSION_COOKIE.length + 1);
}

const cleared = (response: Response) => response.headers.getAll("set-cookie").some((c: string) => c.startsWith(`${SESSION_COOKIE}=`) && /max-age=0/i.test(c));

describe("SESSION_SECRETS rotation: nobody is logged out by a new key", () => {
  it("a new first key keeps old cookies and records readable, and re-seals them with the new key", async () => {
    const [oldKey, newKey] = [randomSecret(), randomSecret()];
    let app = await deploy({ SESSION_SECRETS: oldKey, SESSION_CHECK_INTERVAL: String(INTERVAL) });
    const before = new Set((await SESSIONS.list({ prefix: "session:" })).keys.map((key) => key.name));
    const browser = await app.signIn();
    const [recordKey] = (await SESSIONS.list({ prefix: "session:" })).keys.map((key) => key.name).filter((name) => !before.has(name));
    const oldCookieKey = sealedBy(browser.cookies.get(SESSION_COOKIE));
    expect(oldCookieKey).toBeDefined();
    expect(sealedBy(await SESSIONS.get(recordKey!))).toBe(oldCookieKey);

    app = await deploy({ SESSION_SECRETS: `${newKey},${oldKey}` });
    app.clock.advance(INTERVAL);
    const response = await app.request("/after-new-key", { headers: NAVIGATE }, browser);
    expect(response.status).toBe(200);
    expect(app.origin.at(-1)!.headers["x-forwarded-user"]).toBe(IVANOV.sub);
    const newCookieKey = sealedBy(issuedCookie(response));
    expect(newCookieKey).toBeDefined();
    expect(newCookieKey).not.toBe(oldCookieKey);
    expect(sealedBy(await SESSIONS.get(recordKey!))).toBe(newCookieKey);

    // Both are sealed with the new key now: the old one can go.
    app = await deploy({ SESSION_SECRETS: newKey });
    app.clock.advance(INTERVAL);
    expect((await app.request("/old-key-removed", { headers: NAVIGATE }, browser)).status).toBe(200);
    expect(app.origin.at(-1)!.headers["x-forwarded-user"]).toBe(IVANOV.sub);
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
    expect(stale.headers.get("location")).toMatch(/^https:\/\/identity\.test\/connect\/authorize\?/);
    expect(cleared(stale)).toBe(true);
    const staleApi = await app.request("/api/stale", { headers: { accept: "application/json", cookie: `${SESSION_COOKIE}=${staleCookie}` } });
    expect(staleApi.status).toBe(401);
    expect(app.origin.map((request) => new URL(request.url).pathname)).not.toContain("/stale");

    expect((await app.request("/fresh", { headers: NAVIGATE }, after)).status).toBe(200);
    expect(app.origin.at(-1)!.headers["x-forwarded-user"]).toBe(IVANOV.sub);
  });
});
