/**
 * `X-Auth-Assertion`: a short-lived JWT the origin can verify against `/_auth/jwks.json`, so that
 * an origin reachable by other paths than the gate can still tell a genuine identity from a forged
 * header. The key is imported once per isolate.
 */
import { SignJWT, importJWK, type JWK } from "jose";
import type { AssertionKeyJwk, AssertionPublicJwk } from "./config";
import { randomId } from "./crypto";
import type { UserClaims } from "./session";

/** The assertion lives at most this long (seconds): long enough for clock skew, too short to replay usefully. */
export const ASSERTION_TTL = 60;

export interface AssertionInput {
  /** The gate's own origin (`https://site.example`). */
  readonly issuer: string;
  /** The origin's URL origin (where the request is forwarded). */
  readonly audience: string;
  readonly user: UserClaims;
  /** Method and URL of the forwarded request (as in DPoP, RFC 9449 §4.2: `htm`, `htu`). */
  readonly method: string;
  readonly url: string;
}

/** What `/_auth/jwks.json` publishes for a key: its public part, with `alg` and `use` for verifiers. */
export function publicJwk(jwk: AssertionKeyJwk | AssertionPublicJwk): JWK {
  const { d: _private, key_ops: _ops, ext: _ext, ...publicPart } = jwk;
  return { ...publicPart, alg: jwk.kty === "OKP" ? "EdDSA" : "ES256", use: "sig" } as JWK;
}

export class AssertionSigner {
  readonly alg: "ES256" | "EdDSA";
  readonly publicJwk: JWK;

  private constructor(
    private readonly key: CryptoKey,
    private readonly kid: string,
    jwk: AssertionKeyJwk,
  ) {
    this.alg = jwk.kty === "OKP" ? "EdDSA" : "ES256";
    this.publicJwk = publicJwk(jwk);
  }

  static async create(jwk: AssertionKeyJwk): Promise<AssertionSigner> {
    const alg = jwk.kty === "OKP" ? "EdDSA" : "ES256";
    const key = await importJWK({ ...jwk, alg } as JWK, alg);
    if (!(key instanceof CryptoKey)) throw new TypeError("ASSERTION_SIGNING_KEY did not import as a CryptoKey");
    return new AssertionSigner(key, jwk.kid, jwk);
  }

  async sign(input: AssertionInput, now: number): Promise<string> {
    const { user } = input;
    return new SignJWT({
      ...(user.email === undefined ? {} : { email: user.email }),
      ...(user.name === undefined ? {} : { name: user.name }),
      htm: input.method,
      htu: input.url,
    })
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: "JWT" })
      .setIssuer(input.issuer)
      .setAudience(input.audience)
      .setSubject(user.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + ASSERTION_TTL)
      .setJti(randomId())
      .sign(this.key);
  }
}
