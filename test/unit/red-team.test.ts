/**
 * The pure decisions behind the red-team findings (issue 12), table-tested: CORS preflights and
 * WebSocket origins, e-mail matching, the headers and cookies the origin gets, the return path's
 * length, and the settings that feed them.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config";
import { ConfigError } from "../../src/common/errors";
import { comparableEmail, isAllowed } from "../../src/policy/access";
import { isAllowedSocketOrigin, preflightDecision, preflightFromOrigin, preflightRequestHeaders, withCorsHeaders } from "../../src/policy/cors";
import { MAX_RETURN_PATH, safeReturnPath } from "../../src/policy/return-path";
import { addIdentity, sanitizedHeaders, withoutGateCookies } from "../../src/proxy/headers";
import { userClaims } from "../../src/oidc/claims";
import { storePendingLogin } from "../../src/session/pending-login";
import { importKeyring } from "../../src/session/seal";
import { validSettings } from "./fixtures";

const APP = "https://app.example";
const SITE = "https://site.example";

function preflight(origin: string, method = "PUT", requestHeaders?: string): Request {
  const headers: Record<string, string> = { origin, "access-control-request-method": method };
  if (requestHeaders !== undefined) headers["access-control-request-headers"] = requestHeaders;
  return new Request(`${SITE}/api/items?id=7`, { method: "OPTIONS", headers });
}

describe("preflightDecision: the gate answers preflights from CORS_ORIGINS", () => {
  it("a listed origin gets its method and headers echoed, with credentials, Vary and no body", () => {
    const decision = preflightDecision(preflight(APP, "PUT", "Content-Type,X-Csrf-Token"), [APP], "gate");
    expect(decision.kind).toBe("answer");
    if (decision.kind !== "answer") return;
    expect(decision.status).toBe(204);
    expect(Object.fromEntries(decision.headers)).toEqual({
      "access-control-allow-origin": APP,
      "access-control-allow-credentials": "true",
      "access-control-allow-methods": "PUT",
      "access-control-allow-headers": "Content-Type, X-Csrf-Token",
      "access-control-max-age": "600",
      vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    });
  });

  it.each([
    ["an unlisted origin", preflight("https://evil.example")],
    ["a listed origin's look-alike (other scheme)", preflight("http://app.example")],
    ["a listed origin with a trailing slash", preflight(`${APP}/`)],
    ["the opaque origin null", preflight("null")],
    ["a method that is no token", preflight(APP, "PUT X")],
  ])("%s: 403 without a single Access-Control-Allow-* header", (_, request) => {
    const decision = preflightDecision(request, [APP], "gate");
    expect(decision.kind === "answer" && decision.status).toBe(403);
    if (decision.kind === "answer") expect([...decision.headers.keys()].filter((name) => name.startsWith("access-control-"))).toEqual([]);
  });

  it("no CORS_ORIGINS (the default): every preflight is refused", () => {
    expect(preflightDecision(preflight(APP), [], "gate")).toMatchObject({ kind: "answer", status: 403 });
  });

  it("requested headers that are not header names are not echoed", () => {
    const decision = preflightDecision(preflight(APP, "PUT", "x-ok, bad header"), [APP], "gate");
    expect(decision.kind === "answer" && decision.headers.has("access-control-allow-headers")).toBe(false);
  });

  it("mode origin (CORS_PREFLIGHT or a route's cors_preflight) forwards, whatever the origin", () => {
    expect(preflightDecision(preflight("https://evil.example"), [], "origin")).toEqual({ kind: "forward" });
  });
});

describe("a forwarded preflight is bare, and only CORS headers come back", () => {
  it("keeps the CORS request and the gate's forwarding headers; no cookie, credential or body headers", () => {
    const incoming = new Headers({
      origin: APP,
      "access-control-request-method": "PUT",
      cookie: "kg_session=x; wiki=y",
      authorization: "Basic eA==",
      "content-type": "text/plain",
      "content-length": "5",
    });
    const forwarded = new Headers({ "x-forwarded-host": "site.example", "x-forwarded-proto": "https", cookie: "wiki=y" });
    expect(Object.fromEntries(preflightRequestHeaders(incoming, forwarded))).toEqual({
      origin: APP,
      "access-control-request-method": "PUT",
      "x-forwarded-host": "site.example",
      "x-forwarded-proto": "https",
    });
  });

  it("the origin's body, cookies and other headers are dropped; its status and CORS headers kept", async () => {
    const fromOrigin = new Response("<h1>secret page</h1>", {
      status: 200,
      headers: { "content-type": "text/html", "set-cookie": "wiki=1", "access-control-allow-origin": APP, vary: "Origin" },
    });
    const answer = preflightFromOrigin(fromOrigin);
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe("");
    expect(Object.fromEntries(answer.headers)).toEqual({ "access-control-allow-origin": APP, vary: "Origin" });
  });
});

describe("withCorsHeaders: a listed origin's credentialed request can read the answer", () => {
  const request = (origin: string) => new Request(`${SITE}/api`, { headers: { origin } });
  it("a listed origin gets Allow-Origin and Allow-Credentials, and Vary: Origin", () => {
    const answer = withCorsHeaders(request(APP), new Response("ok"), [APP], "gate");
    expect(answer.headers.get("access-control-allow-origin")).toBe(APP);
    expect(answer.headers.get("access-control-allow-credentials")).toBe("true");
    expect(answer.headers.get("vary")).toBe("Origin");
  });
  it.each([
    ["an unlisted origin", request("https://evil.example"), "gate"],
    ["mode origin: the origin answers CORS itself", request(APP), "origin"],
  ] as const)("%s: nothing added", (_, req, mode) => {
    expect(withCorsHeaders(req, new Response("ok"), [APP], mode).headers.has("access-control-allow-origin")).toBe(false);
  });
  it("without CORS_ORIGINS the answer is passed on as it is, whatever Origin says", () => {
    const answer = new Response("ok");
    expect(withCorsHeaders(request(SITE), answer, [], "gate")).toBe(answer);
  });
});

describe("isAllowedSocketOrigin: cross-site WebSocket hijacking", () => {
  it.each([
    [SITE, true],
    [APP, true],
    [null, true],
    ["https://evil.example", false],
    ["https://site.example.evil.example", false],
    ["null", false],
  ])("Origin %s → %s", (origin, allowed) => {
    expect(isAllowedSocketOrigin(origin, SITE, [APP])).toBe(allowed);
  });
});

describe("e-mail: only a verified ASCII address, compared without Unicode folding", () => {
  it.each([
    [{ email: "Ivanov@Kontur.RU" }, "ivanov@kontur.ru"],
    [{ email: "ivanov@kontur.ru", email_verified: true }, "ivanov@kontur.ru"],
    [{ email: "ivanov@kontur.ru", email_verified: false }, undefined],
    [{ email: "ivanov@kontur.ru", email_verified: "false" }, undefined],
    [{ email: "ivanov@\u212Aontur.ru" }, undefined],
    [{ email: "иванов@kontur.ru" }, undefined],
  ])("%o → %s", (claims, expected) => {
    expect(comparableEmail(userClaims({ sub: "u", ...claims } as never))).toBe(expected);
  });

  it("a Kelvin sign does not match kontur.ru; an unverified address matches no list", async () => {
    const config = parseConfig(await validSettings({ ALLOWED_EMAIL_DOMAINS: "kontur.ru", ALLOWED_EMAILS: "boss@example.ru" }));
    expect(isAllowed({ sub: "u", email: "a@kontur.ru" }, config)).toBe(true);
    expect(isAllowed({ sub: "u", email: "a@\u212Aontur.ru" }, config)).toBe(false);
    expect(isAllowed({ sub: "u", email: "a@kontur.ru", email_verified: false }, config)).toBe(false);
    expect(isAllowed({ sub: "u", email: "boss@example.ru", email_verified: false }, config)).toBe(false);
  });

  it("an unverified address is not sent as X-Forwarded-Email", () => {
    const headers = new Headers();
    addIdentity(headers, { user: { sub: "u", email: "a@kontur.ru", email_verified: false }, assertion: "a.b.c", accessToken: undefined });
    expect(headers.has("x-forwarded-email")).toBe(false);
  });

  it("a non-ASCII allow-list entry is a configuration problem naming the setting", async () => {
    const settings = await validSettings({ ALLOWED_EMAILS: "иванов@почта.рф" });
    expect(() => parseConfig(settings)).toThrow(/ALLOWED_EMAILS: "иванов@почта.рф" is not ASCII/);
  });
});

describe("what the origin receives", () => {
  const isGateCookie = (name: string) => name === "kg_session";
  it.each([
    ["a, kg_session=x", undefined],
    ["a=1, kg_session=x; b=2", "b=2"],
    ["a=1; b=2,c=3", "a=1; b=2,c=3"],
  ])("Cookie %s → %s", (header, kept) => {
    expect(withoutGateCookies(header, isGateCookie)).toBe(kept);
  });

  it("client forwarding and identity headers are removed, in any spelling; the gate sets its own", () => {
    const incoming = new Headers({
      forwarded: "for=1.2.3.4",
      "x-forwarded-port": "1",
      x_forwarded_uri: "/admin",
      "x-auth-request-user": "admin",
      remote_user: "admin",
      "x-real-ip": "1.2.3.4",
      "x-envoy-original-path": "/admin",
      "cf-connecting-ip": "203.0.113.9",
      accept: "text/html",
    });
    const headers = sanitizedHeaders(incoming, new URL(`${SITE}/x`), isGateCookie);
    expect(Object.fromEntries(headers)).toEqual({
      accept: "text/html",
      "cf-connecting-ip": "203.0.113.9",
      "x-forwarded-for": "203.0.113.9",
      "x-forwarded-host": "site.example",
      "x-forwarded-proto": "https",
      "x-real-ip": "203.0.113.9",
    });
  });

  it("without CF-Connecting-IP no X-Forwarded-For or X-Real-IP is sent at all", () => {
    const headers = sanitizedHeaders(new Headers({ "x-forwarded-for": "1.2.3.4", "x-real-ip": "1.2.3.4" }), new URL(`${SITE}/x`), isGateCookie);
    expect([headers.has("x-forwarded-for"), headers.has("x-real-ip")]).toEqual([false, false]);
  });
});

describe("the return path stays small enough for the pending-login cookie", () => {
  it("a path longer than MAX_RETURN_PATH once percent-encoded becomes /", () => {
    expect(safeReturnPath(`/${"я".repeat(400)}`, SITE)).toBe("/");
    expect(safeReturnPath(`/${"a".repeat(MAX_RETURN_PATH - 1)}`, SITE)).toHaveLength(MAX_RETURN_PATH);
  });

  it("the longest return path kept still fits the cookie in 4,096 bytes", async () => {
    const keyring = await importKeyring([crypto.getRandomValues(new Uint8Array(32))]);
    const returnTo = safeReturnPath(`/${"a".repeat(MAX_RETURN_PATH - 1)}`, SITE);
    const state = "s".repeat(43);
    const login = { state, nonce: "n".repeat(43), codeVerifier: "v".repeat(43), returnTo, iat: 1 };
    const [cookie] = await storePendingLogin(keyring, { secure: true }, "", login, Date.now());
    expect(cookie!.split(";", 1)[0]!.length).toBeLessThan(4096);
  });
});

describe("settings of the findings", () => {
  it.each([
    [{ SESSION_SECRETS: "," }, /SESSION_SECRETS: holds no key/],
    [{ CORS_ORIGINS: "https://app.example/path" }, /CORS_ORIGINS: "https:\/\/app.example\/path" must be an origin/],
    [{ CORS_ORIGINS: "*" }, /CORS_ORIGINS: "\*" must be an origin/],
    [{ CORS_ORIGINS: "http://app.example" }, /CORS_ORIGINS: "http:\/\/app.example" must be an origin/],
    [{ CORS_PREFLIGHT: "both" }, /CORS_PREFLIGHT: must be one of gate, origin/],
  ])("%o is refused", async (overrides, message) => {
    const settings = await validSettings(overrides);
    expect(() => parseConfig(settings)).toThrow(ConfigError);
    expect(() => parseConfig(settings)).toThrow(message);
  });

  it("defaults: no CORS origins, the gate answers preflights; listed origins are kept as browsers send them", async () => {
    expect(parseConfig(await validSettings())).toMatchObject({ corsOrigins: [], corsPreflight: "gate" });
    const config = parseConfig(await validSettings({ CORS_ORIGINS: "https://App.Example, http://127.0.0.1:3000", CORS_PREFLIGHT: "origin" }));
    expect(config).toMatchObject({ corsOrigins: ["https://app.example", "http://127.0.0.1:3000"], corsPreflight: "origin" });
  });
});
