/**
 * Settings: every Worker var and secret of the contract (../README.md, "Configuration"), parsed and
 * validated in one pass into a frozen `Config`. All problems are collected and reported together,
 * each naming the setting; values of secrets are never echoed.
 */
import { ConfigError } from "./errors";

/** Names of every setting the gate reads; `Bindings` in src/env.ts is derived from this list. */
export const SETTING_NAMES = [
  "OIDC_ISSUER",
  "OIDC_CLIENT_ID",
  "OIDC_CLIENT_SECRET",
  "OIDC_CLIENT_AUTH",
  "OIDC_SCOPES",
  "OIDC_PKCE",
  "OIDC_ALLOW_HTTP",
  "OIDC_TIMEOUT",
  "ORIGIN_URL",
  "SESSION_SECRETS",
  "SESSION_TTL",
  "SESSION_IDLE_TTL",
  "SESSION_CHECK_INTERVAL",
  "ASSERTION_SIGNING_KEY",
  "ASSERTION_PREVIOUS_PUBLIC_KEY",
  "PUBLIC_PATHS",
  "API_PATHS",
  "ALLOWED_EMAILS",
  "ALLOWED_EMAIL_DOMAINS",
  "ALLOWED_SUBJECTS",
  "LOGOUT_AT_PROVIDER",
  "PASS_ACCESS_TOKEN",
  "AUTH_PREFIX",
] as const;

export type SettingName = (typeof SETTING_NAMES)[number];
export type Settings = Partial<Record<SettingName, string>>;

export type ClientAuthMethod = "client_secret_post" | "client_secret_basic";
export type PkceMode = "auto" | "on" | "off";

/** The private JWK that signs `X-Auth-Assertion`; imported lazily by src/assertion.ts. */
export interface AssertionKeyJwk extends JsonWebKey {
  kid: string;
  kty: "EC" | "OKP";
  d: string;
}

/** A public JWK that `/_auth/jwks.json` keeps publishing after a rotation of the assertion key. */
export interface AssertionPublicJwk extends JsonWebKey {
  kid: string;
  kty: "EC" | "OKP";
}

export interface Config {
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
  readonly publicPaths: readonly string[];
  readonly apiPaths: readonly string[];
  readonly allowedEmails: readonly string[];
  readonly allowedEmailDomains: readonly string[];
  readonly allowedSubjects: readonly string[];
  readonly logoutAtProvider: boolean;
  readonly passAccessToken: boolean;
  readonly authPrefix: string;
}

const DURATION = /^(\d+)\s*([smhd]?)$/;
const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400 };
const KEY_HINT = "generate one with: openssl rand -base64 32 | tr '+/' '-_' | tr -d '='";
const MAX_OIDC_TIMEOUT = 30;
const MAX_SESSION_TTL = 400 * 86400;
// Characters the URL parser rewrites or that mean something else in a path pattern.
// eslint-disable-next-line no-control-regex
const UNCLEAR_PATTERN = /[?#%\\\t\n\r\f\v\u0000-\u001f\u007f]|\/\//;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** Parses `90`, `30m`, `8h`, `1d` into seconds; undefined when malformed. */
export function parseDuration(raw: string): number | undefined {
  const match = DURATION.exec(raw.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2] ?? ""]!;
}

