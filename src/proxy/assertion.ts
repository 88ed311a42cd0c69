/**
 * `X-Auth-Assertion`: a short-lived JWT the origin can verify against `/_auth/jwks.json`, so that
 * an origin reachable by other paths than the gate can still tell a genuine identity from a forged
 * header. The key is imported once per isolate.
 */
import { importJWK, type JWK } from "jose";
import type { AssertionKeyJwk, AssertionPublicJwk } from "../config";
import { base64url, randomId } from "../session/seal";
import type { UserClaims } from "../oidc/claims";

/** The assertion lives at most this long (seconds): long enough for clock skew, too short to replay usefully. */
export const ASSERTION_TTL = 60;

const encoder = new TextEncoder();

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
  /** The encoded protected header, the same for every assertion. */
  private readonly header: string;
  private readonly algorithm: SubtleCryptoSignAlgorithm;

  private constructor(
    private readonly key: CryptoKey,
    kid: string,
    jwk: AssertionKeyJwk,
  ) {
    this.alg = jwk.kty === "OKP" ? "EdDSA" : "ES256";
    this.publicJwk = publicJwk(jwk);
    this.header = base64url(encoder.encode(JSON.stringify({ alg: this.alg, kid, typ: "JWT" })));
    // ES256 is ECDSA P-256 with SHA-256; WebCrypto's signature (r ‖ s) is already the JWS form (RFC 7518 §3.4).
    this.algorithm = this.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: key.algorithm.name };
  }

  static async create(jwk: AssertionKeyJwk): Promise<AssertionSigner> {
    const alg = jwk.kty === "OKP" ? "EdDSA" : "ES256";
    const key = await importJWK({ ...jwk, alg } as JWK, alg);
    if (!(key instanceof CryptoKey)) throw new TypeError("ASSERTION_SIGNING_KEY did not import as a CryptoKey");
    return new AssertionSigner(key, jwk.kid, jwk);
  }

  /**
   * A compact JWS (RFC 7515 §7.1) signed directly with WebCrypto. This runs on every request, and
   * jose's SignJWT re-checks the key and every claim each time, which took about a third of the
   * signing cost; the key was checked once, when `create` imported it with jose.
   */
  async sign(input: AssertionInput, now: number): Promise<string> {
    const { user } = input;
    const claims = {
      ...(user.email === undefined ? {} : { email: user.email }),
      ...(user.name === undefined ? {} : { name: user.name }),
      htm: input.method,
      htu: input.url,
      iss: input.issuer,
      aud: input.audience,
      sub: user.sub,
      iat: now,
      exp: now + ASSERTION_TTL,
      jti: randomId(),
    };
    const signingInput = `${this.header}.${base64url(encoder.encode(JSON.stringify(claims)))}`;
    const signature = await crypto.subtle.sign(this.algorithm, this.key, encoder.encode(signingInput));
    return `${signingInput}.${base64url(new Uint8Array(signature))}`;
  }
}
