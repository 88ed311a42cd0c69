/**
 * The session cookie under attack: tampered, truncated, forged, moved from another place or another
 * deployment, oversized, garbage, piled up, expired. Whatever the browser sends, only a cookie the
 * gate sealed itself, for this purpose, still alive, is a session; anything else is "signed out"
 * (a login redirect for a page, 401 for a script), the bad cookie is cleared, and the origin sees
 * nothing. (A stolen cookie replayed after logout is in test/integration/session.test.ts.)
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  expectRefused,
  NAVIGATE,
  scanForSecrets,
  signIn,
  startHostileStack,
  startLogin,
  WatchedClient,
  type HostileStack,
} from "./harness.ts";
import { clearedSession, setsSession } from "../helpers/session-cookie.ts";

scanForSecrets();


function sessionOf(client: WatchedClient, gateUrl: string): string {
  const value = client.jar.get(new URL(gateUrl).hostname, "kg_session");
  if (value === undefined) throw new Error("no session cookie in the jar");
  return value;
}

async function sessionKeys(stack: HostileStack): Promise<string[]> {
  return (await stack.gate.kv.list({ prefix: "session:" })).keys.map((key) => key.name);
}

/** Flips one base64url character in the middle of the sealed part. */
function flipMiddle(sealed: string): string {
  const i = Math.floor(sealed.length * 0.7);
  return sealed.slice(0, i) + (sealed[i] === "A" ? "B" : "A") + sealed.slice(i + 1);
}

/**
 * A visitor presenting `cookie` as its Cookie header is signed out: a page navigation is sent to
 * the provider, a script gets 401, a bad session cookie is cleared, the origin sees nothing.
 */
async function expectSignedOutWith(stack: HostileStack, cookie: string, { cleared = true } = {}): Promise<void> {
  const client = new WatchedClient();
  const page = await client.get(`${stack.gate.url}/private`, { ...NAVIGATE, cookie });
  expectRefused(stack, page, 302);
  expect(page.headers.get("location")).toMatch(new RegExp(`^${stack.provider.issuer}/connect/authorize\\?`));
  const api = await client.get(`${stack.gate.url}/api/data`, { accept: "application/json", cookie });
  expectRefused(stack, api, 401);
  expect(await api.json()).toMatchObject({ error: "unauthenticated" });
  if (cleared) {
    expect(clearedSession(api)).toBe(true);
  }
}

