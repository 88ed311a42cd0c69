/**
 * Who gets through, decided without I/O: is the path public, does the client want JSON instead of
 * a login redirect, may this user in. Anything ambiguous is treated as protected.
 */
import { asciiLowerCase, isAsciiAddress, type AllowLists, type Config } from "../config";
import type { UserClaims } from "../oidc/claims";
import { matchesAny, type CanonicalPath } from "./path";

export function isPublicPath(path: CanonicalPath, config: Config): boolean {
  return !path.ambiguous && matchesAny(path, config.publicPaths);
}

/** A CORS preflight carries no credentials by design; the origin answers it. */
export function isPreflight(request: Request): boolean {
  // Browsers always name the page's origin in a preflight; without one it is just an OPTIONS request.
  return request.method === "OPTIONS" && request.headers.has("access-control-request-method") && request.headers.has("origin");
}

/**
 * Whether an unauthenticated request should get a login redirect (a top-level browser navigation)
 * or a 401 JSON answer (scripts, API clients, WebSockets, form posts): a redirect to the provider
 * is useless to a `fetch()` and shows up as a CORS error.
 */
export function wantsLoginRedirect(request: Request, path: CanonicalPath, config: Pick<Config, "apiPaths">): boolean {
  const headers = request.headers;
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  if (matchesAny(path, config.apiPaths)) return false;
  if (headers.get("upgrade")?.toLowerCase() === "websocket") return false;
  if (headers.get("x-requested-with")?.toLowerCase() === "xmlhttprequest") return false;
  const mode = headers.get("sec-fetch-mode");
  if (mode !== null) return mode === "navigate";
  return (headers.get("accept") ?? "").includes("text/html");
}

/** Browsers navigating get HTML pages; scripts and API clients get JSON. */
export function prefersHtml(request: Request): boolean {
  const mode = request.headers.get("sec-fetch-mode");
  if (mode !== null) return mode === "navigate";
  return (request.headers.get("accept") ?? "").includes("text/html");
}

/** The domain of a well-formed address with exactly one `@`. */
function emailDomain(email: string): string | undefined {
  const parts = email.split("@");
  return parts.length === 2 && parts[0] !== "" && parts[1] !== "" ? parts[1] : undefined;
}

/**
 * The user's address as the allow-lists compare it: only a verified one (`email_verified` not
 * `false`: anyone can type an address at a provider that does not check it), only ASCII, and
 * lower-cased for ASCII letters only, so no Unicode look-alike folds into a listed address.
 */
export function comparableEmail(user: UserClaims): string | undefined {
  if (user.email === undefined || user.email_verified === false || !isAsciiAddress(user.email)) return undefined;
  return asciiLowerCase(user.email);
}

/** True when no allow-list is configured, or the user matches one of them (the global lists: the `Config`). */
export function isAllowed(user: UserClaims, lists: AllowLists): boolean {
  const { allowedEmails, allowedEmailDomains, allowedSubjects } = lists;
  if (allowedEmails.length === 0 && allowedEmailDomains.length === 0 && allowedSubjects.length === 0) return true;
  if (allowedSubjects.includes(user.sub)) return true;
  const email = comparableEmail(user);
  const domain = email === undefined ? undefined : emailDomain(email);
  if (email === undefined || domain === undefined) return false;
  return allowedEmails.includes(email) || allowedEmailDomains.includes(domain);
}
