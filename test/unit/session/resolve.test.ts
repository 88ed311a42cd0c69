import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { base64urlDecode, parseConfig, type Settings } from "../../../src/config";
import { RefreshError, type RefreshedTokens } from "../../../src/oidc/decisions";
import { resolveSession as checkSession } from "../../../src/session/check";
import { openSessionCookie, sealSessionCookie, type CookieScope, type SessionCookie } from "../../../src/session/cookie";
import type { SessionRequest, SessionRuntime } from "../../../src/session/request";
import { importKeyring, randomId, type Keyring } from "../../../src/session/seal";
import { SessionStore, type SessionRecord } from "../../../src/session/store";
import { randomSecret, validSettings } from "../fixtures";

const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const scope = { secure: true };
const SITE = new URL("https://site.example/");
const SUB = "6f1c2a9e-4b7d-4e0a-9c1f-2d3b4a5c6e7f";
const INTERVAL = 300;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** `value` is a time taken since `since` (a second may tick between the call and the assertion). */
function expectTakenSince(value: number | undefined, since: number): void {
  expect(value).toBeGreaterThanOrEqual(since);
  expect(value).toBeLessThanOrEqual(nowSeconds());
}

/** SESSIONS as the gate sees it, counting every operation; `failing` makes an operation throw. */
function countingKv(failing: { get?: boolean; put?: boolean; hang?: boolean } = {}) {
  const counts = { get: 0, put: 0, delete: 0 };
  const kv = {
    get(key: string) {
      counts.get += 1;
      if (failing.get) return Promise.reject(new Error("KV is down"));
      if (failing.hang) return new Promise(() => undefined);
      return SESSIONS.get(key);
    },
    put(key: string, value: string, options?: KVNamespacePutOptions) {
      counts.put += 1;
      if (failing.put) return Promise.reject(new Error("KV is down"));
      return SESSIONS.put(key, value, options);
    },
    delete(key: string) {
      counts.delete += 1;
      return SESSIONS.delete(key);
    },
  } as unknown as KVNamespace;
  return { kv, counts };
}

type Refresh = (refreshToken: string, subject: string) => Promise<RefreshedTokens>;

/** A refresh standing in for the provider (this unit's subject is the gate's side of it). */
function fakeRefresh(answer: (refreshToken: string) => Promise<RefreshedTokens> | RefreshedTokens) {
  const calls: string[] = [];
  const refresh: Refresh = async (refreshToken) => {
    calls.push(refreshToken);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the provider takes a moment
    return answer(refreshToken);
  };
  return { refresh, calls };
}

function tokens(n: number): RefreshedTokens {
  return { claims: undefined, accessToken: `at-${n}`, accessTokenExpiresAt: nowSeconds() + 86400, refreshToken: `rt-${n}`, idToken: undefined };
}

async function runtime(refresh: Refresh, settings: Settings = {}, keyring?: Keyring): Promise<SessionRuntime> {
  const config = parseConfig(await validSettings({ SESSION_CHECK_INTERVAL: String(INTERVAL), ...settings }));
  const unused = (): never => {
    throw new Error("a session check never logs in or out");
  };
  return {
    config,
    clock: Date.now,
    keyring: keyring ?? (await importKeyring(config.sessionSecrets)),
    checks: new Map(),
    // These tests are about KV and refresh: a provider without a userinfo endpoint (nothing to ask).
    oidc: { refresh, userinfo: async () => undefined, authorizationUrl: unused, callback: unused, endSessionUrl: unused, revoke: unused },
  };
}

/** One request's session check; the cookie it sets (re-issued or cleared), if any. */
async function resolveSession(rt: SessionRuntime, kv: KVNamespace, scope: CookieScope, raw: string | undefined, waitUntil: SessionRequest["waitUntil"]) {
  const req: SessionRequest = {
    runtime: rt,
    url: SITE,
    now: Math.floor(rt.clock() / 1000),
    scope,
    store: new SessionStore(kv, rt.keyring, SITE.host),
    setCookies: [],
    waitUntil,
    logged: (work) => work(),
    session: undefined,
    returnTo: undefined,
  };
  const session = await checkSession(req, raw);
  return { session, setCookie: req.setCookies[0] };
}

