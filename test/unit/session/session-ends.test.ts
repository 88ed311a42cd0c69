/**
 * Red-team findings 7 and 11 (issue 12): how a session ends when requests race. A logout that
 * lands while a check is refreshing must stay a logout, and an idle-expired copy of a cookie must
 * not end the session a live copy of the same cookie still uses.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseConfig, type Settings } from "../../../src/config";
import type { RefreshedTokens } from "../../../src/oidc/decisions";
import { resolveSession } from "../../../src/session/check";
import { sealSessionCookie, type SessionCookie } from "../../../src/session/cookie";
import { logout } from "../../../src/session/logout";
import type { SessionRequest, SessionRuntime } from "../../../src/session/request";
import { importKeyring, randomId } from "../../../src/session/seal";
import { SessionStore, type SessionRecord } from "../../../src/session/store";
import { validSettings } from "../fixtures";

const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const SITE = new URL("https://site.example/");
const SUB = "user-1";
const nowSeconds = () => Math.floor(Date.now() / 1000);

async function runtime(settings: Settings, refresh: (token: string) => Promise<RefreshedTokens>): Promise<SessionRuntime> {
  const config = parseConfig(await validSettings(settings));
  const unused = (): never => {
    throw new Error("not part of these tests");
  };
  return {
    config,
    clock: Date.now,
    keyring: await importKeyring(config.sessionSecrets),
    checks: new Map(),
    // A provider without userinfo and revocation endpoints: these tests are about KV.
    oidc: { refresh, userinfo: async () => undefined, revoke: async () => false, authorizationUrl: unused, callback: unused, endSessionUrl: unused },
  };
}

function request(rt: SessionRuntime, kv: KVNamespace): SessionRequest {
  return {
    runtime: rt,
    url: SITE,
    now: nowSeconds(),
    scope: { secure: true },
    store: new SessionStore(kv, rt.keyring, SITE.host),
    setCookies: [],
    waitUntil: (promise) => void promise,
    logged: (work) => work(),
    session: undefined,
    returnTo: undefined,
  };
}

/** A stored session and a sealed cookie for it; `cookie` overrides the cookie's times. */
async function seed(rt: SessionRuntime, record: Partial<SessionRecord>, ...cookies: Partial<SessionCookie>[]) {
  const at = nowSeconds();
  const sid = randomId();
  const stored: SessionRecord = {
    v: 1,
    sub: SUB,
    accessToken: "at-0",
    accessTokenExpiresAt: at + 86400,
    refreshToken: "rt-0",
    idToken: undefined,
    iat: at - 100,
    exp: at + 28800,
    ...record,
  };
  await new SessionStore(SESSIONS, rt.keyring, SITE.host).put(sid, stored, at);
  const base: SessionCookie = { v: 1, sid, user: { sub: SUB }, iat: at - 100, exp: at + 28800, chk: at, seen: at };
  const raws = await Promise.all(cookies.map((times) => sealSessionCookie(rt.keyring, { ...base, ...times }, SITE.host)));
  return { sid, raws };
}

describe("finding 7: a logout cannot be undone by a racing refresh", () => {
  it("a logout that lands between the refresh and its write: the session stays ended", async () => {
    const rt = await runtime({ SESSION_CHECK_INTERVAL: "60" }, async (token) => ({
      claims: undefined,
      accessToken: `new-${token}`,
      accessTokenExpiresAt: nowSeconds() + 3600,
      refreshToken: "rt-1",
      idToken: undefined,
    }));
    const at = nowSeconds();
    const { sid, raws } = await seed(rt, { accessTokenExpiresAt: at + 10 }, { chk: at - 120 });
    const raw = raws[0]!;
    // The user presses "log out" at the worst moment: after the refresh read the record, right
    // before the refreshed record is written back.
    const racing = {
      get: (key: string) => SESSIONS.get(key),
      delete: (key: string) => SESSIONS.delete(key),
      async put(key: string, value: string, options?: KVNamespacePutOptions) {
        if (key === `session:${sid}`) await logout(request(rt, SESSIONS), raw, undefined);
        return SESSIONS.put(key, value, options);
      },
    } as unknown as KVNamespace;
    const refreshing = await resolveSession(request(rt, racing), raw);
    expect(refreshing).toBeUndefined();
    expect(await new SessionStore(SESSIONS, rt.keyring, SITE.host).get(sid)).toBeUndefined();
    // The stolen copy of the cookie, at its next check, finds nothing either.
    expect(await resolveSession(request(rt, SESSIONS), raw)).toBeUndefined();
  });
});

describe("finding 11: an idle-expired copy of a cookie ends nothing but itself", () => {
  it("presenting an old copy clears that copy; the live copy's session goes on", async () => {
    const rt = await runtime({ SESSION_IDLE_TTL: "600", SESSION_CHECK_INTERVAL: "60" }, () => Promise.reject(new Error("no refresh is due")));
    const at = nowSeconds();
    const { sid, raws } = await seed(rt, {}, { seen: at - 900, chk: at - 900 }, { seen: at - 30, chk: at - 120 });
    const [old, live] = raws as [string, string];
    const waits: Promise<unknown>[] = [];
    const oldRequest = { ...request(rt, SESSIONS), waitUntil: (promise: Promise<unknown>) => void waits.push(promise) };
    expect(await resolveSession(oldRequest, old)).toBeUndefined();
    expect(oldRequest.setCookies[0]).toMatch(/^__Host-kg_session=;/);
    await Promise.all(waits);
    expect(await new SessionStore(SESSIONS, rt.keyring, SITE.host).get(sid)).toBeDefined();
    // The live copy is due for its check against KV: the record is still there.
    expect((await resolveSession(request(rt, SESSIONS), live))?.sid).toBe(sid);
  });
});
