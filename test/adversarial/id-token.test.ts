/**
 * The id_token checks, case by case after the OpenID Foundation's relying-party conformance tests
 * (old names `rp-*`, current suite `oidcc-client-test-*`): a provider that signs wrongly, or names
 * the wrong issuer, audience, subject, nonce or time, never gets anyone signed in.
 */
import { createPublicKey, type JsonWebKey } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateRsaKey, generateRsaKeyObject, signHmac, signNone, signRs256, signWith, type Scenario } from "../fixtures/hostile-provider.mjs";
import { generateKeyPair } from "jose";
import {
  attemptLogin,
  expectLoggedRefusal,
  expectRefused,
  expectSignedOut,
  NAVIGATE,
  scanForSecrets,
  signIn,
  startHostileStack,
  type HostileStack,
} from "./harness.ts";
import { setsSession } from "../helpers/session-cookie.ts";

scanForSecrets();

type Claims = Record<string, unknown>;

function withClaims(change: (claims: Claims) => Claims): Scenario {
  return { claims: (claims) => change({ ...claims }) };
}

function without(name: string): Scenario {
  return withClaims(({ [name]: _dropped, ...rest }) => rest);
}

const hour = 3600;
const now = () => Math.floor(Date.now() / 1000);

/** The provider's public key as PEM, the secret an algorithm-confusion attacker has. */
function publicPem(jwk: JsonWebKey): string {
  return createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" }).toString();
}

/** Each lie, and the reason the gate logs for refusing it (so the refusal is for the right reason). */
const refusedCases: { name: string; reason: string; scenario: Scenario | ((stack: HostileStack) => Scenario) }[] = [
  {
    name: "rp-id_token-sig-none: an unsigned id_token (alg none)",
    reason: 'unexpected JWT "alg"',
    scenario: { sign: (header, claims) => signNone(header, claims) },
  },
  {
    name: "rp-id_token-bad-sig-rs256: signed with another key under the published kid",
    reason: "signature verification failed",
    scenario: { sign: async (header, claims) => signWith((await generateRsaKey()).privateKey, header, claims) },
  },
  {
    name: "oidcc-client-test-invalid-sig-hs256: HS256 with the provider's public key (PEM) as the HMAC secret",
    reason: 'unexpected JWT "alg"',
    scenario: { sign: (header, claims, ctx) => signHmac(header, claims, publicPem(ctx.key.publicJwk)) },
  },
  {
    name: "HS256 with the provider's public JWK (JSON) as the HMAC secret",
    reason: 'unexpected JWT "alg"',
    scenario: { sign: (header, claims, ctx) => signHmac(header, claims, JSON.stringify(ctx.key.publicJwk)) },
  },
  {
    name: "HS256 with the client secret as the HMAC secret (a provider may do this; the gate pins RS256)",
    reason: 'unexpected JWT "alg"',
    scenario: (stack) => ({ sign: (header, claims) => signHmac(header, claims, stack.secrets.OIDC_CLIENT_SECRET) }),
  },
  {
    name: "an ES256 id_token although discovery advertises only RS256",
    reason: 'unexpected JWT "alg"',
    scenario: {
      header: (header) => ({ ...header, alg: "ES256" }),
      sign: async (header, claims) => signWith((await generateKeyPair("ES256")).privateKey, header, claims),
    },
  },
  {
    name: "the signature stripped (RS256 header, empty signature)",
    reason: "signature verification failed",
    scenario: { sign: async (header, claims, ctx) => `${(await signWith(ctx.key.privateKey, header, claims)).split(".").slice(0, 2).join(".")}.` },
  },
  {
    name: "a kid the JWKS does not publish",
    reason: "no applicable keys found",
    scenario: { sign: async (header, claims) => signWith((await generateRsaKey()).privateKey, { ...header, kid: "not-published" }, claims) },
  },
  {
    name: "rp-id_token-issuer-mismatch: iss of another issuer",
    reason: '"iss" (issuer) claim value',
    scenario: withClaims((c) => ({ ...c, iss: "https://identity.evil.example" })),
  },
  { name: "iss differing only by a trailing slash", reason: '"iss" (issuer) claim value', scenario: withClaims((c) => ({ ...c, iss: `${String(c.iss)}/` })) },
  { name: "rp-id_token-aud: aud of another client", reason: '"aud" (audience) claim value', scenario: withClaims((c) => ({ ...c, aud: "another-client" })) },
  { name: "oidcc-client-test-missing-aud: no aud", reason: '"aud" (audience) claim missing', scenario: without("aud") },
  {
    name: "aud listing the client among untrusted audiences, without azp",
    reason: "additional untrusted audiences",
    scenario: withClaims((c) => ({ ...c, aud: [c.aud, "another-client"] })),
  },
  {
    name: "azp naming another client",
    reason: '"azp" (authorized party)',
    scenario: withClaims((c) => ({ ...c, aud: [c.aud, "another-client"], azp: "another-client" })),
  },
  { name: "rp-id_token-sub / oidcc-client-test-missing-sub: no sub", reason: '"sub" (subject) claim missing', scenario: without("sub") },
  { name: "sub that is not a string", reason: '"sub" (subject) claim type', scenario: withClaims((c) => ({ ...c, sub: 12345 })) },
  {
    name: "rp-nonce-invalid / oidcc-client-test-nonce-invalid: a nonce of another login",
    reason: '"nonce" claim value',
    scenario: withClaims((c) => ({ ...c, nonce: "n-0S6_WzA2Mj" })),
  },
  { name: "no nonce although the authorization request sent one", reason: '"nonce" (nonce) claim missing', scenario: without("nonce") },
  { name: "rp-id_token-iat / oidcc-client-test-missing-iat: no iat", reason: '"iat" (issued at) claim missing', scenario: without("iat") },
  {
    name: "iat an hour in the future (issued in the future)",
    reason: "issued in the future",
    scenario: withClaims((c) => ({ ...c, iat: now() + hour, exp: now() + 2 * hour })),
  },
  { name: "nbf an hour in the future (not yet valid)", reason: '"nbf" (not before)', scenario: withClaims((c) => ({ ...c, nbf: now() + hour })) },
  { name: "expired an hour ago", reason: "expiration is past", scenario: withClaims((c) => ({ ...c, iat: now() - 2 * hour, exp: now() - hour })) },
  { name: "no exp", reason: '"exp" (expiration time) claim missing', scenario: without("exp") },
  { name: "an id_token that is not a JWT", reason: "Invalid JWT", scenario: { sign: () => "not-a-jwt" } },
  {
    name: "an encrypted id_token (JWE) the gate never asked for",
    reason: "JWE decryption is not configured",
    scenario: { sign: () => "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn" },
  },
  {
    name: "huge claims: a 64 KB name that no session cookie could carry",
    reason: "too large for the session cookie",
    scenario: withClaims((c) => ({ ...c, name: "Я".repeat(64 * 1024) })),
  },
];

