/**
 * Kontur as it really is (issue 11), against the development provider in its IdentityServer shape:
 * the id_token of the code flow carries no profile, userinfo does. The gate asks userinfo at login
 * and at every check: the claims reach the origin and the assertion, allow-lists see them, and at a
 * check the real provider's userinfo refuses a disabled account and carries a rename.
 *
 * What each userinfo answer at a check does to the session (never asked between checks, outages,
 * parallel requests, SESSION_REVALIDATE=off, the friendly id_token shape) is decided with a moved
 * clock in test/unit/edge/app-kontur.test.ts.
 */
import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEMO_USERS } from "../../tools/dev-provider/provider.mjs";
import type { Fault } from "../helpers/faulty-proxy.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { clearedSession } from "../helpers/session-cookie.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";
import { NAVIGATE } from "../helpers/stack.ts";
import { logged } from "../helpers/gate-log.ts";

const [DEMO, PETROV] = DEMO_USERS.map((user: { claims: Record<string, unknown> }) => user.claims) as [Record<string, string>, Record<string, string>];
const CLAIM_HEADERS = "X-Forwarded-Phone=phone_number, X-Forwarded-Middle-Name=middle_name";
const JSON_ACCEPT = { accept: "application/json" };

function seenAt(stack: SessionStack, path: string) {
  const [seen] = stack.originRequests(path);
  return seen?.headers ?? {};
}

// One stack for the file. Checks every second, and no offline_access: after a login nothing but
// userinfo ever asks the provider again.
let stack: SessionStack;
beforeAll(async () => {
  stack = await startSessionStack({
    vars: { CLAIM_HEADERS, ALLOWED_EMAIL_DOMAINS: "example.kontur.ru", SESSION_CHECK_INTERVAL: "1", OIDC_SCOPES: "openid profile email phone" },
  });
});
afterEach(() => stack.proxy.clear());
afterAll(() => stack.close());

describe("login: the profile comes from userinfo", () => {
  it("the id_token carries no profile, yet e-mail, Cyrillic name and mapped claims reach the origin and the assertion", async () => {
    stack.provider.resetStats();
    const { client, callback } = await stack.signIn("/profile");
    expect(callback.status).toBe(302);
    expect(stack.provider.stats.userinfo).toBe(1);
    const page = await client.get(`${stack.gate.url}/profile`, NAVIGATE);
    expect(page.status).toBe(200);
    const headers = seenAt(stack, "/profile");
    expect(headers["x-forwarded-user"]).toBe(DEMO.sub);
    expect(headers["x-forwarded-email"]).toBe(DEMO.email);
    expect(decodeURIComponent(headers["x-forwarded-name"] as string)).toBe(DEMO.name);
    // Printable ASCII goes unchanged, like X-Forwarded-Name.
    expect(headers["x-forwarded-phone"]).toBe(DEMO.phone_number);
    expect(decodeURIComponent(headers["x-forwarded-middle-name"] as string)).toBe(DEMO.middle_name);
    const assertion = decodeJwt(headers["x-auth-assertion"] as string);
    expect(assertion).toMatchObject({ sub: DEMO.sub, email: DEMO.email, name: DEMO.name, phone_number: DEMO.phone_number, middle_name: DEMO.middle_name });
  });

  it("the id_token the provider issues in this shape really lacks the profile (what the gate would see without userinfo)", async () => {
    const captured: Record<string, unknown>[] = [];
    stack.proxy.set("token", {
      kind: "rewrite",
      rewrite: async (body) => {
        captured.push(decodeJwt(body.id_token as string));
        return body;
      },
    });
    await stack.signIn("/shape");
    expect(captured).toHaveLength(1);
    expect(captured[0]).toMatchObject({ sub: DEMO.sub });
    for (const claim of ["email", "name", "phone_number", "middle_name"]) expect(captured[0]).not.toHaveProperty(claim);
  });

  it("a client sending the mapped headers itself gets them replaced or removed", async () => {
    stack.provider.updateUser("demo", { phone_number: undefined });
    try {
      const { client } = await stack.signIn("/x");
      await client.get(`${stack.gate.url}/spoof`, { ...NAVIGATE, "x-forwarded-phone": "+70000000000", "x-forwarded-email": "boss@example.kontur.ru", X_Forwarded_Middle_Name: "Evil" });
    } finally {
      stack.provider.updateUser("demo", { phone_number: DEMO.phone_number });
    }
    const headers = seenAt(stack, "/spoof");
    expect(headers["x-forwarded-phone"]).toBeUndefined();
    expect(headers["x-forwarded-email"]).toBe(DEMO.email);
    expect(decodeURIComponent(headers["x-forwarded-middle-name"] as string)).toBe(DEMO.middle_name);
    expect(Object.keys(headers).filter((name) => name.includes("middle"))).toEqual(["x-forwarded-middle-name"]);
  });

  it("an outsider is refused on userinfo's e-mail (the id_token has none)", async () => {
    stack.provider.updateUser("petrov", { email: "petrov@outside.example" });
    try {
      const { client, callback } = await stack.signIn("/inside", "petrov");
      expect(callback.status).toBe(302);
      const page = await client.get(`${stack.gate.url}/inside`, NAVIGATE);
      expect(page.status).toBe(403);
      expect(stack.originRequests("/inside")).toEqual([]);
    } finally {
      stack.provider.updateUser("petrov", { email: PETROV.email });
    }
  });

  it("userinfo naming another subject refuses the login", async () => {
    stack.proxy.set("userinfo", { kind: "rewrite", rewrite: async (body) => ({ ...body, sub: PETROV.sub }) });
    const { client, callback } = await stack.signIn("/mixup");
    expect(callback.status).toBe(401);
    expect(clearedSession(callback) || !callback.headers.getSetCookie().some((c) => c.startsWith("kg_session="))).toBe(true);
    expect((await client.get(`${stack.gate.url}/mixup`, NAVIGATE)).status).toBe(302);
    expect(stack.originRequests("/mixup")).toEqual([]);
    expect(await logged(stack.current.logs, (line) => line.event === "login_failed" && String(line.reason).includes("another subject"))).toBeDefined();
  });

  const outages: Array<[string, Fault]> = [
    ["down", { kind: "down" }],
    ["500", { kind: "json", status: 500, body: { error: "server_error" } }],
    ["401 (never admits)", { kind: "json", status: 401, body: { error: "invalid_token" } }],
  ];
  it.each(outages)("userinfo %s at login: the provider-unavailable page, no session", async (_name, fault) => {
    stack.proxy.set("userinfo", fault);
    const { callback } = await stack.signIn("/outage");
    expect(callback.status).toBe(503);
    expect(await callback.text()).toContain("Сервис входа недоступен");
    expect(callback.headers.getSetCookie().some((c) => c.startsWith("kg_session=") && !/Max-Age=0/.test(c))).toBe(false);
    expect(stack.originRequests("/outage")).toEqual([]);
  });
});

