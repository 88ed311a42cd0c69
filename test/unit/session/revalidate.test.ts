/**
 * The session check's side of SESSION_REVALIDATE and expiring access tokens, with the provider's
 * userinfo standing in as a function: what each answer does to the session, its cookie and its
 * KV record. The real provider's side is test/integration/kontur-userinfo.test.ts.
 */
import { env } from "cloudflare:workers";
import * as oauth from "oauth4webapi";
import { describe, expect, it } from "vitest";
import { parseConfig, type Settings } from "../../../src/config";
import { resolveSession } from "../../../src/session/check";
import { sealSessionCookie, type SessionCookie } from "../../../src/session/cookie";
import type { SessionRequest, SessionRuntime } from "../../../src/session/request";
import { importKeyring, randomId } from "../../../src/session/seal";
import { SessionStore, type SessionRecord } from "../../../src/session/store";
import { validSettings } from "../fixtures";

const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const SUB = "6f1c2a9e-4b7d-4e0a-9c1f-2d3b4a5c6e7f";
const INTERVAL = 300;
const nowSeconds = () => Math.floor(Date.now() / 1000);

type Userinfo = SessionRuntime["oidc"]["userinfo"];

/** What processUserInfoResponse throws for this answer: the errors the real client passes on. */
async function thrownFor(response: Response): Promise<unknown> {
  try {
    await oauth.processUserInfoResponse({ issuer: "https://identity.testkontur.ru" }, { client_id: "c" }, SUB, response);
  } catch (error) {
    return error;
  }
  throw new Error("expected processUserInfoResponse to throw");
}

async function setup(userinfo: Userinfo, settings: Settings = {}) {
  const config = parseConfig(await validSettings({ SESSION_CHECK_INTERVAL: String(INTERVAL), ...settings }));
  const calls: string[] = [];
  const unused = (): never => {
    throw new Error("not part of a session check");
  };
  const rt: SessionRuntime = {
    config,
    clock: Date.now,
    keyring: await importKeyring(config.sessionSecrets),
    checks: new Map(),
    oidc: {
      userinfo: async (accessToken, subject) => {
        calls.push(accessToken);
        return userinfo(accessToken, subject);
      },
      refresh: unused,
      authorizationUrl: unused,
      callback: unused,
      endSessionUrl: unused,
      revoke: unused,
    },
  };
  return { rt, calls };
}

/** A session without a refresh token (no offline_access), last checked `checkedAgo` seconds ago. */
async function seed(rt: SessionRuntime, checkedAgo: number, accessTokenIn = 3600) {
  const at = nowSeconds();
  const sid = randomId();
  const record: SessionRecord = { v: 1, sub: SUB, accessToken: "at-0", accessTokenExpiresAt: at + accessTokenIn, refreshToken: undefined, idToken: undefined, iat: at - 1000, exp: at + 28800 };
  const store = new SessionStore(SESSIONS, rt.keyring, "site.example");
  await store.put(sid, record, at);
  const cookie: SessionCookie = { v: 1, sid, user: { sub: SUB, name: "Иванов Иван Иванович", email: "demo@example.kontur.ru" }, iat: at - 1000, exp: at + 28800, chk: at - checkedAgo, seen: at };
  return { sid, store, raw: await sealSessionCookie(rt.keyring, cookie, "site.example") };
}

async function request(rt: SessionRuntime, store: SessionStore, raw: string) {
  const req: SessionRequest = {
    runtime: rt,
    url: new URL("https://site.example/"),
    now: nowSeconds(),
    scope: { secure: true },
    store,
    setCookies: [],
    waitUntil: () => undefined,
    session: undefined,
    returnTo: undefined,
    logged: (work) => work(),
  };
  const session = await resolveSession(req, raw);
  return { session, setCookie: req.setCookies[0] };
}