describe("id_token: a provider that lies in the id_token gets nobody signed in", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack();
    // The positive control first: the same provider, behaving, signs a visitor in.
    await signIn(stack);
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  it("control: the provider, behaving, signs a visitor in and the origin sees who it is", async () => {
    const client = await signIn(stack);
    const page = await client.get(`${stack.gate.url}/private`, NAVIGATE);
    expect(page.status).toBe(200);
    expect(stack.origin.requests.map((r) => r.headers["x-forwarded-user"])).toEqual(["hostile-user-1"]);
  });

  it.each(refusedCases)("$name → 401, no session, the origin sees nothing", async ({ scenario, reason }) => {
    stack.provider.set(typeof scenario === "function" ? scenario(stack) : scenario);
    const since = stack.gate.logs.length;
    const { client, callback } = await attemptLogin(stack);
    expectRefused(stack, callback, 401);
    // The token request was made and its answer refused: the refusal is the id_token's.
    expect(stack.provider.requestsTo("token")).toHaveLength(1);
    // The pending login is spent: the same callback cannot be tried again.
    expect(callback.headers.getSetCookie().some((c) => /^kg_login_[^=]+=;.*Max-Age=0/.test(c))).toBe(true);
    await expectLoggedRefusal(stack, since, "login_rejected", reason);
    await expectSignedOut(stack, client);
  });

  it("an aud array holding only the client is accepted (control for the audience checks)", async () => {
    stack.provider.set(withClaims((c) => ({ ...c, aud: [c.aud] })));
    const { callback } = await attemptLogin(stack);
    expect(callback.status).toBe(302);
    expect(setsSession(callback)).toBe(true);
  });

  it("a large but harmless claim (4 KB of groups) is dropped, and the session cookie stays small", async () => {
    stack.provider.set(withClaims((c) => ({ ...c, groups: Array.from({ length: 200 }, (_, i) => `group-${i}-${"x".repeat(12)}`) })));
    const { callback } = await attemptLogin(stack);
    expect(callback.status).toBe(302);
    const cookie = callback.headers.getSetCookie().find((c) => c.startsWith("kg_session="))!;
    expect(cookie.length).toBeLessThan(1500);
  });
});

describe("id_token keys: kid selection and rotation (each case on a gate that has not cached the JWKS yet)", () => {
  let stack: HostileStack | undefined;
  afterAll(() => stack?.close());
  beforeEach(async () => {
    await stack?.close();
    stack = await startHostileStack();
  });

  it("rp-id_token-kid-absent-single-jwks: no kid and one published key is accepted", async () => {
    stack!.provider.set({ header: ({ kid: _kid, ...header }) => header });
    const { callback } = await attemptLogin(stack!);
    expect(callback.status).toBe(302);
    expect(setsSession(callback)).toBe(true);
  });

  it("rp-id_token-kid-absent-multiple-jwks: no kid while the JWKS publishes two RSA keys is refused", async () => {
    const other = await generateRsaKey();
    stack!.provider.publish([stack!.provider.key, other]);
    stack!.provider.set({ header: ({ kid: _kid, ...header }) => header });
    const { client, callback } = await attemptLogin(stack!);
    expectRefused(stack!, callback, 401);
    await expectSignedOut(stack!, client);
  });

  it("a 1024-bit RSA key, published and used, is refused", async () => {
    const weak = generateRsaKeyObject("weak-1024", 1024);
    stack!.provider.publish([weak]);
    stack!.provider.set({ sign: (header, claims) => signRs256(weak.privateKey, { ...header, kid: weak.kid }, claims) });
    const { client, callback } = await attemptLogin(stack!);
    expectRefused(stack!, callback, 401);
    await expectSignedOut(stack!, client);
  });

  it("rp-key-rotation-op-sign-key: after a planned rollover (new key published ahead) the next login succeeds", async () => {
    await signIn(stack!);
    await stack!.provider.rotateKey({ keepOld: true });
    const { callback } = await attemptLogin(stack!);
    expect(callback.status).toBe(302);
    expect(setsSession(callback)).toBe(true);
  });

  it("oidcc-client-test-signing-key-rotation: after an abrupt rotation (old key gone) the next login succeeds", async () => {
    await signIn(stack!);
    expect(stack!.provider.requestsTo("jwks")).toHaveLength(1);
    await stack!.provider.rotateKey();
    const { callback } = await attemptLogin(stack!);
    expect(callback.status).toBe(302);
    expect(setsSession(callback)).toBe(true);
    expect(stack!.provider.requestsTo("jwks")).toHaveLength(2);
  });
});