/** Comma-separated list, spaces ignored, empty entries dropped. */
export function parseList(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

export function base64urlDecode(raw: string): Uint8Array | undefined {
  const normalized = raw.trim().replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(normalized)) return undefined;
  try {
    const binary = atob(normalized + "=".repeat((4 - (normalized.length % 4)) % 4));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Collects problems while reading settings; each reader returns a usable placeholder on failure so
 * that one pass reports everything.
 */
class SettingsReader {
  readonly problems: string[] = [];

  constructor(private readonly settings: Settings) {}

  raw(name: SettingName): string | undefined {
    const value = this.settings[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  }

  problem(name: SettingName, message: string): void {
    this.problems.push(`${name}: ${message}`);
  }

  required(name: SettingName, what: string): string {
    const value = this.raw(name);
    if (value === undefined) this.problem(name, `is required (${what})`);
    return value ?? "";
  }

  oneOf<T extends string>(name: SettingName, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const lowered = value.toLowerCase();
    const match = allowed.find((option) => option === lowered);
    if (match === undefined) {
      this.problem(name, `must be one of ${allowed.join(", ")} (got "${value}")`);
      return fallback;
    }
    return match;
  }

  flag(name: SettingName): boolean {
    return this.oneOf(name, ["true", "false"], "false") === "true";
  }

  duration(name: SettingName, fallback: string, minimum: number): number;
  duration(name: SettingName, fallback: undefined, minimum: number): number | undefined;
  duration(name: SettingName, fallback: string | undefined, minimum: number): number | undefined {
    const value = this.raw(name) ?? fallback;
    if (value === undefined) return undefined;
    const seconds = parseDuration(value);
    if (seconds === undefined) {
      this.problem(name, `must be whole seconds or a number with s, m, h or d, like 90, 30m, 8h, 1d (got "${value}")`);
      return minimum;
    }
    if (seconds < minimum) {
      this.problem(name, `must be at least ${minimum} seconds (got "${value}")`);
      return minimum;
    }
    return seconds;
  }

  url(name: SettingName, value: string): URL | undefined {
    try {
      return new URL(value);
    } catch {
      this.problem(name, `must be an absolute URL like https://example.com (got "${value}")`);
      return undefined;
    }
  }
}

function readIssuer(reader: SettingsReader): { issuer: URL; allowHttpIssuer: boolean } {
  const allowHttp = reader.flag("OIDC_ALLOW_HTTP");
  const raw = reader.raw("OIDC_ISSUER") ?? "https://identity.kontur.ru";
  const issuer = reader.url("OIDC_ISSUER", raw) ?? new URL("https://identity.kontur.ru");
  if (issuer.search || issuer.hash) reader.problem("OIDC_ISSUER", `must not have a query or fragment (got "${raw}")`);
  if (issuer.protocol === "http:") {
    if (!allowHttp) {
      reader.problem("OIDC_ISSUER", `uses http://; use https://, or set OIDC_ALLOW_HTTP=true for a loopback development provider (got "${raw}")`);
    } else if (!isLoopbackHost(issuer.hostname)) {
      reader.problem("OIDC_ALLOW_HTTP", `allows http:// only for a loopback issuer (127.0.0.1, localhost, [::1]); "${issuer.host}" is not one`);
    }
  } else if (issuer.protocol !== "https:") {
    reader.problem("OIDC_ISSUER", `must be an https:// URL (got "${raw}")`);
  }
  return { issuer, allowHttpIssuer: allowHttp && issuer.protocol === "http:" };
}

function readOrigin(reader: SettingsReader): URL | undefined {
  const raw = reader.raw("ORIGIN_URL");
  if (raw === undefined) return undefined;
  const url = reader.url("ORIGIN_URL", raw);
  if (url === undefined) return undefined;
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    reader.problem("ORIGIN_URL", `must be an http:// or https:// URL (got "${raw}")`);
  }
  if (url.search || url.hash || url.username || url.password) {
    reader.problem("ORIGIN_URL", `must be a base URL without credentials, query or fragment (got "${url.origin}${url.pathname}…")`);
  }
  return url;
}

function readSessionSecrets(reader: SettingsReader): Uint8Array[] {
  const entries = parseList(reader.required("SESSION_SECRETS", `comma-separated base64url keys of at least 32 bytes; ${KEY_HINT}`));
  const keys: Uint8Array[] = [];
  entries.forEach((entry, index) => {
    const bytes = base64urlDecode(entry);
    if (bytes === undefined) {
      reader.problem("SESSION_SECRETS", `key #${index + 1} is not base64url; ${KEY_HINT}`);
    } else if (bytes.length < 32) {
      reader.problem("SESSION_SECRETS", `key #${index + 1} decodes to ${bytes.length} bytes, at least 32 are needed; ${KEY_HINT}`);
    } else {
      keys.push(bytes);
    }
  });
  return keys;
}

function readAssertionKey(reader: SettingsReader): AssertionKeyJwk {
  const placeholder: AssertionKeyJwk = { kty: "EC", kid: "", d: "" };
  const raw = reader.required("ASSERTION_SIGNING_KEY", "a private JWK (EC P-256 or Ed25519) with a kid; see README, Deploy");
  if (raw === "") return placeholder;
  let jwk: unknown;
  try {
    jwk = JSON.parse(raw);
  } catch {
    reader.problem("ASSERTION_SIGNING_KEY", "is not JSON; it must be a private JWK such as {\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":…,\"x\":…,\"y\":…,\"d\":…}");
    return placeholder;
  }
  if (typeof jwk !== "object" || jwk === null) {
    reader.problem("ASSERTION_SIGNING_KEY", "must be a JSON object (a private JWK)");
    return placeholder;
  }
  const key = jwk as Record<string, unknown>;
  const curveOk = (key.kty === "EC" && key.crv === "P-256") || (key.kty === "OKP" && key.crv === "Ed25519");
  if (!curveOk) reader.problem("ASSERTION_SIGNING_KEY", "must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key");
  if (typeof key.d !== "string") reader.problem("ASSERTION_SIGNING_KEY", "must be the private key (the JWK has no \"d\")");
  if (typeof key.kid !== "string" || key.kid === "") reader.problem("ASSERTION_SIGNING_KEY", "must have a \"kid\" so origins can pick the key from /_auth/jwks.json");
  return curveOk && typeof key.d === "string" && typeof key.kid === "string" ? (key as unknown as AssertionKeyJwk) : placeholder;
}

/** The public part of an EC P-256 or Ed25519 JWK with a kid; the problem when it is not one. */
function publicKeyProblem(key: Record<string, unknown>): string | undefined {
  if ("d" in key) return 'holds a private key ("d"); put only the public key here, as /_auth/jwks.json shows it';
  const ec = key.kty === "EC" && key.crv === "P-256" && typeof key.x === "string" && typeof key.y === "string";
  const okp = key.kty === "OKP" && key.crv === "Ed25519" && typeof key.x === "string";
  if (!ec && !okp) return "must be EC P-256 or OKP Ed25519 public keys (with x, and y for EC)";
  if (typeof key.kid !== "string" || key.kid === "") return 'must have a "kid", as /_auth/jwks.json shows it';
  return undefined;
}

/**
 * The key(s) published next to the signing key during a rotation: a public JWK, or a JWK set as
 * `/_auth/jwks.json` returns it (so the current set can be pasted in before the new key goes live).
 */
function readPreviousAssertionKeys(reader: SettingsReader, signing: AssertionKeyJwk): AssertionPublicJwk[] {
  const raw = reader.raw("ASSERTION_PREVIOUS_PUBLIC_KEY");
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", "is not JSON; it must be a public JWK or the JWK set copied from /_auth/jwks.json");
    return [];
  }
  const set = typeof parsed === "object" && parsed !== null && "keys" in parsed ? (parsed as { keys: unknown }).keys : [parsed];
  if (!Array.isArray(set) || set.length === 0 || !set.every((key) => typeof key === "object" && key !== null)) {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", "must be a public JWK or a JWK set {\"keys\":[…]}");
    return [];
  }
  const keys = set as Record<string, unknown>[];
  const problem = keys.map(publicKeyProblem).find((found) => found !== undefined);
  if (problem !== undefined) {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", problem);
    return [];
  }
  if (keys.some((key) => key.kid === signing.kid)) {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", `has the kid of ASSERTION_SIGNING_KEY ("${signing.kid}"); the new signing key needs a new kid`);
    return [];
  }
  return keys as unknown as AssertionPublicJwk[];
}

function readTimeout(reader: SettingsReader): number {
  const seconds = reader.duration("OIDC_TIMEOUT", "5", 1);
  // A check waits for the provider: longer than this would hold visitors' requests too long.
  if (seconds > MAX_OIDC_TIMEOUT) reader.problem("OIDC_TIMEOUT", `must be at most ${MAX_OIDC_TIMEOUT} seconds (got ${seconds}s)`);
  return Math.min(seconds, MAX_OIDC_TIMEOUT);
}

function readPathPatterns(reader: SettingsReader, name: SettingName): string[] {
  const patterns = parseList(reader.raw(name));
  for (const pattern of patterns) {
    if (!pattern.startsWith("/") || pattern.slice(0, -1).includes("*")) {
      reader.problem(name, `pattern "${pattern}" must start with / and may end with a single * (like /static/*)`);
    } else if (UNCLEAR_PATTERN.test(pattern) || hasDotSegmentPattern(pattern)) {
      // The URL parser would rewrite such a pattern (`/static/../*` into `/*`), silently widening it.
      reader.problem(name, `pattern "${pattern}" must be a plain path: no ?, #, %, \\, //, tabs, line breaks or . and .. segments`);
    }
  }
  return patterns;
}

function hasDotSegmentPattern(pattern: string): boolean {
  return pattern.replace(/\*$/, "").split("/").some((segment) => segment === "." || segment === "..");
}

function readAuthPrefix(reader: SettingsReader): string {
  const prefix = reader.raw("AUTH_PREFIX") ?? "/_auth";
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    reader.problem("AUTH_PREFIX", `must be a path like /_auth: starting with /, no trailing slash, letters, digits and . _ ~ - (got "${prefix}")`);
    return "/_auth";
  }
  return prefix;
}

