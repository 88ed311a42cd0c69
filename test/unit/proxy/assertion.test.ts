import { base64url as joseBase64url, createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { AssertionSigner, ASSERTION_TTL, SESSION_ASSERTION_MARGIN } from "../../../src/proxy/assertion";
import type { AssertionKeyJwk } from "../../../src/config";
import { signingJwk } from "../fixtures";

const input = {
  issuer: "https://site.example",
  audience: "https://origin.example",
  user: { sub: "guid-1", email: "demo@example.kontur.ru", name: "Иванов Иван Иванович" },
  method: "POST",
  url: "https://origin.example/reports?year=2026",
};

describe("X-Auth-Assertion: the origin can verify who is calling", () => {
  it.each(["EC", "OKP"] as const)("a %s key signs a JWT that verifies against the published JWKS", async (kind) => {
    const jwk = (await signingJwk(kind)) as AssertionKeyJwk;
    const signer = await AssertionSigner.create(jwk);
    const now = Math.floor(Date.now() / 1000);
    const token = await signer.sign(input, now);
    const jwks = createLocalJWKSet({ keys: [signer.publicJwk] });
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: input.issuer, audience: input.audience });
    expect(protectedHeader).toMatchObject({ alg: kind === "EC" ? "ES256" : "EdDSA", kid: jwk.kid, typ: "JWT" });
    expect(payload).toMatchObject({ sub: "guid-1", email: input.user.email, name: input.user.name, htm: "POST", htu: input.url, iat: now });
    expect(payload.exp! - payload.iat!).toBe(ASSERTION_TTL);
    expect(ASSERTION_TTL).toBeLessThanOrEqual(60);
    expect(typeof payload.jti).toBe("string");
  });

  it("publishes no private key material", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    expect(signer.publicJwk).not.toHaveProperty("d");
    expect(signer.publicJwk).toMatchObject({ use: "sig", alg: "ES256" });
  });

  it("gives every assertion its own jti", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    const now = Math.floor(Date.now() / 1000);
    const [a, b] = await Promise.all([signer.sign(input, now), signer.sign(input, now)]);
    expect(a).not.toBe(b);
    expect(decodeProtectedHeader(a).alg).toBe("ES256");
  });

  it("is refused by an origin expecting another audience", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    const token = await signer.sign(input, Math.floor(Date.now() / 1000));
    await expect(jwtVerify(token, createLocalJWKSet({ keys: [signer.publicJwk] }), { audience: "https://other.example" })).rejects.toThrow();
  });

  it("prepared once per session: verifies for every padding length, with a fresh jti, iat, exp, htm and htu each time", async () => {
    const signer = await AssertionSigner.create((await signingJwk("OKP")) as AssertionKeyJwk);
    const jwks = createLocalJWKSet({ keys: [signer.publicJwk] });
    const paddings = new Set<number>();
    // Names of 0–5 ASCII bytes and two-byte Cyrillic letters: the per-session part's length takes every residue mod 3.
    for (const name of [undefined, "A", "Ab", "Abc", "Ж", "Жb", "Иванов Иван"]) {
      const user = { sub: "guid-1", email: "demo@example.kontur.ru", ...(name === undefined ? {} : { name }) };
      const requests = [
        { method: "GET", url: "https://origin.example/a", now: 1_900_000_000 },
        { method: "POST", url: 'https://origin.example/b?q="x"&y=ж', now: 1_900_000_007 },
      ];
      const jtis = new Set<string>();
      for (const { method, url, now } of requests) {
        const token = await signer.sign({ ...input, user, method, url }, now);
        const { payload } = await jwtVerify(token, jwks, { issuer: input.issuer, audience: input.audience, currentDate: new Date(now * 1000) });
        expect(payload).toEqual({ iss: input.issuer, aud: input.audience, ...user, iat: now, exp: now + ASSERTION_TTL, jti: payload.jti, htm: method, htu: url });
        expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{43}$/);
        jtis.add(payload.jti!);
        // The payload is plain JSON with 0, 1 or 2 spaces before the per-request claims.
        const json = new TextDecoder().decode(joseBase64url.decode(token.split(".")[1]!));
        expect(JSON.parse(json)).toEqual(payload);
        paddings.add(/,( *)"iat":/.exec(json)![1]!.length);
      }
      expect(jtis.size).toBe(2);
    }
    expect([...paddings].sort()).toEqual([0, 1, 2]);
  });

  it("a prepared part is not reused for another origin or another user", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    const jwks = createLocalJWKSet({ keys: [signer.publicJwk] });
    const now = Math.floor(Date.now() / 1000);
    await signer.sign(input, now);
    const otherOrigin = await signer.sign({ ...input, issuer: "https://b.site.example", audience: "https://other-origin.example" }, now);
    expect((await jwtVerify(otherOrigin, jwks, { audience: "https://other-origin.example" })).payload.iss).toBe("https://b.site.example");
    const otherUser = await signer.sign({ ...input, user: { sub: "guid-2" } }, now);
    const { payload } = await jwtVerify(otherUser, jwks, { audience: input.audience });
    expect([payload.sub, payload.email, payload.name]).toEqual(["guid-2", undefined, undefined]);
  });

  it("the same session's user on another route or after a new sign-in gets that route and auth_time, in both modes", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    const user = Object.freeze({ ...input.user });
    const T = 1_900_000_000;
    const claimsOf = async (extra: { route?: string; authTime?: number }) => [
      decodeJwt(await signer.sign({ ...input, user, ...extra }, T)),
      decodeJwt(await signer.signForSession({ issuer: input.issuer, audience: input.audience, user, ...extra }, T, T + 3600)),
    ];
    for (const payload of await claimsOf({ route: "admin", authTime: T - 10 })) expect([payload.route, payload.auth_time]).toEqual(["admin", T - 10]);
    for (const payload of await claimsOf({ route: "docs" })) expect([payload.route, payload.auth_time]).toEqual(["docs", undefined]);
    for (const payload of await claimsOf({ authTime: T - 5 })) expect([payload.route, payload.auth_time]).toEqual([undefined, T - 5]);
  });

  it("carries the CLAIM_HEADERS claims the signer was made with, never in place of its own", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk, ["department", "sub"]);
    const user = { ...input.user, department: "Контур.Диадок" };
    const payload = decodeJwt(await signer.sign({ ...input, user }, Math.floor(Date.now() / 1000)));
    expect([payload.department, payload.sub]).toEqual(["Контур.Диадок", input.user.sub]);
  });
});

