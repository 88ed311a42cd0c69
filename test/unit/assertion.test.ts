import { base64url as joseBase64url, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { AssertionSigner, ASSERTION_TTL } from "../../src/proxy/assertion";
import type { AssertionKeyJwk } from "../../src/config";
import { signingJwk } from "./fixtures";

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
});
