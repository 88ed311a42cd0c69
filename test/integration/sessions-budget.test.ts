import { afterEach, describe, expect, it } from "vitest";
import { DEMO_USERS } from "../../tools/dev-provider/provider.mjs";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { clearedSession, issuedSessionCookie } from "../helpers/session-cookie.ts";

/** An account with the longest claims a real one plausibly has: a long Cyrillic name, a 200-character e-mail. */
const LONG_EMAIL = `${"ivanov.ivan.ivanovich.".repeat(8)}x@${"podrazdelenie.".repeat(3)}kontur.ru`.slice(-200);
const LONG_USER = {
  login: "long",
  password: "long",
  claims: {
    sub: "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e",
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

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function recordValues(s: Stack): Promise<string[]> {
  const keys = (await s.gate.kv.list({ prefix: "session:" })).keys;
  return Promise.all(keys.map(async (key) => (await s.gate.kv.get(key.name))!));
}

describe("size and cost of a session", () => {
  it("the session cookie stays within 1,200 bytes for a long Cyrillic name and a 200-character e-mail", async () => {
    expect(LONG_EMAIL).toHaveLength(200);
    stack = await startStack({ provider: { users: [...DEMO_USERS, LONG_USER] } });
    const { client, callback } = await stack.signIn("/", "long");
    const cookie = callback.headers.getSetCookie().find((c) => c.startsWith("kg_session="))!.split(";")[0]!;
    expect(Buffer.byteLength(cookie)).toBeLessThanOrEqual(1200);
    await client.get(`${stack.gate.url}/who`, NAVIGATE);
    const seen = stack.originRequests("/who")[0]!.headers;
    expect(seen["x-forwarded-email"]).toBe(LONG_EMAIL);
    expect(decodeURIComponent(seen["x-forwarded-name"] as string)).toBe(LONG_USER.claims.name);
  });

  it("between checks, requests neither change the KV record or the session index nor re-issue the cookie", async () => {
    stack = await startStack({ backchannel: true });
    const { client } = await stack.signIn();
    const before = await recordValues(stack);
    // The per-user index (user:…, psid:… with metadata) is written at login only.
    const listing = async () => (await stack!.gate.kv.list()).keys;
    const keysBefore = await listing();
    expect(keysBefore.map((key) => key.name.split(":")[0]).sort()).toEqual(["psid", "session", "user"]);
    for (let i = 0; i < 10; i++) {
      const response = await client.get(`${stack.gate.url}/quiet-${i}`, NAVIGATE);
      expect(response.status).toBe(200);
      expect(response.headers.getSetCookie()).toEqual([]);
    }
    // A write would re-seal the record (a fresh IV): it is byte for byte the same.
    expect(await recordValues(stack)).toEqual(before);
    expect(await listing()).toEqual(keysBefore);
  });
});

describe("SESSION_IDLE_TTL: an unused session ends, an active one goes on, without writing to KV", () => {
  it("requests keep the session alive past the idle limit; the cookie is re-issued only now and then; KV is untouched", async () => {
    stack = await startStack({ vars: { SESSION_IDLE_TTL: "4" } });
    const { client } = await stack.signIn();
    const before = await recordValues(stack);
    let reissued = 0;
    for (let i = 0; i < 12; i++) {
      await sleep(500);
      const response = await client.get(`${stack.gate.url}/active-${i}`, NAVIGATE);
      expect(response.status).toBe(200);
      if (issuedSessionCookie(response) !== undefined) reissued += 1;
    }
    // Six seconds of activity with a 4-second idle limit: alive, with about one re-issue a second.
    expect(reissued).toBeGreaterThan(0);
    expect(reissued).toBeLessThan(12);
    expect(await recordValues(stack)).toEqual(before);

    await sleep(5200);
    const idle = await client.get(`${stack.gate.url}/after-idle`, NAVIGATE);
    expect(idle.status).toBe(302);
    expect(clearedSession(idle)).toBe(true);
    expect(stack.originRequests("/after-idle")).toEqual([]);
  });
});

describe("revocation takes effect at the next check, as the README states", () => {
  it("a cookie copied before logout works until the session's next check, and is refused from then on", async () => {
    stack = await startStack({ vars: { SESSION_CHECK_INTERVAL: "2" } });
    const { client } = await stack.signIn();
    const stolen = client.jar.header(new URL(stack.gate.url))!;
    await client.request(`${stack.gate.url}/_auth/logout`, { method: "POST", headers: { origin: stack.gate.url } });
    // Within the check interval the copy is still honoured: that is the documented worst-case delay.
    expect((await new HttpClient().get(`${stack.gate.url}/within`, { ...NAVIGATE, cookie: stolen })).status).toBe(200);
    await sleep(2100);
    const refused = await new HttpClient().get(`${stack.gate.url}/after`, { ...NAVIGATE, cookie: stolen });
    expect(refused.status).toBe(302);
    expect(clearedSession(refused)).toBe(true);
    const api = await new HttpClient().get(`${stack.gate.url}/api/after`, { accept: "application/json", cookie: stolen });
    expect(api.status).toBe(401);
    expect(stack.originRequests("/after")).toEqual([]);
  });
});
