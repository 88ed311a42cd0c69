/**
 * Reading settings: the list of names the gate reads, the small parsers (durations, lists, base64url)
 * and a reader that collects every problem instead of stopping at the first, so an operator fixes
 * all of them in one pass. Each concern's readers (provider, keys, paths) build on it.
 */
import { ConfigError } from "../common/errors";

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
  "ASSERTION_MODE",
  "ROUTES",
  "SERVICE_TOKENS",
  "CORS_ORIGINS",
  "CORS_PREFLIGHT",
  "SESSION_REVALIDATE",
  "CLAIM_HEADERS",
] as const;

export type SettingName = (typeof SETTING_NAMES)[number];
/**
 * Every setting is a string, except `ROUTES`: written in wrangler.toml as a TOML array of tables
 * under `[vars]`, it reaches the Worker as the parsed array rather than as JSON text.
 */
export type Settings = Partial<Record<Exclude<SettingName, "ROUTES">, string>> & { readonly ROUTES?: unknown };

const DURATION = /^(\d+)\s*([smhd]?)$/;
const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400 };
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

/**
 * Lower-cases ASCII letters only. `String.prototype.toLowerCase` also folds look-alikes into ASCII
 * (the Kelvin sign U+212A becomes `k`), which would let `admin@\u212Aontur.ru` match `kontur.ru`.
 */
export function asciiLowerCase(text: string): string {
  return text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/** Printable ASCII without spaces: the only addresses and domains the allow-lists compare. */
export function isAsciiAddress(text: string): boolean {
  return /^[\x21-\x7e]+$/.test(text);
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
export class SettingsReader {
  readonly problems: string[] = [];

  constructor(private readonly settings: Settings) {}

  raw(name: SettingName): string | undefined {
    const value = this.value(name);
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  }

  /** The setting as the Worker received it: a string, or (ROUTES from wrangler.toml) parsed TOML. */
  value(name: SettingName): unknown {
    return this.settings[name];
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

/** Throws one ConfigError listing every problem the reader collected. */
export function throwIfProblems(reader: SettingsReader): void {
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
}
