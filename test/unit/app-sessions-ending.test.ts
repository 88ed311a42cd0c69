import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { Browser, IVANOV, NAVIGATE, SITE, startApp, type Account, type AppHarness } from "./app";

/**
 * "Sign out everywhere" through the whole app with a clock the test moves: this browser's session
 * ends at once, the user's other browsers at their next check, another user's not at all. The real
 * stack's side (the delay measured on a real clock, back-channel logout from the real provider) is
 * test/integration/sessions-ending.test.ts.
 */
const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const INTERVAL = 300;
const PETROV: Account = {
  sub: "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d",
  claims: { email: "petrov@example.kontur.ru", email_verified: true, name: "Петров Пётр Петрович" },
};
const EVERYWHERE = { method: "POST", headers: { origin: SITE, "sec-fetch-site": "same-origin", "content-type": "application/x-www-form-urlencoded" }, body: "everywhere=1" };

let gate: AppHarness | undefined;
afterEach(() => {
  gate?.restore();
  gate = undefined;
});

/** Session-related KV keys (records and index entries), sorted. */
async function sessionKeys(): Promise<string[]> {
  const names: string[] = [];
  for (const prefix of ["session:", "user:", "psid:"]) names.push(...(await SESSIONS.list({ prefix })).keys.map((key) => key.name));
  return names.sort();
}

const cleared = (response: Response) => response.headers.getAll("set-cookie").some((c: string) => c.startsWith("__Host-kg_session=") && /max-age=0/i.test(c));
const status = async (app: AppHarness, browser: Browser, path: string) => (await app.request(path, { headers: NAVIGATE }, browser)).status;

describe("sign out everywhere", () => {
  it("ends both browsers of one user, at once here and at the next check there, and not another user's", async () => {
    const app = (gate = await startApp({ SESSION_CHECK_INTERVAL: String(INTERVAL) }));
    const before = await sessionKeys();
    const a = await app.signIn(IVANOV);
    const b = await app.signIn(IVANOV);
    const c = await app.signIn(PETROV);
    for (const browser of [a, b, c]) expect(await status(app, browser, "/before")).toBe(200);

    const out = await app.request("/_auth/logout", EVERYWHERE, a);
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe(`${SITE}/_auth/signed-out`);
    expect(cleared(out)).toBe(true);
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
    const app = (gate = await startApp({ SESSION_CHECK_INTERVAL: String(INTERVAL) }));
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