describe("revalidation at a check against the real provider (SESSION_REVALIDATE=userinfo, the default)", () => {
  it("userinfo refuses a disabled account: its sessions end (a navigation goes to login, a script gets 401); a rename reaches the origin", async () => {
    const before = await stack.sessionKeys();
    const browser = (await stack.signIn("/before", "petrov")).client;
    const script = (await stack.signIn("/before", "petrov")).client;
    const petrovKeys = (await stack.sessionKeys()).filter((key) => !before.includes(key));
    expect(petrovKeys).toHaveLength(2);
    const renamed = (await stack.signIn("/", "demo")).client;
    stack.provider.disableUser("petrov");
    stack.provider.updateUser("demo", { name: "Иванова-Петрова Ивана Ивановна", email: "ivanova@example.kontur.ru" });
    try {
      await sleep(1100);
      const navigation = await browser.get(`${stack.gate.url}/after-disable`, NAVIGATE);
      expect(navigation.status).toBe(302);
      expect(navigation.headers.get("location")).toContain("/connect/authorize");
      expect(clearedSession(navigation)).toBe(true);
      const api = await script.get(`${stack.gate.url}/api-after-disable`, JSON_ACCEPT);
      expect(api.status).toBe(401);
      expect(await api.json()).toMatchObject({ error: "unauthenticated", login_url: expect.any(String) });
      expect(stack.originRequests("/after-disable")).toEqual([]);
      expect(stack.originRequests("/api-after-disable")).toEqual([]);
      expect(await logged(stack.current.logs, (line) => line.event === "session_revoked" && line.reason === "revoked_at_provider")).toBeDefined();
      const left = await stack.sessionKeys();
      expect(petrovKeys.filter((key) => left.includes(key))).toEqual([]);

      const page = await renamed.get(`${stack.gate.url}/renamed`, NAVIGATE);
      expect(page.status).toBe(200);
      const headers = seenAt(stack, "/renamed");
      expect(decodeURIComponent(headers["x-forwarded-name"] as string)).toBe("Иванова-Петрова Ивана Ивановна");
      expect(headers["x-forwarded-email"]).toBe("ivanova@example.kontur.ru");
      expect(decodeJwt(headers["x-auth-assertion"] as string)).toMatchObject({ name: "Иванова-Петрова Ивана Ивановна", email: "ivanova@example.kontur.ru" });
      const me = (await (await renamed.get(`${stack.gate.url}/_auth/me`, JSON_ACCEPT)).json()) as Record<string, string>;
      expect(me.name).toBe("Иванова-Петрова Ивана Ивановна");
    } finally {
      stack.provider.enableUser("petrov");
      stack.provider.updateUser("demo", { name: DEMO.name, email: DEMO.email });
    }
  });
});