describe("revalidation at a check: what userinfo's answer does to the session", () => {
  it("between checks userinfo is not asked", async () => {
    const { rt, calls } = await setup(async () => ({ sub: SUB }));
    const { store, raw } = await seed(rt, 10);
    expect((await request(rt, store, raw)).session?.user.sub).toBe(SUB);
    expect(calls).toEqual([]);
  });

  it("200: the claims are the provider's now (a renamed user, a claim gone), the cookie re-issued with them", async () => {
    const { rt, calls } = await setup(async () => ({ sub: SUB, name: "Иванова Ивана Ивановна" }));
    const { store, raw } = await seed(rt, INTERVAL);
    const { session, setCookie } = await request(rt, store, raw);
    expect(calls).toEqual(["at-0"]);
    expect(session?.user).toEqual({ sub: SUB, name: "Иванова Ивана Ивановна" });
    expect(setCookie).toMatch(/^__Host-kg_session=[^;]+;/);
  });

  const ending: Array<[string, () => Promise<unknown>]> = [
    ["401 invalid_token", () => thrownFor(new Response(null, { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } }))],
    ["403", () => thrownFor(new Response(null, { status: 403 }))],
    ["another subject", () => thrownFor(Response.json({ sub: "someone-else" }))],
  ];
  it.each(ending)("%s: the session ends, its record is deleted, the cookie cleared", async (_name, failure) => {
    const error = await failure();
    const { rt } = await setup(async () => {
      throw error;
    });
    const { sid, store, raw } = await seed(rt, INTERVAL);
    const { session, setCookie } = await request(rt, store, raw);
    expect(session).toBeUndefined();
    expect(setCookie).toMatch(/Max-Age=0/);
    expect(await store.get(sid)).toBeUndefined();
  });

  const outages: Array<[string, () => Promise<unknown>]> = [
    ["500", () => thrownFor(Response.json({ error: "server_error" }, { status: 500 }))],
    ["connection lost", async () => new Error("Network connection lost.")],
    ["timeout", async () => new DOMException("timed out", "TimeoutError")],
  ];
  it.each(outages)("%s: the session goes on with its claims, the check is retried within 30 s", async (_name, failure) => {
    const error = await failure();
    const { rt } = await setup(async () => {
      throw error;
    });
    const { sid, store, raw } = await seed(rt, INTERVAL);
    const before = nowSeconds();
    const { session } = await request(rt, store, raw);
    expect(session?.user.name).toBe("Иванов Иван Иванович");
    expect(session!.chk + INTERVAL).toBeGreaterThan(before);
    expect(session!.chk + INTERVAL).toBeLessThanOrEqual(nowSeconds() + 30);
    expect(await store.get(sid)).toBeDefined();
  });

  it("SESSION_REVALIDATE=off: a check never asks userinfo", async () => {
    const { rt, calls } = await setup(async () => ({ sub: SUB }), { SESSION_REVALIDATE: "off" });
    const { store, raw } = await seed(rt, INTERVAL);
    expect((await request(rt, store, raw)).session?.user.name).toBe("Иванов Иван Иванович");
    expect(calls).toEqual([]);
  });
});

describe("an access token the session needs, expired with no refresh token", () => {
  it("ends the session at its check, without asking userinfo with a dead token", async () => {
    const { rt, calls } = await setup(async () => ({ sub: SUB }));
    const { sid, store, raw } = await seed(rt, INTERVAL, -5);
    expect((await request(rt, store, raw)).session).toBeUndefined();
    expect(calls).toEqual([]);
    expect(await store.get(sid)).toBeUndefined();
  });

  it("a session that needs no token (no PASS_ACCESS_TOKEN, SESSION_REVALIDATE=off) goes on to SESSION_TTL", async () => {
    const { rt } = await setup(async () => ({ sub: SUB }), { SESSION_REVALIDATE: "off" });
    const { store, raw } = await seed(rt, INTERVAL, -5);
    expect((await request(rt, store, raw)).session?.user.sub).toBe(SUB);
  });

  it("with PASS_ACCESS_TOKEN the check that keeps the session schedules the next one for the token's expiry", async () => {
    const { rt } = await setup(async () => ({ sub: SUB }), { PASS_ACCESS_TOKEN: "true" });
    const { store, raw } = await seed(rt, INTERVAL, 60);
    const { session } = await request(rt, store, raw);
    expect(session?.at).toBe("at-0");
    expect(session?.ate).toBeGreaterThanOrEqual(nowSeconds() + 59);
    expect(session!.chk + INTERVAL).toBe(session!.ate);
  });
});
