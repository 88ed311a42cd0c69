import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { base64urlDecode, parseConfig, type Settings } from "../../../src/config";
import { resolveSession } from "../../../src/session/check";
import { sealSessionCookie, SESSION_COOKIE, type SessionCookie } from "../../../src/session/cookie";
import { cachedCookieCount, COOKIE_CACHE_SIZE, openCachedSessionCookie } from "../../../src/session/cookie-cache";
import type { SessionRequest, SessionRuntime } from "../../../src/session/request";
import { importKeyring, randomId, seal, type Keyring } from "../../../src/session/seal";
import { SessionStore } from "../../../src/session/store";
import { randomSecret, validSettings } from "../fixtures";

const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const SUB = "0b7c3f1e-9d2a-4c6b-8e5f-1a2b3c4d5e6f";
const T0 = 1_900_000_000;
const HOST = "site.example";

afterEach(() => vi.restoreAllMocks());

function sessionCookie(overrides: Partial<SessionCookie> = {}): SessionCookie {
  return { v: 1, sid: randomId(), user: { sub: SUB, name: "Петрова Анна" }, iat: T0 - 100, exp: T0 + 3600, chk: T0, seen: T0, ...overrides };
}

async function keyringOf(...secrets: string[]): Promise<Keyring> {
  return importKeyring(secrets.map((secret) => base64urlDecode(secret)!));
}

/** Counts AES-GCM decryptions, i.e. cookies actually opened rather than taken from the cache. */
function countDecryptions(): { readonly count: number } {
  const spy = vi.spyOn(crypto.subtle, "decrypt");
  return {
    get count() {
      return spy.mock.calls.length;
    },
  };
}

describe("the opened-cookie cache: opening is remembered, nothing else", () => {
  it("opens a raw value once; later requests get the same frozen value without decrypting", async () => {
    const keyring = await keyringOf(randomSecret());
    const raw = await sealSessionCookie(keyring, sessionCookie(), HOST);
    const decryptions = countDecryptions();
    const first = await openCachedSessionCookie(keyring, raw, HOST);
    const second = await openCachedSessionCookie(keyring, raw, HOST);
    expect(decryptions.count).toBe(1);
    expect(second).toBe(first);
    expect(first?.cookie.user.sub).toBe(SUB);
    expect(Object.isFrozen(first) && Object.isFrozen(first!.cookie) && Object.isFrozen(first!.cookie.user)).toBe(true);
  });

  it("never stores forged, tampered, foreign or malformed cookies", async () => {
    const keyring = await keyringOf(randomSecret());
    const genuine = await sealSessionCookie(keyring, sessionCookie(), HOST);
    const tampered = genuine.slice(0, -2) + (genuine.endsWith("A") ? "BB" : "AA");
    const foreign = await sealSessionCookie(await keyringOf(randomSecret()), sessionCookie(), HOST);
    // Sealed with our key for the cookie's purpose, but not a session cookie's shape.
    const wrongShape = await seal(keyring, `${SESSION_COOKIE}@${HOST}`, { v: 1, sid: "x", user: { sub: 7 } });
    for (const raw of [tampered, foreign, wrongShape, "1.abc.def", "", "x".repeat(5000)]) {
      expect(await openCachedSessionCookie(keyring, raw, HOST)).toBeUndefined();
      expect(await openCachedSessionCookie(keyring, raw, HOST)).toBeUndefined();
    }
    expect(cachedCookieCount(keyring)).toBe(0);
  });

  it("a rotated keyring starts with an empty cache (and still opens cookies of the old key)", async () => {
    const [oldSecret, newSecret] = [randomSecret(), randomSecret()];
    const before = await keyringOf(oldSecret);
    const raw = await sealSessionCookie(before, sessionCookie(), HOST);
    expect((await openCachedSessionCookie(before, raw, HOST))?.current).toBe(true);
    expect(cachedCookieCount(before)).toBe(1);

    const rotated = await keyringOf(newSecret, oldSecret);
    expect(cachedCookieCount(rotated)).toBe(0);
    const decryptions = countDecryptions();
    expect((await openCachedSessionCookie(rotated, raw, HOST))?.current).toBe(false);
    expect(decryptions.count).toBe(1);

    // A keyring without the old key: the cookie the old cache knew does not open at all.
    const withoutOld = await keyringOf(newSecret);
    expect(await openCachedSessionCookie(withoutOld, raw, HOST)).toBeUndefined();
  });

  it("a cookie opened for one host is not taken from the cache for another (the seal names the host)", async () => {
    const keyring = await keyringOf(randomSecret());
    const raw = await sealSessionCookie(keyring, sessionCookie(), HOST);
    expect(await openCachedSessionCookie(keyring, raw, HOST)).toBeDefined();
    expect(await openCachedSessionCookie(keyring, raw, "other.example")).toBeUndefined();
    expect(cachedCookieCount(keyring)).toBe(1);
  });

  it(`holds at most ${COOKIE_CACHE_SIZE} cookies, dropping the oldest first`, async () => {
    const keyring = await keyringOf(randomSecret());
    const raws = await Promise.all(Array.from({ length: COOKIE_CACHE_SIZE + 1 }, () => sealSessionCookie(keyring, sessionCookie(), HOST)));
    for (const raw of raws) await openCachedSessionCookie(keyring, raw, HOST);
    expect(cachedCookieCount(keyring)).toBe(COOKIE_CACHE_SIZE);
    const decryptions = countDecryptions();
    await openCachedSessionCookie(keyring, raws.at(-1)!, HOST);
    expect(decryptions.count).toBe(0);
    await openCachedSessionCookie(keyring, raws[0]!, HOST);
    expect(decryptions.count).toBe(1);
  });
});

