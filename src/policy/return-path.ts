/**
 * Where a visitor may be sent back to after a login or logout: only a path on this site.
 */
import type { Config } from "../config";
import { CONTROL } from "./path";

/**
 * A return target (`rd`) reduced to a path on this site. Anything that could lead elsewhere —
 * `//host`, `/\host`, schemes, userinfo, control characters or whitespace — yields `/`.
 */
export function safeReturnPath(target: string | undefined | null, siteOrigin: string): string {
  if (typeof target !== "string" || target.length === 0 || target.length > 2048) return "/";
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
  return path.startsWith("//") ? "/" : path;
}

/** The gate's login link that returns to `returnTo` (a path already reduced by `safeReturnPath`). */
export function loginPath(config: Config, returnTo: string): string {
  return `${config.authPrefix}/login?rd=${encodeURIComponent(returnTo)}`;
}
