/**
 * Where a visitor may be sent back to after a login or logout: only a path on this site.
 */
import type { Config } from "../config";
import { CONTROL } from "./path";

/**
 * The longest return path kept, counted as stored (percent-encoded, so in bytes). It travels in the
 * sealed pending-login cookie, which must stay under the 4,096 bytes a browser keeps: 2,000
 * characters of Cyrillic in `rd` become 12,000 bytes once encoded, and a cookie the browser drops
 * would make the login fail at the callback every time.
 */
export const MAX_RETURN_PATH = 2048;

/**
 * A return target (`rd`) reduced to a path on this site. Anything that could lead elsewhere —
 * `//host`, `/\host`, schemes, userinfo, control characters or whitespace — yields `/`, and so
 * does a path longer than `MAX_RETURN_PATH` once percent-encoded.
 */
export function safeReturnPath(target: string | undefined | null, siteOrigin: string): string {
  if (typeof target !== "string" || target.length === 0 || target.length > MAX_RETURN_PATH) return "/";
  // Browsers strip tabs and newlines and treat `\` like `/`, so `/\t/evil` or `/\evil` become `//evil`.
  if (!target.startsWith("/") || target.startsWith("//") || /[\\\s]/.test(target) || CONTROL.test(target)) return "/";
  let url: URL;
  try {
    url = new URL(target, siteOrigin);
  } catch {
    return "/";
  }
  if (url.origin !== siteOrigin) return "/";
  const path = `${url.pathname}${url.search}${url.hash}`;
  return path.startsWith("//") || path.length > MAX_RETURN_PATH ? "/" : path;
}

/** The gate's login link that returns to `returnTo` (a path already reduced by `safeReturnPath`). */
export function loginPath(config: Config, returnTo: string): string {
  return `${config.authPrefix}/login?rd=${encodeURIComponent(returnTo)}`;
}
