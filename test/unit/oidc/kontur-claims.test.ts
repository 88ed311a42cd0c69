/**
 * Issue 11's pure steps: what a userinfo answer means for a session, the profile a login keeps,
 * the PKCE-refusal diagnosis, CLAIM_HEADERS and SESSION_REVALIDATE, and the claim headers on the
 * way to the origin.
 */
import * as oauth from "oauth4webapi";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config";
import { isPkceRefusal, mergedProfile, userinfoFailure, type UserinfoFailure } from "../../../src/oidc/decisions";
import { addIdentity, sanitizedHeaders } from "../../../src/proxy/headers";
import { userClaims } from "../../../src/oidc/claims";
import { checkedAt } from "../../../src/session/revalidate";
import { problemsOf, validSettings } from "../fixtures";

const as: oauth.AuthorizationServer = { issuer: "https://identity.testkontur.ru", userinfo_endpoint: "https://identity.testkontur.ru/connect/userinfo" };
const client: oauth.Client = { client_id: "site-client" };
const SUB = "6f1c2a9e-4b7d-4e0a-9c1f-2d3b4a5c6e7f";

/** What oauth4webapi's processUserInfoResponse throws for this answer (or what fetch threw). */
async function failureOf(answer: Response | Error): Promise<UserinfoFailure | "accepted"> {
  if (answer instanceof Error) return userinfoFailure(answer);
  try {
    await oauth.processUserInfoResponse(as, client, SUB, answer);
    return "accepted";
  } catch (error) {
    return userinfoFailure(error);
  }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

describe("userinfo answers: revoked, another subject, or an outage", () => {
  const table: Array<[string, () => Response | Error, UserinfoFailure | "accepted"]> = [
    ["200 with the same sub", () => json(200, { sub: SUB, email: "a@b.ru" }), "accepted"],
    ["401 invalid_token with a challenge (revoked or expired token, disabled account)", () => json(401, { error: "invalid_token" }, { "www-authenticate": 'Bearer error="invalid_token"' }), "revoked"],
    ["401 without a challenge", () => new Response(null, { status: 401 }), "revoked"],
    ["403 insufficient_scope with a challenge (consent withdrawn)", () => json(403, { error: "insufficient_scope" }, { "www-authenticate": 'Bearer error="insufficient_scope"' }), "revoked"],
    ["403 without a challenge", () => new Response("forbidden", { status: 403 }), "revoked"],
    ["200 naming another sub", () => json(200, { sub: "someone-else" }), "identity_changed"],
    ["200 without sub", () => json(200, { email: "a@b.ru" }), "unavailable"],
    ["200 with an HTML page (a proxy in the provider's place)", () => new Response("<html>", { status: 200, headers: { "content-type": "text/html" } }), "unavailable"],
    ["200 with truncated JSON", () => new Response('{"sub":', { status: 200, headers: { "content-type": "application/json" } }), "unavailable"],
    ["500", () => json(500, { error: "server_error" }), "unavailable"],
    ["503 with a Bearer challenge", () => json(503, {}, { "www-authenticate": 'Bearer error="temporarily_unavailable"' }), "unavailable"],
    ["502 HTML", () => new Response("<html>bad gateway</html>", { status: 502 }), "unavailable"],
    ["400 (not a verdict on the user)", () => json(400, { error: "invalid_request" }), "unavailable"],
    ["connection lost", () => new Error("Network connection lost."), "unavailable"],
    ["timeout", () => new DOMException("The operation was aborted due to timeout", "TimeoutError"), "unavailable"],
  ];
  it.each(table)("%s", async (_name, answer, expected) => {
    expect(await failureOf(answer())).toBe(expected);
  });
});

describe("the profile a login keeps", () => {
  const idToken = { iss: as.issuer, aud: "site-client", iat: 1, exp: 2, sub: SUB, auth_time: 1, email: "old@b.ru" } as oauth.IDToken;

  it("userinfo completes and overrides the id_token's claims; the subject stays the id_token's", () => {
    const profile = mergedProfile(idToken, { sub: SUB, email: "new@b.ru", name: "Иванов Иван" });
    expect(profile).toMatchObject({ sub: SUB, email: "new@b.ru", name: "Иванов Иван", auth_time: 1 });
  });

  it("without a userinfo endpoint the id_token's claims are the profile", () => {
    expect(mergedProfile(idToken, undefined)).toMatchObject({ sub: SUB, email: "old@b.ru" });
  });

  it("keeps the profile claims and the CLAIM_HEADERS ones as text, nothing else", () => {
    const claims = { sub: SUB, email: "a@b.ru", phone_number: "+7999", inn: 7700000000, snils_verified: true, address: { x: 1 }, amr: ["pwd"], name: "" };
    expect(userClaims(claims, ["inn", "snils_verified", "address", "amr"])).toEqual({ sub: SUB, email: "a@b.ru", phone_number: "+7999", inn: "7700000000", snils_verified: "true" });
    expect(userClaims(claims)).toEqual({ sub: SUB, email: "a@b.ru", phone_number: "+7999" });
  });
});

describe("PKCE refused: invalid_grant on an exchange that carried a code_verifier", () => {
  const invalidGrant = async () => {
    try {
      await oauth.processAuthorizationCodeResponse(as, client, json(400, { error: "invalid_grant" }));
    } catch (error) {
      return error;
    }
    throw new Error("expected a ResponseBodyError");
  };
  it("is recognised only when a verifier was sent and the error is invalid_grant", async () => {
    const error = await invalidGrant();
    expect(isPkceRefusal(error, true)).toBe(true);
    expect(isPkceRefusal(error, false)).toBe(false);
    expect(isPkceRefusal(new Error("Network connection lost."), true)).toBe(false);
  });
});


describe("SESSION_REVALIDATE and CLAIM_HEADERS", () => {
  it("default: userinfo at each check, no claim headers", async () => {
    const config = parseConfig(await validSettings());
    expect(config.sessionRevalidate).toBe("userinfo");
    expect(config.claimHeaders).toEqual([]);
  });

  it("reads off, and Header-Name=claim pairs with spaces", async () => {
    const config = parseConfig(
      await validSettings({ SESSION_REVALIDATE: "off", CLAIM_HEADERS: " X-Forwarded-Phone = phone_number , X-Forwarded-Family-Name=family_name" }),
    );
    expect(config.sessionRevalidate).toBe("off");
    expect(config.claimHeaders).toEqual([
      { header: "x-forwarded-phone", claim: "phone_number" },
      { header: "x-forwarded-family-name", claim: "family_name" },
    ]);
  });

  const refused: Array<[string, string]> = [
    ["SESSION_REVALIDATE=always", ""],
    ["X-Forwarded-User=email", "sets or strips itself"],
    ["x-forwarded-email=email", "sets or strips itself"],
    ["X_Forwarded_Name=name", "sets or strips itself"],
    ["X-Auth-Assertion=sub", "sets or strips itself"],
    ["X-Forwarded-Access-Token-Expires=exp", "sets or strips itself"],
    ["X-Forwarded-Host=email", "sets or strips itself"],
    ["X-Gate-Client-Id=sub", "sets or strips itself"],
    ["Cookie=sub", "Cookie or Authorization"],
    ["Authorization=sub", "Cookie or Authorization"],
    ["Connection=sub", "hop-by-hop"],
    ["Transfer-Encoding=sub", "hop-by-hop"],
    ["Host=email", "sets or strips itself"],
    ["X Phone=phone_number", "not a valid header name"],
    ["X-Phone", "Header-Name=claim"],
    ["X-Phone=a=b", "Header-Name=claim"],
    ["X-Phone=phone number", "not a claim name"],
    ["X-Phone=phone_number, x-phone=name", "named twice"],
  ];
  it.each(refused)("refuses %s", async (raw, message) => {
    const settings = raw.startsWith("SESSION_REVALIDATE=") ? { SESSION_REVALIDATE: raw.split("=")[1] } : { CLAIM_HEADERS: raw };
    const problems = problemsOf(() => parseConfig(settings));
    const problem = problems.find((p) => p.startsWith(raw.startsWith("SESSION_REVALIDATE") ? "SESSION_REVALIDATE:" : "CLAIM_HEADERS:"));
    expect(problem).toContain(message);
  });
});

describe("claim headers on the way to the origin", () => {
  const claimHeaders = [{ header: "x-forwarded-phone", claim: "phone_number" }, { header: "x-forwarded-middle-name", claim: "middle_name" }];
  const SITE = new URL("https://site.example/");

  it("client copies are stripped, in either spelling", () => {
    const incoming = new Headers({ "X-Forwarded-Phone": "+7000", X_Forwarded_Middle_Name: "Evil", accept: "text/html" });
    const headers = sanitizedHeaders(incoming, SITE, () => false, claimHeaders);
    expect([...headers.keys()].filter((name) => name.includes("phone") || name.includes("middle"))).toEqual([]);
    expect(headers.get("accept")).toBe("text/html");
  });

  it("the mapped claims are sent encoded like X-Forwarded-Name; a missing claim sends nothing", () => {
    const headers = new Headers();
    addIdentity(headers, { user: { sub: SUB, middle_name: "Иванович" }, assertion: "a.b.c", accessToken: undefined, claimHeaders });
    expect(headers.get("x-forwarded-middle-name")).toBe(encodeURIComponent("Иванович"));
    expect(headers.has("x-forwarded-phone")).toBe(false);
  });

  it("X-Forwarded-Access-Token-Expires goes only with the token", () => {
    const withToken = new Headers();
    addIdentity(withToken, { user: { sub: SUB }, assertion: "a.b.c", accessToken: "opaque", accessTokenExpiresAt: 1800000000 });
    expect(withToken.get("x-forwarded-access-token-expires")).toBe("1800000000");
    const without = new Headers();
    addIdentity(without, { user: { sub: SUB }, assertion: "a.b.c", accessToken: undefined, accessTokenExpiresAt: 1800000000 });
    expect(without.has("x-forwarded-access-token-expires")).toBe(false);
  });
});

describe("a session that needs an access token it cannot renew is checked when the token expires", () => {
  it("moves the last check back so the next one falls due at the token's expiry", async () => {
    const config = parseConfig(await validSettings({ SESSION_CHECK_INTERVAL: "300" }));
    expect(checkedAt(config, { accessTokenExpiresAt: 1100, refreshToken: undefined }, 1000)).toBe(800);
    expect(checkedAt(config, { accessTokenExpiresAt: 5000, refreshToken: undefined }, 1000)).toBe(1000);
    expect(checkedAt(config, { accessTokenExpiresAt: 1100, refreshToken: "rt" }, 1000)).toBe(1000);
    expect(checkedAt(config, { accessTokenExpiresAt: undefined, refreshToken: undefined }, 1000)).toBe(1000);
    const off = parseConfig(await validSettings({ SESSION_CHECK_INTERVAL: "300", SESSION_REVALIDATE: "off" }));
    expect(checkedAt(off, { accessTokenExpiresAt: 1100, refreshToken: undefined }, 1000)).toBe(1000);
  });
});