describe("ASSERTION_MODE=session: one assertion per session, reused while it is valid", () => {
  const T = 1_900_000_000;
  const session = { issuer: input.issuer, audience: input.audience, user: Object.freeze({ ...input.user }) };

  it("verifies, names the user, has its own jti and no htm/htu, and lives ASSERTION_TTL like a per-request one", async () => {
    const signer = await AssertionSigner.create((await signingJwk("OKP")) as AssertionKeyJwk);
    const token = await signer.signForSession(session, T, T + 3600);
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: [signer.publicJwk] }), { issuer: input.issuer, audience: input.audience, currentDate: new Date(T * 1000), maxTokenAge: ASSERTION_TTL });
    expect(payload).toEqual({ iss: input.issuer, aud: input.audience, ...input.user, iat: T, exp: T + ASSERTION_TTL, jti: payload.jti });
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("is reused for the session while it has the margin left, then replaced by a new one with a new jti", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    const first = await signer.signForSession(session, T, T + 3600);
    const lastReuse = T + ASSERTION_TTL - SESSION_ASSERTION_MARGIN;
    expect(await signer.signForSession(session, lastReuse, T + 3600)).toBe(first);
    const next = await signer.signForSession(session, lastReuse + 1, T + 3600);
    expect(next).not.toBe(first);
    expect(decodeJwt(next).jti).not.toBe(decodeJwt(first).jti);
    expect([decodeJwt(next).iat, decodeJwt(next).exp]).toEqual([lastReuse + 1, lastReuse + 1 + ASSERTION_TTL]);
  });

  it("never outlives the session, and is not shared by other sessions or origins", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    expect(decodeJwt(await signer.signForSession({ ...session, user: { ...input.user } }, T, T + 10)).exp).toBe(T + 10);
    const mine = await signer.signForSession(session, T, T + 3600);
    const otherSession = await signer.signForSession({ ...session, user: { sub: "guid-2" } }, T, T + 3600);
    expect(decodeJwt(otherSession).sub).toBe("guid-2");
    const otherOrigin = await signer.signForSession({ ...session, audience: "https://other-origin.example" }, T, T + 3600);
    expect(decodeJwt(otherOrigin).aud).toBe("https://other-origin.example");
    expect(await signer.signForSession(session, T, T + 3600)).not.toBe(mine); // the origin changed in between
  });
});
