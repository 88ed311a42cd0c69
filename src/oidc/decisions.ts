/**
 * The provider conversation's pure decisions, apart from its I/O (as oauth4webapi pairs
 * `xxxRequest` with `processXxxResponse`): which id_token algorithm to pin and whether to use PKCE
 * (from discovery), whether a failure is an outage or a refusal, what a failed refresh means, and
 * what of a token response the session keeps. Each has a table test without a network.
 */
import * as oauth from "oauth4webapi";
import type { PkceMode } from "../config";
import { GateError } from "../common/errors";

/** Signature algorithms the gate accepts for id_tokens: asymmetric only, never `none` or HS*. */
const ASYMMETRIC_ALGS = ["RS256", "PS256", "ES256", "EdDSA", "Ed25519", "RS384", "RS512", "PS384", "PS512", "ES384", "ES512"];

/**
 * The id_token algorithm to pin for this provider: RS256 when advertised (OIDC Core §15.1 makes it
 * the one every provider supports), else the first asymmetric one; undefined when there is none.
 * @see https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
 */
export function idTokenAlg(as: Pick<oauth.AuthorizationServer, "id_token_signing_alg_values_supported">): string | undefined {
  const advertised = as.id_token_signing_alg_values_supported ?? ["RS256"];
  return advertised.includes("RS256") ? "RS256" : advertised.find((candidate) => ASYMMETRIC_ALGS.includes(candidate));
}

/**
 * Whether to send a PKCE S256 challenge: `on` always, `off` never, `auto` when discovery
 * advertises S256 (Kontur's IdentityServer may refuse a verifier from a client not set up for it).
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.3
 */
export function usesPkce(mode: PkceMode, as: Pick<oauth.AuthorizationServer, "code_challenge_methods_supported">): boolean {
  return mode === "on" || (mode === "auto" && (as.code_challenge_methods_supported ?? []).includes("S256"));
}

/** The validated result of a code exchange or a refresh. */
export interface Tokens {
  readonly claims: oauth.IDToken;
  readonly accessToken: string;
  /** Epoch seconds. */
  readonly accessTokenExpiresAt: number | undefined;
  readonly refreshToken: string | undefined;
  readonly idToken: string | undefined;
}

/**
 * Why a refresh failed. `grant_rejected`: the provider answered `invalid_grant` (expired, user
 * deleted, consent withdrawn — or the one-time token was used by someone else first).
 * `identity_changed`: the refreshed id_token names another subject or issuer, or its signature does
 * not verify. `unavailable`: anything else (network, timeout, 5xx, garbage, other OAuth errors).
 */
export type RefreshFailure = "grant_rejected" | "identity_changed" | "unavailable";

/** A refresh that failed; only `unavailable` leaves the session alive (it is retried later). */
export class RefreshError extends Error {
  override readonly name = "RefreshError";
  constructor(
    readonly failure: RefreshFailure,
    message: string,
  ) {
    super(message);
  }

  get fatal(): boolean {
    return this.failure !== "unavailable";
  }
}

/** What the provider says about the user: the id_token's claims, completed by userinfo's. */
export interface Profile {
  readonly sub: string;
  readonly [claim: string]: unknown;
}

/** A code exchange's result: the tokens and the merged profile. */
export type LoginTokens = Tokens & { readonly profile: Profile };

/**
 * The profile after a login (OIDC Core §5.3.2): userinfo's claims complete and override the
 * id_token's (IdentityServer puts them only there), and the subject is always the id_token's
 * (the caller has checked that userinfo names the same one).
 * @see https://openid.net/specs/openid-connect-core-1_0.html#UserInfoResponse
 */
export function mergedProfile(idToken: oauth.IDToken, userinfo: oauth.UserInfoResponse | undefined): Profile {
  return { ...idToken, ...userinfo, sub: idToken.sub };
}

/**
 * What a failed userinfo request means. `revoked`: 401 or 403 — the access token was revoked or
 * has expired, the account was disabled or deleted, or consent withdrawn. `identity_changed`:
 * userinfo names another subject than the session's. `unavailable`: anything else (network,
 * timeout, 5xx, an answer that is not JSON or lacks `sub`, other statuses) — an outage, not a
 * verdict on the user.
 * @see https://openid.net/specs/openid-connect-core-1_0.html#UserInfoError
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export type UserinfoFailure = "revoked" | "identity_changed" | "unavailable";

function failedStatus(error: unknown): number | undefined {
  if (error instanceof oauth.WWWAuthenticateChallengeError) return error.status;
  if (error instanceof oauth.OperationProcessingError && error.code === oauth.RESPONSE_IS_NOT_CONFORM && error.cause instanceof Response) {
    return error.cause.status;
  }
  return undefined;
}

export function userinfoFailure(error: unknown): UserinfoFailure {
  const status = failedStatus(error);
  if (status === 401 || status === 403) return "revoked";
  if (error instanceof oauth.OperationProcessingError && error.code === oauth.JSON_ATTRIBUTE_COMPARISON) return "identity_changed";
  return "unavailable";
}

/**
 * A code exchange refused with `invalid_grant` although it carried a PKCE `code_verifier`: the
 * mark of an IdentityServer client not set up for PKCE (with `OIDC_PKCE=auto`, discovery
 * advertised S256 all the same). Never a reason to retry without PKCE by itself: anyone can make
 * an exchange fail on purpose.
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.6
 */
