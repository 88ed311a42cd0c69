import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
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
});