interface Seed {
  /** Seconds since the cookie's last check. */
  checkedAgo?: number;
  /** Seconds since the last request (`seen`). */
  seenAgo?: number;
  /** Seconds until the access token expires. */
  accessTokenIn?: number;
  refreshedAgo?: number;
  /** Seals the record with this keyring instead of the runtime's. */
  recordKeyring?: Keyring;
}

/** A session as a login leaves it: the KV record and the raw cookie value. */
async function seed(rt: SessionRuntime, options: Seed = {}) {
  const at = nowSeconds();
  const sid = randomId();
  const record: SessionRecord = {
    v: 1,
    sub: SUB,
    accessToken: "at-0",
    accessTokenExpiresAt: at + (options.accessTokenIn ?? 86400),
    refreshToken: "rt-0",
    idToken: undefined,
    iat: at - 1000,
    exp: at + 28800,
    ...(options.refreshedAgo === undefined ? {} : { refreshedAt: at - options.refreshedAgo }),
  };
  await new SessionStore(SESSIONS, options.recordKeyring ?? rt.keyring, SITE.host).put(sid, record, at);
  const cookie: SessionCookie = {
    v: 1,
    sid,
    user: { sub: SUB, name: "Иванов Иван Иванович" },
    iat: at - 1000,
    exp: at + 28800,
    chk: at - (options.checkedAgo ?? 0),
    seen: at - (options.seenAgo ?? 0),
  };
  return { sid, raw: await sealSessionCookie(rt.keyring, cookie, SITE.host) };
}

async function storedRecord(rt: SessionRuntime, sid: string) {
  return new SessionStore(SESSIONS, rt.keyring, SITE.host).get(sid);
}

const noWait = () => undefined;

describe("resolveSession: the hot path reads nothing between checks", () => {
  it("50 requests between checks: no KV read, no KV write, no provider call, no Set-Cookie", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh);
    const { raw } = await seed(rt, { checkedAgo: 10 });
    const { kv, counts } = countingKv();
    for (let i = 0; i < 50; i++) {
      const resolved = await resolveSession(rt, kv, scope, raw, noWait);
      expect(resolved.session?.user.sub).toBe(SUB);
      expect(resolved.setCookie).toBeUndefined();
    }
    expect(counts).toEqual({ get: 0, put: 0, delete: 0 });
    expect(provider.calls).toEqual([]);
  });
});

describe("resolveSession: a check costs one KV read and at most one KV write", () => {
  it("access token fresh: one read, no write, no refresh, the cookie re-issued as checked now", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh);
    const { raw } = await seed(rt, { checkedAgo: INTERVAL });
    const { kv, counts } = countingKv();
    const since = nowSeconds();
    const resolved = await resolveSession(rt, kv, scope, raw, noWait);
    expect(counts).toEqual({ get: 1, put: 0, delete: 0 });
    expect(provider.calls).toEqual([]);
    expectTakenSince(resolved.session?.chk, since);
    expect(resolved.setCookie).toMatch(/^__Host-kg_session=/);
  });

  it("access token due: three reads (before the refresh, before the write, the logout tombstone after it), one write, one refresh — also for 20 parallel requests of the session", async () => {
    let n = 0;
    const provider = fakeRefresh(() => tokens(++n));
    const rt = await runtime(provider.refresh);
    const { sid, raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    const { kv, counts } = countingKv();
    const since = nowSeconds();
    const resolved = await Promise.all(Array.from({ length: 20 }, () => resolveSession(rt, kv, scope, raw, noWait)));
    expect(resolved.every((r) => r.session?.user.sub === SUB)).toBe(true);
    expect(counts).toEqual({ get: 3, put: 1, delete: 0 });
    expect(provider.calls).toEqual(["rt-0"]);
    expect(rt.checks.size).toBe(0);
    const stored = (await storedRecord(rt, sid))!.record;
    expect([stored.refreshToken, stored.accessToken]).toEqual(["rt-1", "at-1"]);
    expectTakenSince(stored.refreshedAt, since);
  });

  it("a request whose cookie was checked before the record's last refresh takes the stored tokens: one read, no write, no refresh", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh, { PASS_ACCESS_TOKEN: "true" });
    const { raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30, refreshedAgo: 5 });
    const { kv, counts } = countingKv();
    const resolved = await resolveSession(rt, kv, scope, raw, noWait);
    expect(counts).toEqual({ get: 1, put: 0, delete: 0 });
    expect(provider.calls).toEqual([]);
    expect(resolved.session?.at).toBe("at-0");
  });

  it("a record sealed with an older key is re-sealed with the first key at the check: one read, one write, the tombstone read", async () => {
    const [current, old] = [randomSecret(), randomSecret()];
    const oldKeyring = await importKeyring([base64urlDecode(old)!]);
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh, { SESSION_SECRETS: `${current},${old}` });
    const { sid, raw } = await seed(rt, { checkedAgo: INTERVAL, recordKeyring: oldKeyring });
    expect((await storedRecord(rt, sid))!.current).toBe(false);
    const { kv, counts } = countingKv();
    expect((await resolveSession(rt, kv, scope, raw, noWait)).session).toBeDefined();
    expect(counts).toEqual({ get: 2, put: 1, delete: 0 });
    expect((await storedRecord(rt, sid))!.current).toBe(true);
  });
});