describe("resolveSession with a cached cookie: every time decision still runs per request", () => {
  async function runtime(settings: Settings): Promise<SessionRuntime> {
    const config = parseConfig(await validSettings({ SESSION_CHECK_INTERVAL: "300", ...settings }));
    const never = (): never => {
      throw new Error("not part of these tests");
    };
    return { config, clock: Date.now, keyring: await importKeyring(config.sessionSecrets), checks: new Map(), oidc: { refresh: never, userinfo: never, authorizationUrl: never, callback: never, endSessionUrl: never, revoke: never } };
  }

  /** One request at `now` (epoch seconds); what it resolved, the cookie it set, the KV reads it made. */
  async function request(rt: SessionRuntime, raw: string, now: number) {
    let kvReads = 0;
    const later: Promise<unknown>[] = [];
    const kv = {
      get: (key: string) => {
        kvReads += 1;
        return SESSIONS.get(key);
      },
      put: (key: string, value: string, options?: KVNamespacePutOptions) => SESSIONS.put(key, value, options),
      delete: (key: string) => SESSIONS.delete(key),
    } as unknown as KVNamespace;
    const req: SessionRequest = {
      runtime: rt,
      url: new URL("https://site.example/"),
      now,
      scope: { secure: true },
      store: new SessionStore(kv, rt.keyring, HOST),
      setCookies: [],
      waitUntil: (promise) => later.push(promise),
      logged: (work) => work(),
      session: undefined,
      returnTo: undefined,
    };
    const session = await resolveSession(req, raw);
    await Promise.all(later);
    return { session, setCookie: req.setCookies[0], kvReads };
  }

  it("a cached cookie past its SESSION_TTL ends the session", async () => {
    const rt = await runtime({});
    const raw = await sealSessionCookie(rt.keyring, sessionCookie({ exp: T0 + 60 }), HOST);
    expect((await request(rt, raw, T0 + 59)).session?.user.sub).toBe(SUB);
    expect(cachedCookieCount(rt.keyring)).toBe(1);
    const after = await request(rt, raw, T0 + 60);
    expect(after.session).toBeUndefined();
    expect(after.setCookie).toMatch(/^__Host-kg_session=;.*Max-Age=0/);
  });

  it("a cached cookie unused for longer than SESSION_IDLE_TTL ends that cookie's session; the record, which a live copy may use, stays", async () => {
    const rt = await runtime({ SESSION_IDLE_TTL: "400" });
    const cookie = sessionCookie();
    const at = T0;
    await new SessionStore(SESSIONS, rt.keyring, HOST).put(cookie.sid, { v: 1, sub: SUB, accessToken: "at", accessTokenExpiresAt: undefined, refreshToken: undefined, idToken: undefined, iat: at, exp: at + 3600 }, Math.floor(Date.now() / 1000));
    const raw = await sealSessionCookie(rt.keyring, cookie, HOST);
    expect((await request(rt, raw, T0 + 10)).session?.user.sub).toBe(SUB);
    const idle = await request(rt, raw, T0 + 401);
    expect(idle.session).toBeUndefined();
    expect(idle.setCookie).toMatch(/Max-Age=0/);
    expect(await SESSIONS.get(`session:${cookie.sid}`)).not.toBeNull();
  });

  it("a cached cookie is checked against KV once SESSION_CHECK_INTERVAL has passed, and a deleted record ends it", async () => {
    const rt = await runtime({});
    const raw = await sealSessionCookie(rt.keyring, sessionCookie(), HOST);
    expect(await request(rt, raw, T0 + 299)).toMatchObject({ kvReads: 0, setCookie: undefined });
    const due = await request(rt, raw, T0 + 300);
    expect(due.kvReads).toBe(1);
    expect(due.session).toBeUndefined(); // no record was ever stored: revoked
  });
});
