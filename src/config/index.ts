/**
 * Settings: every Worker var and secret of the contract (docs/configuration.md), parsed and
 * validated in one pass into a frozen `Config`. All problems are collected and reported together,
 * each naming the setting; values of secrets are never echoed.
 */
import { readClaimHeaders, readRevalidate, type ClaimHeader, type RevalidateMode } from "./claims";
import { readCors, type CorsSettings } from "./cors";
import { readAssertionKey, readAssertionMode, readPreviousAssertionKeys, readSessionSecrets, type AssertionKeyJwk, type AssertionMode, type AssertionPublicJwk } from "./keys";
import { readAuthPrefix, readPathPatterns } from "./paths";
import { readIssuer, readOrigin, readScopes, readTimeout } from "./provider";
import { asciiLowerCase, isAsciiAddress, parseList, SettingsReader, throwIfProblems, type SettingName, type Settings } from "./reader";
import { readRoutes, type HasService, type Route } from "./routes";
import { readServiceTokens, type ServiceTokens } from "./service-tokens";

export type { AssertionKeyJwk, AssertionMode, AssertionPublicJwk } from "./keys";
export type { ClaimHeader, RevalidateMode } from "./claims";
export type { PreflightMode } from "./cors";
export type { AllowLists, HasService, Route, RouteAccess, Upstream } from "./routes";
export type { ServiceTokens } from "./service-tokens";
export { asciiLowerCase, base64urlDecode, isAsciiAddress, isLoopbackHost, parseDuration, parseList, SETTING_NAMES, type SettingName, type Settings } from "./reader";

export type ClientAuthMethod = "client_secret_post" | "client_secret_basic";
export type PkceMode = "auto" | "on" | "off";

export interface Config extends CorsSettings {
  readonly issuer: URL;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly clientAuth: ClientAuthMethod;
  readonly scopes: readonly string[];
  readonly pkce: PkceMode;
  /** True only for a loopback `http://` issuer with `OIDC_ALLOW_HTTP=true`. */
  readonly allowHttpIssuer: boolean;
  /** Seconds each call to the provider may take. */
  readonly oidcTimeout: number;
  readonly originUrl: URL | undefined;
  /** Raw key bytes, newest first: the first seals, all open. */
  readonly sessionSecrets: readonly Uint8Array[];
  /** Seconds. */
  readonly sessionTtl: number;
  readonly sessionIdleTtl: number | undefined;
  readonly sessionCheckInterval: number;
  readonly assertionKey: AssertionKeyJwk;
  /** Public keys of earlier assertion keys, still published during a rotation. */
  readonly assertionPreviousKeys: readonly AssertionPublicJwk[];
  readonly assertionMode: AssertionMode;
  readonly publicPaths: readonly string[];
  readonly apiPaths: readonly string[];
  readonly allowedEmails: readonly string[];
  readonly allowedEmailDomains: readonly string[];
  readonly allowedSubjects: readonly string[];
  readonly logoutAtProvider: boolean;
  readonly passAccessToken: boolean;
  readonly authPrefix: string;
  /** `ROUTES`, in order; empty: the global settings apply everywhere. */
  readonly routes: readonly Route[];
  /** `SERVICE_TOKENS`: SHA-256 of each machine client's secret, by name. */
  readonly serviceTokens: ServiceTokens;
  /** `userinfo`: each check asks the provider's userinfo with the session's access token. */
  readonly sessionRevalidate: RevalidateMode;
  /** Extra claims sent to the origin as headers (and in the assertion). */
  readonly claimHeaders: readonly ClaimHeader[];
}

export interface ParseOptions {
  /**
   * Whether the Worker has a service binding of this name, for `ROUTES` origins written as
   * `service:BINDING`; left out where there are no bindings to look at (npm run check).
   */
  readonly hasService?: HasService;
}

const MAX_SESSION_TTL = 400 * 86400;

