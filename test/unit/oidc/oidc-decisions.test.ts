import * as oauth from "oauth4webapi";
import { describe, expect, it } from "vitest";
import { GateError } from "../../../src/common/errors";
import { describe as describeError, idTokenAlg, isTransient, RefreshError, refreshFailure, tokenFields, usesPkce } from "../../../src/oidc/decisions";

describe("idTokenAlg: the algorithm pinned for id_tokens, from discovery", () => {
  it.each([
    ["nothing advertised (OIDC's default)", undefined, "RS256"],
    ["RS256 among others", ["ES256", "RS256"], "RS256"],
    ["only ES256", ["ES256"], "ES256"],
    ["EdDSA after none and HS256", ["none", "HS256", "EdDSA"], "EdDSA"],
    ["only none", ["none"], undefined],
    ["only symmetric", ["HS256", "HS512"], undefined],
  ])("%s → %s", (_name, advertised, expected) => {
    expect(idTokenAlg({ id_token_signing_alg_values_supported: advertised })).toBe(expected);
  });
});

describe("usesPkce: OIDC_PKCE against what discovery advertises", () => {
  it.each([
    ["auto", ["S256"], true],
    ["auto", ["plain", "S256"], true],
    ["auto", ["plain"], false],
    ["auto", undefined, false],
    ["on", undefined, true],
    ["off", ["S256"], false],
  ] as const)("%s with %j → %s", (mode, methods, expected) => {
    expect(usesPkce(mode, { code_challenge_methods_supported: methods ? [...methods] : undefined })).toBe(expected);
  });
});

function bodyError(status: number, error: string): oauth.ResponseBodyError {
  const response = Response.json({ error }, { status });
  return new oauth.ResponseBodyError("server responded with an error in the response body", {
    cause: { error, error_description: undefined, error_uri: undefined } as never,
    response,
  });
}

function processingError(code: string, cause?: unknown): oauth.OperationProcessingError {
  return new oauth.OperationProcessingError("x", { code, cause });
}

describe("isTransient: an outage (retry later) or a refusal (act on it)", () => {
  it.each([
    ["a dropped connection (workerd's plain Error)", new Error("Network connection lost."), true],
    ["a timeout", new DOMException("The operation was aborted due to timeout", "TimeoutError"), true],
    ["503 with an OAuth error body", bodyError(503, "temporarily_unavailable"), true],
    ["400 invalid_grant", bodyError(400, "invalid_grant"), false],
    ["an HTML answer (not JSON)", processingError(oauth.RESPONSE_IS_NOT_JSON), true],
    ["malformed JSON", processingError(oauth.PARSE_ERROR), true],
    ["a 502 that is not a conform answer", processingError(oauth.RESPONSE_IS_NOT_CONFORM, new Response(null, { status: 502 })), true],
    ["a 400 that is not a conform answer", processingError(oauth.RESPONSE_IS_NOT_CONFORM, new Response(null, { status: 400 })), false],
    ["an id_token that fails a claim check", processingError(oauth.JWT_CLAIM_COMPARISON), false],
    ["the gate's own refusal", new GateError("login_rejected", "x"), false],
    ["oauth4webapi's argument error (a bug)", Object.assign(new TypeError("bad"), { code: "ERR_INVALID_ARG_TYPE" }), false],
  ])("%s → %s", (_name, error, expected) => {
    expect(isTransient(error)).toBe(expected);
  });
});

describe("refreshFailure: what a failed refresh means for the session", () => {
  it.each([
    ["invalid_grant: expired, deleted, consent withdrawn or used elsewhere", bodyError(400, "invalid_grant"), "grant_rejected"],
    ["another issuer in the refreshed id_token", processingError(oauth.JWT_CLAIM_COMPARISON, { claim: "iss" }), "identity_changed"],
    ["a refreshed id_token failing another check", processingError(oauth.JWT_CLAIM_COMPARISON, { claim: "aud" }), "identity_changed"],
    ["an expired refreshed id_token", processingError(oauth.JWT_TIMESTAMP_CHECK), "identity_changed"],
    ["an invalid token response", processingError(oauth.INVALID_RESPONSE), "identity_changed"],
    ["invalid_client (a configuration problem, not the user's)", bodyError(400, "invalid_client"), "unavailable"],
    ["503", bodyError(503, "temporarily_unavailable"), "unavailable"],
    ["a dropped connection", new Error("Network connection lost."), "unavailable"],
  ])("%s → %s", (_name, error, failure) => {
    const result = refreshFailure(error);
    expect(result).toBeInstanceOf(RefreshError);
    expect(result.failure).toBe(failure);
    expect(result.fatal).toBe(failure !== "unavailable");
  });

  it("a RefreshError passes through unchanged", () => {
    const error = new RefreshError("identity_changed", "x");
    expect(refreshFailure(error)).toBe(error);
  });
});

describe("tokenFields: what the session keeps of a token response", () => {
  it("expires_in becomes an absolute time on the given clock; no expires_in stays unknown", () => {
    const response = { access_token: "at", token_type: "bearer", expires_in: 3600, refresh_token: "rt", id_token: "id" } as oauth.TokenEndpointResponse;
    expect(tokenFields(response, 1_000_000)).toEqual({ accessToken: "at", accessTokenExpiresAt: 1_003_600, refreshToken: "rt", idToken: "id" });
    expect(tokenFields({ ...response, expires_in: undefined }, 1_000_000).accessTokenExpiresAt).toBeUndefined();
  });
});

describe("describe: a log-safe description of any failure", () => {
  it("never includes a provider's raw answer (which can hold tokens)", () => {
    const error = bodyError(400, "invalid_grant");
    expect(describeError(error)).toBe(`${error.code} 400 invalid_grant`);
    expect(describeError(processingError(oauth.PARSE_ERROR, { access_token: "secret-token" }))).not.toContain("secret-token");
    expect(describeError("a string")).toBe("unknown error");
  });
});
