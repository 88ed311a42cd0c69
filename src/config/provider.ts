/**
 * The provider's settings: issuer (https, or loopback http in development), the origin to forward
 * to, scopes within Kontur's limits, and the timeout of each provider call.
 */
import { isLoopbackHost, type SettingsReader } from "./reader";

const MAX_OIDC_TIMEOUT = 30;

export function readIssuer(reader: SettingsReader): { issuer: URL; allowHttpIssuer: boolean } {
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

export function readOrigin(reader: SettingsReader): URL | undefined {
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

export function readTimeout(reader: SettingsReader): number {
  const seconds = reader.duration("OIDC_TIMEOUT", "5", 1);
  // A check waits for the provider: longer than this would hold visitors' requests too long.
  if (seconds > MAX_OIDC_TIMEOUT) reader.problem("OIDC_TIMEOUT", `must be at most ${MAX_OIDC_TIMEOUT} seconds (got ${seconds}s)`);
  return Math.min(seconds, MAX_OIDC_TIMEOUT);
}

export function readScopes(reader: SettingsReader): string[] {
  const raw = reader.raw("OIDC_SCOPES") ?? "openid profile email";
  const scopes = raw.split(/\s+/).filter(Boolean);
  if (!scopes.includes("openid")) reader.problem("OIDC_SCOPES", `must include openid (got "${raw}")`);
  // Kontur refuses an authorization request whose scope string exceeds 300 characters.
  if (scopes.join(" ").length > 300) reader.problem("OIDC_SCOPES", "is longer than the 300 characters Kontur accepts");
  return scopes;
}