describe("session cookie: anything the gate did not seal, for this place, is no session", () => {
  let stack: HostileStack;
  let other: HostileStack;
  let victim: WatchedClient;
  let valid: string;
  beforeAll(async () => {
    stack = await startHostileStack();
    other = await startHostileStack();
    victim = await signIn(stack);
    valid = sessionOf(victim, stack.gate.url);
  });
  afterAll(async () => {
    await stack.close();
    await other.close();
  });
  beforeEach(() => stack.reset());

  it("control: the untouched cookie is a session", async () => {
    const page = await new WatchedClient().get(`${stack.gate.url}/private`, { ...NAVIGATE, cookie: `kg_session=${valid}` });
    expect(page.status).toBe(200);
    expect(stack.origin.requests.map((r) => r.headers["x-forwarded-user"])).toEqual(["hostile-user-1"]);
  });

  /** `unparsed`: not a cookie value at all, so there is nothing to clear either. */
  const forgeries: { name: string; cookie: () => string | Promise<string>; unparsed?: boolean }[] = [
    { name: "tampered: one character of the ciphertext changed", cookie: () => `kg_session=${flipMiddle(valid)}` },
    { name: "truncated: the last 10 characters cut off", cookie: () => `kg_session=${valid.slice(0, -10)}` },
    { name: "truncated: only version and key id left", cookie: () => `kg_session=${valid.split(".").slice(0, 2).join(".")}.` },
    { name: "extended: four characters appended", cookie: () => `kg_session=${valid}AAAA` },
    { name: "an extra dot-separated part appended", cookie: () => `kg_session=${valid}.e30` },
    { name: "the key id replaced with another", cookie: () => `kg_session=${valid.replace(/^1\.[^.]+\./, "1.AAAAAAAA.")}` },
    { name: "a version the gate does not know", cookie: () => `kg_session=${valid.replace(/^1\./, "2.")}` },
    {
      name: "sealed with an unknown key (a session cookie of another deployment)",
      cookie: async () => `kg_session=${sessionOf(await signIn(other), other.gate.url)}`,
    },
    {
      name: "a pending-login cookie presented as the session cookie (sealed for another purpose)",
      cookie: async () => {
        const { client } = await startLogin(stack);
        const pending = client.jar.list(new URL(stack.gate.url)).find((c) => c.name.startsWith("kg_login_"))!;
        return `kg_session=${pending.value}`;
      },
    },
    {
      name: "the session's own KV record presented as the cookie (sealed for another purpose)",
      cookie: async () => {
        const [key] = await sessionKeys(stack);
        return `kg_session=${(await stack.gate.kv.get(key!))!}`;
      },
    },
    { name: "an unsealed JSON session claiming to be the admin", cookie: () => `kg_session=${encodeURIComponent(JSON.stringify({ v: 1, sid: "x", user: { sub: "admin" }, iat: 0, exp: 9e9, chk: 9e9, seen: 9e9 }))}` },
    { name: "an unsigned JWT claiming to be the admin", cookie: () => "kg_session=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9." },
    { name: "oversized: 5000 characters of base64url", cookie: () => `kg_session=1.${valid.split(".")[1]}.${"A".repeat(5000)}` },
    { name: "garbage bytes (Latin-1 and percent signs)", cookie: () => "kg_session=\u00ff\u00fe\u0080%%%ZZ%00%FF", unparsed: true },
    { name: "an empty value", cookie: () => "kg_session=" },
    { name: "the name without a value", cookie: () => "kg_session", unparsed: true },
  ];

  it.each(forgeries)("$name → signed out, the origin sees nothing", async ({ cookie, unparsed }) => {
    const header = await cookie();
    stack.reset();
    await expectSignedOutWith(stack, header, { cleared: unparsed !== true });
  });

  it("many cookies: 300 unrelated cookies and no session → signed out, no 5xx", async () => {
    const junk = Array.from({ length: 300 }, (_, i) => `c${i}=${"v".repeat(20)}`).join("; ");
    await expectSignedOutWith(stack, junk, { cleared: false });
  });

  it("many cookies: the valid session among 300 others still works, and only the site's cookies reach the origin", async () => {
    const junk = Array.from({ length: 300 }, (_, i) => `c${i}=${"v".repeat(20)}`).join("; ");
    const page = await new WatchedClient().get(`${stack.gate.url}/echo`, { ...NAVIGATE, cookie: `${junk}; kg_session=${valid}` });
    expect(page.status).toBe(200);
    const [seen] = stack.origin.requests;
    expect(seen!.headers.cookie).toBe(junk);
  });

  it("swapped between users: user B's KV record copied under user A's key ends A's session at its next check", async () => {
    const short = await startHostileStack({ vars: { SESSION_CHECK_INTERVAL: "1" } });
    try {
      const before = await sessionKeys(short);
      const a = await signIn(short);
      const aKey = (await sessionKeys(short)).find((key) => !before.includes(key))!;
      short.provider.set({ claims: (c) => ({ ...c, sub: "user-b", email: "b@example.kontur.ru" }) });
      const withA = await sessionKeys(short);
      await signIn(short);
      const bKey = (await sessionKeys(short)).find((key) => !withA.includes(key))!;
      await short.gate.kv.put(aKey, (await short.gate.kv.get(bKey))!);
      short.reset();
      await sleep(1100);
      const page = await a.get(`${short.gate.url}/private`, NAVIGATE);
      expectRefused(short, page, 302);
      expect(clearedSession(page)).toBe(true);
    } finally {
      await short.close();
    }
  });

  it("two session cookies in one header (cookie tossing): the origin sees exactly one user, consistently", async () => {
    const second = await signIn(stack);
    const b = sessionOf(second, stack.gate.url);
    stack.reset();
    const page = await new WatchedClient().get(`${stack.gate.url}/whoami`, { accept: "application/json", cookie: `kg_session=${valid}; kg_session=${b}` });
    expect(page.status).toBe(200);
    const who = (await page.json()) as { user: string; assertion: { status: string; claims: { sub: string } } };
    expect(who.user).toBe("hostile-user-1");
    expect(who.assertion.status).toBe("valid");
    expect(who.assertion.claims.sub).toBe(who.user);
  });

  it("the gate's cookies under any spelling never reach the origin, even on a public path", async () => {
    const open = await startHostileStack({ vars: { PUBLIC_PATHS: "/static/*" } });
    try {
      const client = new WatchedClient();
      const page = await client.get(`${open.gate.url}/static/app.css`, {
        accept: "application/json",
        cookie: `theme=dark; kg_session=${valid}; __Host-kg_session=${valid}; kg_login_abc_def=x; __Host-kg_login_abc_def=y`,
      });
      expect(page.status).toBeLessThan(500);
      const [seen] = open.origin.requests;
      expect(seen!.headers.cookie).toBe("theme=dark");
    } finally {
      await open.close();
    }
  });
});

describe("session cookie: an expired session re-sent", () => {
  it("after SESSION_TTL the same cookie is no session: login again, cleared, the origin sees nothing", async () => {
    const stack = await startHostileStack({ vars: { SESSION_TTL: "2", SESSION_CHECK_INTERVAL: "1" } });
    try {
      const client = await signIn(stack);
      const cookie = `kg_session=${sessionOf(client, stack.gate.url)}`;
      const fresh = await new WatchedClient().get(`${stack.gate.url}/private`, { ...NAVIGATE, cookie });
      expect(fresh.status).toBe(200);
      stack.reset();
      await sleep(2100);
      await expectSignedOutWith(stack, cookie);
      expect(setsSession(await new WatchedClient().get(`${stack.gate.url}/private`, { ...NAVIGATE, cookie }))).toBe(false);
    } finally {
      await stack.close();
    }
  });
});