export function isPkceRefusal(error: unknown, sentVerifier: boolean): boolean {
  return sentVerifier && error instanceof oauth.ResponseBodyError && error.error === "invalid_grant";
}

/** A refresh may or may not return a new id_token. */
export type RefreshedTokens = Omit<Tokens, "claims"> & { readonly claims: oauth.IDToken | undefined };

/**
 * True for failures of the network or of the provider itself (timeouts, refused or dropped
 * connections, 5xx, answers that are not JSON); false when the provider answered and refused, or
 * its answer failed a check.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof oauth.ResponseBodyError || error instanceof oauth.WWWAuthenticateChallengeError) return error.status >= 500;
  if (error instanceof oauth.OperationProcessingError) {
    return (
      error.code === oauth.RESPONSE_IS_NOT_JSON ||
      error.code === oauth.PARSE_ERROR ||
      (error.code === oauth.RESPONSE_IS_NOT_CONFORM && error.cause instanceof Response && error.cause.status >= 500)
    );
  }
  if (error instanceof oauth.UnsupportedOperationError || error instanceof GateError) return false;
  // oauth4webapi's own argument errors are TypeErrors with an ERR_ code: a bug, not an outage.
  if (error instanceof TypeError && typeof (error as { code?: unknown }).code === "string") return false;
  // What is left was thrown by fetch: workerd reports a refused or dropped connection as a plain
  // Error ("Network connection lost."), a timeout as a DOMException.
  return error instanceof Error;
}

/** oauth4webapi's verdicts on the content of a token response (not on its transport or format). */
const INVALID_TOKEN_CODES = new Set<string>([oauth.INVALID_RESPONSE, oauth.JWT_CLAIM_COMPARISON, oauth.JWT_TIMESTAMP_CHECK]);

/** The refreshed id_token's `iss` is not the issuer's (oauth4webapi compared it). */
function isIssuerMismatch(error: unknown): boolean {
  return (
    error instanceof oauth.OperationProcessingError &&
    error.code === oauth.JWT_CLAIM_COMPARISON &&
    (error.cause as { claim?: unknown } | undefined)?.claim === "iss"
  );
}

/**
 * What a failed refresh means for the session (RFC 6749 §5.2): `invalid_grant` is a refused grant,
 * a refreshed id_token from another issuer or one that fails validation is a changed identity, and
 * everything else is an outage that leaves the session running.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export function refreshFailure(error: unknown): RefreshError {
  if (error instanceof RefreshError) return error;
  if (error instanceof oauth.ResponseBodyError && error.error === "invalid_grant") return new RefreshError("grant_rejected", describe(error));
  if (isIssuerMismatch(error)) return new RefreshError("identity_changed", "The refreshed id_token comes from another issuer");
  // A well-formed answer that fails validation (e.g. an id_token with `alg: none`) is a lie, not an outage.
  if (error instanceof oauth.OperationProcessingError && INVALID_TOKEN_CODES.has(error.code ?? "")) {
    return new RefreshError("identity_changed", `The refreshed tokens do not validate (${describe(error)})`);
  }
  return new RefreshError("unavailable", describe(error));
}

/**
 * Whether a user who last authenticated at `authTime` satisfies a `max_age` of `maxAge` seconds
 * now; an unknown `auth_time` never does (step-up fails closed).
 * @see https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest (max_age)
 */
export function isRecentAuthentication(authTime: number | undefined, maxAge: number, now: number): boolean {
  return authTime !== undefined && now - authTime <= maxAge;
}

/** oauth4webapi refused the id_token over `auth_time`: missing, malformed or too old for `maxAge`. */
export function isAuthTimeFailure(error: unknown): boolean {
  if (!(error instanceof oauth.OperationProcessingError)) return false;
  const cause = error.cause as { claim?: unknown } | undefined;
  return cause?.claim === "auth_time" || /auth_time|authentication time/.test(error.message);
}

/** The parts of a token response the session keeps; `expires_in` becomes an absolute time (epoch seconds). */
export function tokenFields(result: oauth.TokenEndpointResponse, now: number): Omit<Tokens, "claims"> {
  return {
    accessToken: result.access_token,
    accessTokenExpiresAt: result.expires_in === undefined ? undefined : now + result.expires_in,
    refreshToken: result.refresh_token,
    idToken: result.id_token,
  };
}

/** A log-safe description: oauth4webapi errors carry raw responses (tokens) in `cause`, never logged. */
export function describe(error: unknown): string {
  if (error instanceof oauth.ResponseBodyError) return `${error.code} ${error.status} ${error.error}`;
  if (error instanceof oauth.OperationProcessingError || error instanceof oauth.UnsupportedOperationError) {
    return `${error.code}: ${error.message}`;
  }
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return "unknown error";
}