/** An e-mail allow-list, ASCII-lower-cased; an entry with other characters could never match. */
function readAddresses(reader: SettingsReader, name: SettingName): string[] {
  const entries = parseList(reader.raw(name));
  for (const entry of entries.filter((e) => !isAsciiAddress(e))) {
    reader.problem(name, `"${entry}" is not ASCII; write an internationalized domain in its xn-- form`);
  }
  return entries.filter(isAsciiAddress).map(asciiLowerCase);
}

/** Parses and validates every setting; throws one ConfigError listing every problem. */
export function parseConfig(settings: Settings, options: ParseOptions = {}): Config {
  const reader = new SettingsReader(settings);
  const { issuer, allowHttpIssuer } = readIssuer(reader);
  const problemsBefore = reader.problems.length;
  const sessionTtl = reader.duration("SESSION_TTL", "8h", 2);
  // Browsers cap a cookie's Max-Age at 400 days (RFC 6265bis); a longer session could not be stored.
  if (sessionTtl > MAX_SESSION_TTL) reader.problem("SESSION_TTL", `must be at most 400 days, the longest a browser keeps a cookie (got ${sessionTtl}s)`);
  const sessionCheckInterval = reader.duration("SESSION_CHECK_INTERVAL", "5m", 1);
  // Compared only when both parsed, so one typo is not reported twice.
  if (reader.problems.length === problemsBefore && sessionCheckInterval >= sessionTtl) {
    reader.problem("SESSION_CHECK_INTERVAL", `must be shorter than SESSION_TTL (${sessionCheckInterval}s is not less than ${sessionTtl}s)`);
  }
  const serviceTokens = readServiceTokens(reader);
  const settingsRead: Omit<Config, "assertionPreviousKeys"> = {
    issuer,
    allowHttpIssuer,
    oidcTimeout: readTimeout(reader),
    clientId: reader.required("OIDC_CLIENT_ID", "the client id from Контур.Интегратор"),
    clientSecret: reader.required("OIDC_CLIENT_SECRET", "the client secret (API key) from Контур.Интегратор, set with `wrangler secret put OIDC_CLIENT_SECRET`"),
    clientAuth: reader.oneOf("OIDC_CLIENT_AUTH", ["client_secret_post", "client_secret_basic"], "client_secret_post"),
    scopes: readScopes(reader),
    pkce: reader.oneOf("OIDC_PKCE", ["auto", "on", "off"], "auto"),
    originUrl: readOrigin(reader),
    sessionSecrets: readSessionSecrets(reader),
    sessionTtl,
    sessionIdleTtl: reader.duration("SESSION_IDLE_TTL", undefined, 1),
    sessionCheckInterval,
    assertionKey: readAssertionKey(reader),
    assertionMode: readAssertionMode(reader),
    publicPaths: readPathPatterns(reader, "PUBLIC_PATHS"),
    apiPaths: readPathPatterns(reader, "API_PATHS"),
    allowedEmails: readAddresses(reader, "ALLOWED_EMAILS"),
    allowedEmailDomains: readAddresses(reader, "ALLOWED_EMAIL_DOMAINS").map((domain) => domain.replace(/^@/, "")),
    allowedSubjects: parseList(reader.raw("ALLOWED_SUBJECTS")),
    logoutAtProvider: reader.flag("LOGOUT_AT_PROVIDER"),
    passAccessToken: reader.flag("PASS_ACCESS_TOKEN"),
    authPrefix: readAuthPrefix(reader),
    routes: readRoutes(reader, serviceTokens, options.hasService),
    serviceTokens,
    ...readCors(reader),
    sessionRevalidate: readRevalidate(reader),
    claimHeaders: readClaimHeaders(reader),
  };
  const config: Config = { ...settingsRead, assertionPreviousKeys: readPreviousAssertionKeys(reader, settingsRead.assertionKey) };
  throwIfProblems(reader);
  return Object.freeze(config);
}
