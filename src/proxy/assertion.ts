/**
 * `X-Auth-Assertion`: a short-lived JWT the origin can verify against `/_auth/jwks.json`, so that
 * an origin reachable by other paths than the gate can still tell a genuine identity from a forged
 * header. The key is imported once per isolate.
 */
import { importJWK, type JWK } from "jose";
import type { AssertionKeyJwk, AssertionPublicJwk } from "../config";
import { base64url, randomId } from "../session/seal";
import { claimText, type UserClaims } from "../oidc/claims";

/** The assertion lives at most this long (seconds): long enough for clock skew, too short to replay usefully. */
export const ASSERTION_TTL = 60;

const encoder = new TextEncoder();

/** The claims that stay the same for a session at one origin. */
export interface SessionAssertionInput {
  /** The gate's own origin (`https://site.example`). */
  readonly issuer: string;
  /** The origin's URL origin (where the request is forwarded). */
  readonly audience: string;
  readonly user: UserClaims;
  /** When the user last authenticated at the provider (the id_token's `auth_time`), if known. */
  readonly authTime?: number;
  /** The name of the `ROUTES` entry that decided the request, if one did. */
  readonly route?: string;
}

export interface AssertionInput extends SessionAssertionInput {
  /** Method and URL of the forwarded request (as in DPoP, RFC 9449 §4.2: `htm`, `htu`). */
  readonly method: string;
  readonly url: string;
}

/** What the per-session parts of an assertion depend on besides the user (which keys the caches). */
type SessionParts = Pick<SessionAssertionInput, "issuer" | "audience" | "authTime" | "route">;

function parts({ issuer, audience, authTime, route }: SessionAssertionInput): SessionParts {
  return { issuer, audience, ...(authTime === undefined ? {} : { authTime }), ...(route === undefined ? {} : { route }) };
}

/** Compared field by field on every request: a change of any means new per-session parts. */
function sameParts(known: SessionParts, input: SessionAssertionInput): boolean {
  return known.issuer === input.issuer && known.audience === input.audience && known.authTime === input.authTime && known.route === input.route;
}

/**
 * Claims the gate writes itself: a `CLAIM_HEADERS` claim of the same name stays out of the
 * assertion, so no claim appears twice and none of the gate's is replaced.
 */
const OWN_CLAIMS = new Set(["iss", "aud", "sub", "email", "name", "auth_time", "route", "iat", "exp", "jti", "htm", "htu", "nbf", "email_verified"]);

function extraClaims(user: UserClaims, names: readonly string[]): Record<string, string> {
  const extra: Record<string, string> = {};
  for (const name of names) {
    const value = claimText(user, name);
    if (value !== undefined && !OWN_CLAIMS.has(name)) extra[name] = value;
  }
  return extra;
}

/**
 * `ASSERTION_MODE=session`: a reused assertion is handed on only while it has at least this many
 * seconds left, so an origin always has time to verify it.
 */