describe("resolveSession: failures of the provider or KV keep the session", () => {
  it.each([
    ["the provider is unavailable", new RefreshError("unavailable", "TimeoutError")],
    ["something unexpected is thrown", new Error("Network connection lost.")],
  ])("%s: served from the cookie, no write, the next check in min(30 s, interval)", async (_name, failure) => {
    const provider = fakeRefresh(() => Promise.reject(failure));
    const rt = await runtime(provider.refresh);
    const { sid, raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    const { kv, counts } = countingKv();
    const since = nowSeconds();
    const resolved = await resolveSession(rt, kv, scope, raw, noWait);
    expect(resolved.session?.user.sub).toBe(SUB);
    expectTakenSince(resolved.session!.chk + INTERVAL - 30, since);
    expect(counts).toEqual({ get: 1, put: 0, delete: 0 });
    expect((await storedRecord(rt, sid))!.record.refreshToken).toBe("rt-0");
  });

  it("KV cannot be read: served from the cookie, retried soon", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh);
    const { raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    const { kv } = countingKv({ get: true });
    const resolved = await resolveSession(rt, kv, scope, raw, noWait);
    expect(resolved.session?.user.sub).toBe(SUB);
    expect(provider.calls).toEqual([]);
  });

  it("KV hangs: the check gives up after OIDC_TIMEOUT and the requests are served from the cookie", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh, { OIDC_TIMEOUT: "1" });
    const { raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    const { kv } = countingKv({ hang: true });
    const resolved = await Promise.all(Array.from({ length: 5 }, () => resolveSession(rt, kv, scope, raw, noWait)));
    expect(resolved.every((r) => r.session?.user.sub === SUB)).toBe(true);
    expect(provider.calls).toEqual([]);
    expect(rt.checks.size).toBe(0);
  });

  it("KV cannot be written after a refresh: the request is still served", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh);
    const { raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    const { kv, counts } = countingKv({ put: true });
    expect((await resolveSession(rt, kv, scope, raw, noWait)).session?.user.sub).toBe(SUB);
    expect(counts.put).toBe(1);
  });
});

