import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { userHash } from "../../../src/common/log";
import { GateError } from "../../../src/common/errors";
import { BACKCHANNEL_EVENT, LOGOUT_TOKEN_MAX_AGE, logoutClaims } from "../../../src/session/backchannel";
import { randomId } from "../../../src/session/seal";
import { emailHash, endSessions, indexSession, providerSidHash, sessionsOfProviderSid, sessionsOfUser } from "../../../src/session/user-index";

const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const NOW = 1_780_000_000;
const events = { [BACKCHANNEL_EVENT]: {} };

describe("logout token claims (OpenID Connect Back-Channel Logout 1.0 §2.6)", () => {
  const valid = { iat: NOW, jti: "j-1", sub: "s-1", sid: "p-1", events };

  it("accepts sub and sid, sub alone, sid alone, and an iat within the clock skew or the age limit", () => {
    expect(logoutClaims(valid, NOW)).toEqual({ sub: "s-1", sid: "p-1", jti: "j-1", iat: NOW });
    expect(logoutClaims({ ...valid, sid: undefined }, NOW).sid).toBeUndefined();
    expect(logoutClaims({ ...valid, sub: undefined }, NOW).sub).toBeUndefined();
    expect(logoutClaims({ ...valid, iat: NOW + 60 }, NOW).iat).toBe(NOW + 60);
    expect(logoutClaims({ ...valid, iat: NOW - LOGOUT_TOKEN_MAX_AGE }, NOW).iat).toBe(NOW - LOGOUT_TOKEN_MAX_AGE);
  });

  it.each([
    ["no iat", { ...valid, iat: undefined }, 'no "iat"'],
    ["iat in the future", { ...valid, iat: NOW + 61 }, "in the future"],
    ["iat too old", { ...valid, iat: NOW - LOGOUT_TOKEN_MAX_AGE - 1 }, "older than 300 s"],
    ["no events", { ...valid, events: undefined }, '"events" lacks'],
    ["events without the member", { ...valid, events: { "http://schemas.openid.net/event/other": {} } }, '"events" lacks'],
    ["the member is not an object", { ...valid, events: { [BACKCHANNEL_EVENT]: "yes" } }, '"events" lacks'],
    ["a nonce", { ...valid, nonce: "n" }, '"nonce"'],
    ["neither sub nor sid", { ...valid, sub: undefined, sid: undefined }, 'neither "sub" nor "sid"'],
    ["an empty sid", { ...valid, sid: "" }, '"sid" is not a string'],
    ["a numeric sub", { ...valid, sub: 7 as unknown as string }, '"sub" is not a string'],
    ["no jti", { ...valid, jti: undefined }, 'no "jti"'],
  ])("refuses %s", (_name, payload, message) => {
    let thrown: unknown;
    try {
      logoutClaims(payload, NOW);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GateError);
    expect((thrown as GateError).code).toBe("logout_token_invalid");
    expect((thrown as GateError).status).toBe(400);
    expect((thrown as GateError).message).toContain(message);
  });
});

describe("the per-user index", () => {
  it("finds a user's sessions by sub, and by provider sid only when the sub matches; ending deletes record and entries", async () => {
    const sub = `sub-${randomId()}`;
    const other = `sub-${randomId()}`;
    const [a, b, c] = [randomId(), randomId(), randomId()];
    for (const sid of [a, b, c]) await SESSIONS.put(`session:${sid}`, "sealed");
    await indexSession(SESSIONS, { sid: a, sub, email: "Demo@Example.ru", providerSid: "ps-1", host: "a.example", iat: NOW, exp: NOW + 3600 }, NOW);
    await indexSession(SESSIONS, { sid: b, sub, email: undefined, providerSid: undefined, host: "b.example", iat: NOW, exp: NOW + 3600 }, NOW);
    await indexSession(SESSIONS, { sid: c, sub: other, email: undefined, providerSid: "ps-1", host: "a.example", iat: NOW, exp: NOW + 3600 }, NOW);

    const user = await userHash(sub);
    const found = await sessionsOfUser(SESSIONS, sub);
    expect(found.map((s) => s.sid).sort()).toEqual([a, b].sort());
    expect(found.find((s) => s.sid === a)!.entry).toEqual({
      v: 1,
      iat: NOW,
      exp: NOW + 3600,
      host: "a.example",
      eh: await emailHash("demo@example.ru"),
      ph: await providerSidHash("ps-1"),
    });
    expect(found.every((s) => s.user === user)).toBe(true);
    // The same provider sid under two subjects: a token naming sub and sid ends only that user's.
    expect((await sessionsOfProviderSid(SESSIONS, "ps-1", sub)).map((s) => s.sid)).toEqual([a]);
    expect((await sessionsOfProviderSid(SESSIONS, "ps-1", undefined)).map((s) => s.sid).sort()).toEqual([a, c].sort());

    expect(await endSessions(SESSIONS, await sessionsOfProviderSid(SESSIONS, "ps-1", sub), Math.floor(Date.now() / 1000))).toBe(1);
    expect(await SESSIONS.get(`session:${a}`)).toBeNull();
    expect(await SESSIONS.get(`session:${b}`)).not.toBeNull();
    expect(await SESSIONS.get(`session:${c}`)).not.toBeNull();
    expect((await sessionsOfUser(SESSIONS, sub)).map((s) => s.sid)).toEqual([b]);
    expect(await sessionsOfProviderSid(SESSIONS, "ps-1", sub)).toEqual([]);
  });

  it("expires with the session (KV's minimum TTL at least)", async () => {
    const sub = `sub-${randomId()}`;
    const sid = randomId();
    await indexSession(SESSIONS, { sid, sub, email: undefined, providerSid: "ps-2", host: "h", iat: NOW, exp: NOW + 30 }, NOW);
    const { keys } = await SESSIONS.list({ prefix: `user:${await userHash(sub)}:` });
    expect(keys).toHaveLength(1);
    // Written with expirationTtl: KV reports an absolute expiration on the key.
    expect(keys[0]!.expiration).toBeGreaterThan(0);
  });
});
