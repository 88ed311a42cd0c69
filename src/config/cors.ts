/**
 * Cross-origin settings: `CORS_ORIGINS` (the origins allowed to make credentialed cross-origin
 * requests and WebSocket upgrades) and `CORS_PREFLIGHT` (who answers a preflight: the gate, or a
 * stripped copy forwarded to the origin). See src/policy/cors.ts for the decisions they feed.
 */
import { isLoopbackHost, parseList, type SettingsReader } from "./reader";

/** `gate`: the gate answers preflights from `CORS_ORIGINS`; `origin`: a bare OPTIONS goes to the origin. */
export type PreflightMode = "gate" | "origin";

export const PREFLIGHT_MODES: readonly PreflightMode[] = ["gate", "origin"];

export interface CorsSettings {
  /** Serialized origins (`https://app.example.ru`), compared exactly with a request's `Origin`. */
  readonly corsOrigins: readonly string[];
  readonly corsPreflight: PreflightMode;
}

/**
 * Each entry must be exactly an origin as browsers send it in `Origin` (scheme, host, port; no
 * path, no wildcard): a wildcard with credentials is what the CORS standard itself forbids, and a
 * near-miss entry would silently never match.
 */
function readCorsOrigins(reader: SettingsReader): string[] {
  const origins: string[] = [];
  for (const entry of parseList(reader.raw("CORS_ORIGINS"))) {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    const plainHttpAllowed = url?.protocol === "http:" && isLoopbackHost(url.hostname);
    if (url === undefined || (url.protocol !== "https:" && !plainHttpAllowed) || url.origin !== entry.replace(/\/$/, "").toLowerCase()) {
      reader.problem("CORS_ORIGINS", `"${entry}" must be an origin like https://app.example.ru: https (http only on loopback), no path, no wildcard`);
      continue;
    }
    origins.push(url.origin);
  }
  return origins;
}

export function readCors(reader: SettingsReader): CorsSettings {
  return {
    corsOrigins: readCorsOrigins(reader),
    corsPreflight: reader.oneOf("CORS_PREFLIGHT", PREFLIGHT_MODES, "gate"),
  };
}