describe("resolveSession: what ends a session at a check", () => {
  it("invalid_grant while another isolate stored the winner's tokens: adopted, no write, no logout", async () => {
    let rt: SessionRuntime | undefined;
    let sid = "";
    const provider = fakeRefresh(async () => {
      // The other isolate used the same one-time token a moment earlier and stored its result.
      const store = new SessionStore(SESSIONS, rt!.keyring, SITE.host);
      const { record } = (await store.get(sid))!;
      await store.put(sid, { ...record, accessToken: "at-winner", refreshToken: "rt-winner", refreshedAt: nowSeconds() }, nowSeconds());
      throw new RefreshError("grant_rejected", "invalid_grant");
    });
    rt = await runtime(provider.refresh, { PASS_ACCESS_TOKEN: "true" });
    const seeded = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    sid = seeded.sid;
    const { kv, counts } = countingKv();
    const resolved = await resolveSession(rt, kv, scope, seeded.raw, noWait);
    expect(resolved.session?.at).toBe("at-winner");
    expect(counts.put).toBe(0);
    expect(counts.delete).toBe(0);
  });

  it("invalid_grant and nobody else refreshed: the session ends and its record is deleted", async () => {
    const provider = fakeRefresh(() => Promise.reject(new RefreshError("grant_rejected", "invalid_grant")));
    const rt = await runtime(provider.refresh);
    const { sid, raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    const { kv, counts } = countingKv();
    const resolved = await resolveSession(rt, kv, scope, raw, noWait);
    expect(resolved.session).toBeUndefined();
    expect(resolved.setCookie).toMatch(/Max-Age=0/);
    expect(counts.put).toBe(0);
    expect(counts.delete).toBe(1);
    expect(await storedRecord(rt, sid)).toBeUndefined();
  });

  it("a changed identity ends the session at once, without waiting for a concurrent winner", async () => {
    const provider = fakeRefresh(() => Promise.reject(new RefreshError("identity_changed", "another subject")));
    const rt = await runtime(provider.refresh);
    const { raw } = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    const { kv, counts } = countingKv();
    expect((await resolveSession(rt, kv, scope, raw, noWait)).session).toBeUndefined();
    expect(counts).toEqual({ get: 1, put: 0, delete: 1 });
  });

  it("a deleted record (logout, revocation) ends the session at its check", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh);
    const { sid, raw } = await seed(rt, { checkedAgo: INTERVAL });
    await SESSIONS.delete(`session:${sid}`);
    const resolved = await resolveSession(rt, countingKv().kv, scope, raw, noWait);
    expect(resolved.session).toBeUndefined();
    expect(resolved.setCookie).toMatch(/Max-Age=0/);
  });

  it("a logout while the provider is answering a refresh is not undone by writing the refreshed record back", async () => {
    let sid = "";
    const provider = fakeRefresh(async () => {
      await SESSIONS.delete(`session:${sid}`); // the user's POST /_auth/logout lands meanwhile
      return tokens(1);
    });
    const rt = await runtime(provider.refresh);
    const seeded = await seed(rt, { checkedAgo: INTERVAL, accessTokenIn: 30 });
    sid = seeded.sid;
    const resolved = await resolveSession(rt, countingKv().kv, scope, seeded.raw, noWait);
    expect(provider.calls).toEqual(["rt-0"]);
    expect(resolved.session).toBeUndefined();
    expect(resolved.setCookie).toMatch(/Max-Age=0/);
    expect(await SESSIONS.get(`session:${sid}`)).toBeNull();
  });
});

describe("resolveSession: SESSION_IDLE_TTL without a KV write per request", () => {
  const IDLE = 400;

  it("re-issues the cookie only once a quarter of the idle time has passed, and never touches KV", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh, { SESSION_IDLE_TTL: String(IDLE) });
    const { kv, counts } = countingKv();
    const recent = await seed(rt, { checkedAgo: 10, seenAgo: IDLE / 4 - 10 });
    expect((await resolveSession(rt, kv, scope, recent.raw, noWait)).setCookie).toBeUndefined();
    const older = await seed(rt, { checkedAgo: 10, seenAgo: IDLE / 4 + 1 });
    const since = nowSeconds();
    const resolved = await resolveSession(rt, kv, scope, older.raw, noWait);
    const reissued = resolved.setCookie!.split(";")[0]!.slice("__Host-kg_session=".length);
    expectTakenSince((await openSessionCookie(rt.keyring, reissued, SITE.host))!.cookie.seen, since);
    expect(counts).toEqual({ get: 0, put: 0, delete: 0 });
  });

  it("a cookie unused for longer than SESSION_IDLE_TTL is refused and cleared; the record (which a live copy may use) is not touched", async () => {
    const provider = fakeRefresh(() => tokens(1));
    const rt = await runtime(provider.refresh, { SESSION_IDLE_TTL: String(IDLE) });
    const { sid, raw } = await seed(rt, { checkedAgo: 10, seenAgo: IDLE + 2 });
    const { kv, counts } = countingKv();
    const resolved = await resolveSession(rt, kv, scope, raw, noWait);
    expect(resolved.session).toBeUndefined();
    expect(resolved.setCookie).toMatch(/^__Host-kg_session=;/);
    expect(counts).toEqual({ get: 0, put: 0, delete: 0 });
    expect(await storedRecord(rt, sid)).toBeDefined();
  });
});