export const SESSION_ASSERTION_MARGIN = 30;

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
    /** Claims of the user named in `CLAIM_HEADERS`, added under their own names. */
    private readonly extraClaims: readonly string[],
  ) {
    this.alg = jwk.kty === "OKP" ? "EdDSA" : "ES256";
    this.publicJwk = publicJwk(jwk);
    this.header = base64url(encoder.encode(JSON.stringify({ alg: this.alg, kid, typ: "JWT" })));
    // ES256 is ECDSA P-256 with SHA-256; WebCrypto's signature (r ‖ s) is already the JWS form (RFC 7518 §3.4).
    this.algorithm = this.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: key.algorithm.name };
  }

  static async create(jwk: AssertionKeyJwk, extraClaims: readonly string[] = []): Promise<AssertionSigner> {
    const alg = jwk.kty === "OKP" ? "EdDSA" : "ES256";
    const key = await importJWK({ ...jwk, alg } as JWK, alg);
    if (!(key instanceof CryptoKey)) throw new TypeError("ASSERTION_SIGNING_KEY did not import as a CryptoKey");
    return new AssertionSigner(key, jwk.kid, jwk, extraClaims);
  }

  /**
   * The part of an assertion that stays the same for a session at one origin: the encoded header,
   * then the base64url of the per-session claims as the start of the JSON object. Keyed by the
   * session's user object, which the opened-cookie cache keeps the same from request to request.
   */
  private readonly prepared = new WeakMap<UserClaims, SessionParts & { readonly prefix: string }>();

  private preparedPrefix(input: SessionAssertionInput): string {
    const { user } = input;
    const known = this.prepared.get(user);
    if (known !== undefined && sameParts(known, input)) return known.prefix;
    const constant = JSON.stringify({
      ...extraClaims(user, this.extraClaims),
      iss: input.issuer,
      aud: input.audience,
      sub: user.sub,
      ...(user.email === undefined ? {} : { email: user.email }),
      ...(user.email_verified === false ? { email_verified: false } : {}),
      ...(user.name === undefined ? {} : { name: user.name }),
      ...(input.authTime === undefined ? {} : { auth_time: input.authTime }),
      ...(input.route === undefined ? {} : { route: input.route }),
    });
    // The object left open (`{…,`), padded with JSON whitespace to a multiple of 3 bytes: base64
    // encodes 3 bytes at a time, so this part's encoding followed by the encoding of the rest is
    // exactly the encoding of the whole payload.
    const bytes = encoder.encode(`${constant.slice(0, -1)},`);
    const padded = new Uint8Array(bytes.length + ((3 - (bytes.length % 3)) % 3)).fill(0x20);
    padded.set(bytes);
    const prefix = `${this.header}.${base64url(padded)}`;
    this.prepared.set(user, { ...parts(input), prefix });
    return prefix;
  }

  /**
   * A compact JWS (RFC 7515 §7.1) signed directly with WebCrypto. This runs on every request:
   * jose's SignJWT re-checked the key and every claim each time (the key was checked once, when
   * `create` imported it with jose), and only `iat`, `exp`, `jti`, `htm` and `htu` are serialised
   * here — the rest was prepared once per session. The signature covers every claim either way.
   */
  async sign(input: AssertionInput, now: number): Promise<string> {
    const perRequest = `"iat":${now},"exp":${now + ASSERTION_TTL},"jti":"${randomId()}","htm":${JSON.stringify(input.method)},"htu":${JSON.stringify(input.url)}}`;
    return this.signed(this.preparedPrefix(input), perRequest);
  }

  /** `ASSERTION_MODE=session`: the assertion in use per session object, with the origin it was made for. */
  private readonly perSession = new WeakMap<UserClaims, SessionParts & { readonly token: string; readonly exp: number }>();

  /**
   * `ASSERTION_MODE=session`: one assertion per session, reused while it has at least
   * SESSION_ASSERTION_MARGIN seconds left, so a session costs about one signature per half minute
   * in an isolate instead of one per request. No `htm`/`htu`; a `jti` of its own. Like a
   * per-request assertion it lives ASSERTION_TTL seconds (origins keep their 60-second age check),
   * never past `sessionEnd`.
   */
  async signForSession(input: SessionAssertionInput, now: number, sessionEnd: number): Promise<string> {
    const known = this.perSession.get(input.user);
    if (known !== undefined && sameParts(known, input) && known.exp - now >= SESSION_ASSERTION_MARGIN) return known.token;
    const exp = Math.min(sessionEnd, now + ASSERTION_TTL);
    const token = await this.signed(this.preparedPrefix(input), `"iat":${now},"exp":${exp},"jti":"${randomId()}"}`);
    this.perSession.set(input.user, { ...parts(input), token, exp });
    return token;
  }

  private async signed(prefix: string, rest: string): Promise<string> {
    const signingInput = `${prefix}${base64url(encoder.encode(rest))}`;
    const signature = await crypto.subtle.sign(this.algorithm, this.key, encoder.encode(signingInput));
    return `${signingInput}.${base64url(new Uint8Array(signature))}`;
  }
}