function readScopes(reader: SettingsReader): string[] {
  const raw = reader.raw("OIDC_SCOPES") ?? "openid profile email";
  const scopes = raw.split(/\s+/).filter(Boolean);
  if (!scopes.includes("openid")) reader.problem("OIDC_SCOPES", `must include openid (got "${raw}")`);
  // Kontur refuses an authorization request whose scope string exceeds 300 characters.
  if (scopes.join(" ").length > 300) reader.problem("OIDC_SCOPES", "is longer than the 300 characters Kontur accepts");
  return scopes;
}

/** Parses and validates every setting; throws one ConfigError listing every problem. */
export function parseConfig(settings: Settings): Config {
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
    publicPaths: readPathPatterns(reader, "PUBLIC_PATHS"),
    apiPaths: readPathPatterns(reader, "API_PATHS"),
    allowedEmails: parseList(reader.raw("ALLOWED_EMAILS")).map((email) => email.toLowerCase()),
    allowedEmailDomains: parseList(reader.raw("ALLOWED_EMAIL_DOMAINS")).map((domain) => domain.toLowerCase().replace(/^@/, "")),
    allowedSubjects: parseList(reader.raw("ALLOWED_SUBJECTS")),
    logoutAtProvider: reader.flag("LOGOUT_AT_PROVIDER"),
    passAccessToken: reader.flag("PASS_ACCESS_TOKEN"),
    authPrefix: readAuthPrefix(reader),
  };
  const config: Config = { ...settingsRead, assertionPreviousKeys: readPreviousAssertionKeys(reader, settingsRead.assertionKey) };
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return Object.freeze(config);
}
