import { describe, expect, it } from "vitest";
import { parseConfig, parseDuration, parseList } from "../../../src/config";
import { randomSecret, signingJwk, problemsOf, validSettings } from "../fixtures";


describe("config: defaults of the contract", () => {
  it("fills every optional setting with its documented default", async () => {
    const config = parseConfig(await validSettings({ OIDC_ISSUER: undefined }));
    expect(config.issuer.href).toBe("https://identity.kontur.ru/");
    expect(config.clientAuth).toBe("client_secret_post");
    expect(config.scopes).toEqual(["openid", "profile", "email"]);
    expect(config.pkce).toBe("auto");
    expect(config.allowHttpIssuer).toBe(false);
    expect(config.originUrl).toBeUndefined();
    expect(config.sessionTtl).toBe(8 * 3600);
    expect(config.sessionIdleTtl).toBeUndefined();
    expect(config.sessionCheckInterval).toBe(300);
    expect(config.publicPaths).toEqual([]);
    expect(config.apiPaths).toEqual([]);
    expect(config.logoutAtProvider).toBe(false);
    expect(config.passAccessToken).toBe(false);
    expect(config.authPrefix).toBe("/_auth");
    expect(config.assertionMode).toBe("request");
  });

  it("ASSERTION_MODE is request or session, nothing else", async () => {
    expect(parseConfig(await validSettings({ ASSERTION_MODE: "Session" })).assertionMode).toBe("session");
    const settings = await validSettings({ ASSERTION_MODE: "none" });
    expect(problemsOf(() => parseConfig(settings))).toEqual(['ASSERTION_MODE: must be one of request, session (got "none")']);
  });

  it("is frozen", async () => {
    const config = parseConfig(await validSettings());
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reads lists with spaces and durations with units", async () => {
    const config = parseConfig(
      await validSettings({
        PUBLIC_PATHS: " /static/* , /favicon.ico,, ",
        ALLOWED_EMAIL_DOMAINS: "@Kontur.RU, skbkontur.ru",
        SESSION_TTL: "1d",
        SESSION_IDLE_TTL: "30m",
        SESSION_CHECK_INTERVAL: "1",
        OIDC_CLIENT_AUTH: "client_secret_basic",
        OIDC_PKCE: "off",
        ORIGIN_URL: "https://origin.example/app",
      }),
    );
    expect(config.publicPaths).toEqual(["/static/*", "/favicon.ico"]);
    expect(config.allowedEmailDomains).toEqual(["kontur.ru", "skbkontur.ru"]);
    expect(config.sessionTtl).toBe(86400);
    expect(config.sessionIdleTtl).toBe(1800);
    expect(config.sessionCheckInterval).toBe(1);
    expect(config.clientAuth).toBe("client_secret_basic");
    expect(config.pkce).toBe("off");
    expect(config.originUrl?.href).toBe("https://origin.example/app");
  });

  it("accepts several session keys for rotation", async () => {
    const config = parseConfig(await validSettings({ SESSION_SECRETS: `${randomSecret()}, ${randomSecret(48)}` }));
    expect(config.sessionSecrets.map((key) => key.length)).toEqual([32, 48]);
  });
});

