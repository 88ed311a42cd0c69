/**
 * `SERVICE_TOKENS` (a secret): machine clients, as comma-separated `name=<base64url SHA-256 of the
 * secret>`. Only the hash is ever configured, so neither the settings nor a leaked `.dev.vars`
 * hold a usable secret; `npm run setup -- --add-service NAME` makes both. The hash values are
 * never echoed in a problem, only the names.
 */
import { base64urlDecode, parseList, type SettingsReader } from "./reader";

/** The headers a machine client presents (the convention of Cloudflare Access service tokens). */
export const CLIENT_ID_HEADER = "x-gate-client-id";
export const CLIENT_SECRET_HEADER = "x-gate-client-secret";

/** A service's name: what `X-Gate-Client-Id` carries and `X-Forwarded-User: service:<name>` shows. */
export const SERVICE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** SHA-256 digests of the secrets, by service name. */
export type ServiceTokens = ReadonlyMap<string, Uint8Array>;

export function readServiceTokens(reader: SettingsReader): ServiceTokens {
  const tokens = new Map<string, Uint8Array>();
  for (const [position, entry] of parseList(reader.raw("SERVICE_TOKENS")).entries()) {
    const at = entry.indexOf("=");
    const name = at === -1 ? "" : entry.slice(0, at).trim();
    const hash = at === -1 ? undefined : base64urlDecode(entry.slice(at + 1));
    if (!SERVICE_NAME.test(name)) {
      reader.problem("SERVICE_TOKENS", `entry ${position + 1} must be name=<hash> with a name of letters, digits, . _ - (at most 64)`);
    } else if (hash?.length !== 32) {
      reader.problem("SERVICE_TOKENS", `the hash of "${name}" must be the base64url SHA-256 of its secret (32 bytes); make one with npm run setup -- --add-service ${name}`);
    } else if (tokens.has(name)) {
      reader.problem("SERVICE_TOKENS", `"${name}" is listed twice`);
    } else {
      tokens.set(name, hash);
    }
  }
  return tokens;
}
