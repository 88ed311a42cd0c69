/**
 * Findings of the red-team review (issue 12) about who a session says the user is and how a
 * session ends: an unverified or look-alike e-mail, a cookie moved to another host, a login that
 * leaves the previous session alive, a logout that leaves pages in the browser's cache, and a
 * misconfiguration page that prints the settings' values to every visitor.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateSecrets, startGate } from "../helpers/gate.ts";
import {
  attemptLogin,
  authorizeAt,
  NAVIGATE,
  rawExchange,
  scanForSecrets,
  signIn,
  startHostileStack,
  WatchedClient,
  type HostileStack,
} from "./harness.ts";
import { setsSession } from "../helpers/session-cookie.ts";

const scan = scanForSecrets();

/** A gate with fresh keys and these settings, its log and keys handed to the secret scan. */
async function gateWith(vars: Record<string, string>) {
  const secrets = await generateSecrets();
  const { SESSION_SECRETS, ASSERTION_SIGNING_KEY, OIDC_CLIENT_SECRET } = secrets;
  const gate = await startGate({ SESSION_SECRETS, ASSERTION_SIGNING_KEY, OIDC_CLIENT_SECRET, OIDC_CLIENT_ID: "c", OIDC_ISSUER: "https://identity.example", ...vars });
  scan.addGate(`gate ${gate.url}`, gate.logs, secrets);
  return gate;
}

function sessionValue(client: WatchedClient): string {
  return client.jar.get("127.0.0.1", "kg_session")!;
}

describe("finding 2: an unverified or look-alike e-mail counts for nothing", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    // hostile-user-1 is let in by subject; anyone else only by a verified address in the domain.
    stack = await startHostileStack({ vars: { ALLOWED_SUBJECTS: "hostile-user-1", ALLOWED_EMAIL_DOMAINS: "example.kontur.ru" } });
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  /** Logs a user with these claims in and opens /private: the gate's status there. */
  async function statusAs(claims: Record<string, unknown>): Promise<number> {
    stack.provider.set({ claims: (original: Record<string, unknown>) => ({ ...original, ...claims }) });
    const { client, callback } = await attemptLogin(stack);
    expect(callback.status).toBe(302);
    return (await client.get(`${stack.gate.url}/private`, NAVIGATE)).status;
  }

  it("control: a verified address in the domain gets in", async () => {
    expect(await statusAs({ sub: "someone-else", email: "someone@example.kontur.ru", email_verified: true })).toBe(200);
  });

  it("the same address with email_verified: false is refused", async () => {
    expect(await statusAs({ sub: "someone-else", email: "someone@example.kontur.ru", email_verified: false })).toBe(403);
  });

  it("a Kelvin sign (U+212A) for the k of kontur does not match the domain", async () => {
    expect(await statusAs({ sub: "someone-else", email: "someone@example.\u212Aontur.ru", email_verified: true })).toBe(403);
  });

  it("an unverified address is not sent as X-Forwarded-Email; the assertion says email_verified: false", async () => {
    expect(await statusAs({ email_verified: false })).toBe(200);
    const seen = stack.origin.requests.at(-1)!.headers;
    expect(seen["x-forwarded-user"]).toBe("hostile-user-1");
    expect(seen["x-forwarded-email"]).toBeUndefined();
    const claims = decodeJwt(String(seen["x-auth-assertion"]));
    expect(claims).toMatchObject({ sub: "hostile-user-1", email: "hostile@example.kontur.ru", email_verified: false });
  });
});

describe("sessions: moved cookies, repeated logins, logout", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: { SESSION_CHECK_INTERVAL: "1" } });
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  it("finding 4: a session cookie moved to another host the gate serves opens to nothing", async () => {
    const cookie = `kg_session=${sessionValue(await signIn(stack))}`;
    const here = await rawExchange(stack, { target: "/private", headers: { accept: "application/json", cookie } });
    expect(here.status).toBe(200);
    stack.reset();
    const port = new URL(stack.gate.url).port;
    const moved = await rawExchange(stack, { target: "/private", headers: { host: `localhost:${port}`, accept: "application/json", cookie } });
    expect(moved.status).toBe(401);
    expect(stack.origin.requests).toEqual([]);
  });

  it("finding 8: a new login in the same browser ends the previous session (its record is gone)", async () => {
    const client = await signIn(stack);
    const previous = sessionValue(client);
    const again = await client.get(`${stack.gate.url}/_auth/login?rd=/private`, NAVIGATE);
    const callback = await client.get(await authorizeAt(new URL(again.headers.get("location")!)), NAVIGATE);
    expect(setsSession(callback)).toBe(true);
    expect(sessionValue(client)).not.toBe(previous);
    await sleep(1100); // past SESSION_CHECK_INTERVAL: the old cookie is checked against KV
    stack.reset();
    const old = await new WatchedClient().get(`${stack.gate.url}/private`, { accept: "application/json", cookie: `kg_session=${previous}` });
    expect(old.status).toBe(401);
    expect(stack.origin.requests).toEqual([]);
    expect((await client.get(`${stack.gate.url}/private`, NAVIGATE)).status).toBe(200);
  });

  it('finding 9: the logout answer clears the browser\'s cache of personal pages (Clear-Site-Data: "cache")', async () => {
    const client = await signIn(stack);
    const out = await client.request(`${stack.gate.url}/_auth/logout`, { method: "POST", headers: { "sec-fetch-site": "same-origin" } });
    expect(out.status).toBe(303);
    expect(out.headers.get("clear-site-data")).toBe('"cache"');
  });
});

describe("finding 12: the misconfiguration page names settings, never their values", () => {
  it("SESSION_SECRETS with no key (\",\") is a configuration error naming the setting", async () => {
    const gate = await gateWith({ SESSION_SECRETS: "," });
    try {
      const page = await new WatchedClient().get(`${gate.url}/private`, NAVIGATE);
      expect(page.status).toBe(500);
      expect(await page.text()).toContain("SESSION_SECRETS");
    } finally {
      await gate.close();
    }
  });

  it("an internal ORIGIN_URL is named on the page but its value goes only to the log", async () => {
    const gate = await gateWith({ ORIGIN_URL: "ftp://wiki.corp.internal:8080/admin" });
    try {
      const page = await new WatchedClient().get(`${gate.url}/private`, NAVIGATE);
      expect(page.status).toBe(500);
      const text = await page.text();
      expect(text).toContain("ORIGIN_URL");
      expect(text).not.toContain("wiki.corp.internal");
      await expect.poll(() => gate.logs.join("\n")).toContain("wiki.corp.internal");
    } finally {
      await gate.close();
    }
  });
});