describe("config: a wrong setting is named, with the fix", () => {
  it("reports every missing required setting at once", () => {
    const problems = problemsOf(() => parseConfig({}));
    expect(problems.map((p) => p.split(":")[0])).toEqual(["OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "SESSION_SECRETS", "ASSERTION_SIGNING_KEY"]);
  });

  it("never echoes a secret's value", async () => {
    const secret = "c2hvcnQtYnV0LXNlY3JldA";
    const problems = problemsOf(() =>
      parseConfig({ SESSION_SECRETS: secret, ASSERTION_SIGNING_KEY: '{"kty":"RSA","d":"very-secret-d"}', OIDC_CLIENT_SECRET: "s" }),
    );
    const text = problems.join("\n");
    expect(text).toContain("SESSION_SECRETS: key #1 decodes to 16 bytes");
    expect(text).toContain("ASSERTION_SIGNING_KEY: must be an EC P-256");
    expect(text).not.toContain(secret);
    expect(text).not.toContain("very-secret-d");
  });

  it.each([
    ["OIDC_CLIENT_AUTH", "private_key_jwt", "OIDC_CLIENT_AUTH: must be one of client_secret_post, client_secret_basic"],
    ["OIDC_PKCE", "maybe", "OIDC_PKCE: must be one of auto, on, off"],
    ["OIDC_SCOPES", "profile email", "OIDC_SCOPES: must include openid"],
    ["SESSION_TTL", "eight hours", "SESSION_TTL: must be whole seconds"],
    ["SESSION_TTL", "1", "SESSION_TTL: must be at least 2 seconds"],
    ["SESSION_CHECK_INTERVAL", "0", "SESSION_CHECK_INTERVAL: must be at least 1 seconds"],
    ["SESSION_CHECK_INTERVAL", "9h", "SESSION_CHECK_INTERVAL: must be shorter than SESSION_TTL"],
    ["ORIGIN_URL", "origin.example", "ORIGIN_URL: must be an absolute URL"],
    ["ORIGIN_URL", "ftp://origin.example", "ORIGIN_URL: must be an http:// or https:// URL"],
    ["ORIGIN_URL", "https://origin.example/?x=1", "ORIGIN_URL: must be a base URL"],
    ["PUBLIC_PATHS", "static/*", 'PUBLIC_PATHS: pattern "static/*" must start with /'],
    ["API_PATHS", "/api/*/v1", 'API_PATHS: pattern "/api/*/v1" must start with /'],
    ["AUTH_PREFIX", "/_auth/", "AUTH_PREFIX: must be a path like /_auth"],
    ["LOGOUT_AT_PROVIDER", "yes", "LOGOUT_AT_PROVIDER: must be one of true, false"],
    ["PASS_ACCESS_TOKEN", "1", "PASS_ACCESS_TOKEN: must be one of true, false"],
    ["ASSERTION_SIGNING_KEY", "not json", "ASSERTION_SIGNING_KEY: is not JSON"],
    ["SESSION_SECRETS", "!!!", "SESSION_SECRETS: key #1 is not base64url"],
  ] as const)("%s=%s is refused", async (name, value, message) => {
    const settings = await validSettings({ [name]: value });
    expect(problemsOf(() => parseConfig(settings)).join("\n")).toContain(message);
  });

  it.each(["/static/../*", "/a/./b", "/admin?x", "/x#*", "/a//b/*", "/%2e%2e/*", "/a\\b", "/a\tb"])(
    "refuses the path pattern %j, which the URL parser would rewrite into a wider one",
    async (pattern) => {
      const settings = await validSettings({ PUBLIC_PATHS: pattern });
      expect(problemsOf(() => parseConfig(settings)).join()).toContain("must be a plain path");
    },
  );

  it("refuses a SESSION_TTL longer than a browser keeps a cookie (400 days)", async () => {
    const settings = await validSettings({ SESSION_TTL: "401d" });
    expect(problemsOf(() => parseConfig(settings)).join()).toContain("SESSION_TTL: must be at most 400 days");
    expect(parseConfig(await validSettings({ SESSION_TTL: "400d" })).sessionTtl).toBe(400 * 86400);
  });

  it("refuses an assertion key without kid or without the private part", async () => {
    const settings = await validSettings();
    const jwk = JSON.parse(settings.ASSERTION_SIGNING_KEY!) as Record<string, unknown>;
    const { kid: _kid, ...noKid } = jwk;
    const { d: _d, ...publicOnly } = jwk;
    expect(problemsOf(() => parseConfig({ ...settings, ASSERTION_SIGNING_KEY: JSON.stringify(noKid) })).join()).toContain('must have a "kid"');
    expect(problemsOf(() => parseConfig({ ...settings, ASSERTION_SIGNING_KEY: JSON.stringify(publicOnly) })).join()).toContain('has no "d"');
  });
});

describe("config: OIDC_ALLOW_HTTP", () => {
  it("refuses an http issuer without it", async () => {
    const settings = await validSettings({ OIDC_ISSUER: "http://localhost:9090" });
    expect(problemsOf(() => parseConfig(settings)).join()).toContain("OIDC_ISSUER: uses http://");
  });

  it.each(["http://localhost:9090", "http://127.0.0.1:9090", "http://[::1]:9090"])("allows the loopback issuer %s", async (issuer) => {
    const config = parseConfig(await validSettings({ OIDC_ISSUER: issuer, OIDC_ALLOW_HTTP: "true" }));
    expect(config.allowHttpIssuer).toBe(true);
  });

  it.each(["http://identity.testkontur.ru", "http://10.0.0.5", "http://localhost.evil.com"])("does not allow the non-loopback issuer %s", async (issuer) => {
    const settings = await validSettings({ OIDC_ISSUER: issuer, OIDC_ALLOW_HTTP: "true" });
    expect(problemsOf(() => parseConfig(settings)).join()).toContain("OIDC_ALLOW_HTTP: allows http:// only for a loopback issuer");
  });

  it("leaves https issuers strict even when set", async () => {
    const config = parseConfig(await validSettings({ OIDC_ALLOW_HTTP: "true" }));
    expect(config.allowHttpIssuer).toBe(false);
  });
});

describe("config: value parsers", () => {
  it.each([
    ["90", 90],
    ["45s", 45],
    ["30m", 1800],
    ["8h", 28800],
    ["1d", 86400],
    [" 2h ", 7200],
  ])("parseDuration(%j) = %i", (raw, seconds) => expect(parseDuration(raw)).toBe(seconds));

  it.each(["", "1.5h", "-5", "5w", "h", "1h30m"])("parseDuration(%j) is undefined", (raw) => expect(parseDuration(raw)).toBeUndefined());

  it("parseList drops blanks", () => expect(parseList(" a, ,b ,")).toEqual(["a", "b"]));
});

describe("config: OIDC_TIMEOUT and ASSERTION_PREVIOUS_PUBLIC_KEY", () => {
  it("OIDC_TIMEOUT defaults to 5 seconds and takes 1 to 30", async () => {
    expect(parseConfig(await validSettings()).oidcTimeout).toBe(5);
    expect(parseConfig(await validSettings({ OIDC_TIMEOUT: "2s" })).oidcTimeout).toBe(2);
  });

  it.each([
    ["0", "OIDC_TIMEOUT: must be at least 1 seconds"],
    ["31", "OIDC_TIMEOUT: must be at most 30 seconds"],
    ["soon", "OIDC_TIMEOUT: must be whole seconds"],
  ])("OIDC_TIMEOUT=%s is refused", async (value, message) => {
    const settings = await validSettings({ OIDC_TIMEOUT: value });
    expect(problemsOf(() => parseConfig(settings)).join("\n")).toContain(message);
  });

  it("ASSERTION_PREVIOUS_PUBLIC_KEY is unset by default, and takes a public JWK or the JWK set /_auth/jwks.json shows", async () => {
    expect(parseConfig(await validSettings()).assertionPreviousKeys).toEqual([]);
    const { d: _d, ...publicKey } = await signingJwk();
    const single = parseConfig(await validSettings({ ASSERTION_PREVIOUS_PUBLIC_KEY: JSON.stringify(publicKey) }));
    expect(single.assertionPreviousKeys.map((key) => key.kid)).toEqual([publicKey.kid]);
    const { d: _d2, ...another } = await signingJwk("OKP");
    const set = parseConfig(await validSettings({ ASSERTION_PREVIOUS_PUBLIC_KEY: JSON.stringify({ keys: [publicKey, another] }) }));
    expect(set.assertionPreviousKeys.map((key) => key.kid)).toEqual([publicKey.kid, another.kid]);
  });

  it("ASSERTION_PREVIOUS_PUBLIC_KEY refuses a private key (without echoing it), the signing key's kid, and anything else", async () => {
    const settings = await validSettings();
    const privateKey = await signingJwk();
    const privateProblems = problemsOf(() => parseConfig({ ...settings, ASSERTION_PREVIOUS_PUBLIC_KEY: JSON.stringify(privateKey) })).join("\n");
    expect(privateProblems).toContain('ASSERTION_PREVIOUS_PUBLIC_KEY: holds a private key ("d")');
    expect(privateProblems).not.toContain(privateKey.d!);
    const { d: _d, ...signingPublic } = JSON.parse(settings.ASSERTION_SIGNING_KEY!) as Record<string, unknown>;
    expect(problemsOf(() => parseConfig({ ...settings, ASSERTION_PREVIOUS_PUBLIC_KEY: JSON.stringify(signingPublic) })).join()).toContain(
      "has the kid of ASSERTION_SIGNING_KEY",
    );
    expect(problemsOf(() => parseConfig({ ...settings, ASSERTION_PREVIOUS_PUBLIC_KEY: "not json" })).join()).toContain("ASSERTION_PREVIOUS_PUBLIC_KEY: is not JSON");
    expect(problemsOf(() => parseConfig({ ...settings, ASSERTION_PREVIOUS_PUBLIC_KEY: '{"keys":[]}' })).join()).toContain("must be a public JWK or a JWK set");
    expect(problemsOf(() => parseConfig({ ...settings, ASSERTION_PREVIOUS_PUBLIC_KEY: '{"kty":"RSA","kid":"r","n":"x","e":"AQAB"}' })).join()).toContain(
      "must be EC P-256 or OKP Ed25519 public keys",
    );
  });
});
