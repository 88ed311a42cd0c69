/**
 * Decisions on the path itself, no I/O: the path exactly as the origin will receive it, whether
 * encoding tricks make its meaning ambiguous, and pattern matching (`/static/*`, `/exact`).
 */

/** The path as the origin will see it, and whether encoding tricks make its meaning ambiguous. */
export interface CanonicalPath {
  /**
   * The path exactly as the origin receives it (`new URL()`'s percent-encoded form). Patterns are
   * matched against this, not a decoded form: origins differ in whether they decode, so only the
   * bytes they all receive give one answer (`/%73tatic/x` is not under `/static/`).
   */
  readonly path: string;
  /**
   * True when some origin could read the path differently from the gate: encoded slashes,
   * backslashes or percent signs, dot segments, `//`, `;` parameters, control characters, invalid
   * UTF-8, or Unicode that folds into any of those. Such a path never matches a public pattern.
   */
  readonly ambiguous: boolean;
}

// Before decoding: an encoded slash, backslash, NUL or `;`, and an encoded `%` (a second decoding
// by the origin, or a proxy in front of it, would reveal `%2F`, `%2e%2e`, …). A raw `\` or `;`.
const AMBIGUOUS_RAW = /%(2f|5c|00|3b|25)|[\\;]/i;
// After decoding: a segment of dots, optionally padded with whitespace (`..`, `...`, `.. `), which
// Windows servers (trailing dots and spaces dropped) and URL parsers read as `.` or `..`. Tested a
// segment at a time: one regular expression over the whole path backtracks quadratically on a long
// run of dots, and this runs for every anonymous request.
const DOTS_ONLY = /^[.\s]+$/;

function hasDotSegment(decoded: string): boolean {
  return decoded.split("/").some((segment) => segment.includes(".") && DOTS_ONLY.test(segment));
}
// C0 and C1 control characters and DEL: never part of a sane path, and origins parse them differently.
// eslint-disable-next-line no-control-regex
export const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Slash, backslash and dot lookalikes that NFKC keeps but Windows "best fit" code pages and some
// frameworks fold into `/`, `\` or `.` (∕ ⁄ ∖ ⧵ ⧸ ⧹ 。).
const LOOKALIKE = /[\u2044\u2215\u2216\u29f5\u29f8\u29f9\u3002]/;

/**
 * `pathname` is what `new URL()` produced, i.e. what the origin receives (the URL parser has
 * already resolved `..`, `%2e%2e` and `\` on the way). Tomcat reads `/static/..;/admin` as
 * `/admin`, IIS folds fullwidth `．．` into `..`, a double-decoding proxy turns `%252F` into `/`:
 * anything an origin could resolve differently is flagged instead of guessed at.
 */
export function canonicalPath(pathname: string): CanonicalPath {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return { path: pathname, ambiguous: true };
  }
  const ambiguous =
    AMBIGUOUS_RAW.test(pathname) ||
    hasDotSegment(decoded) ||
    CONTROL.test(decoded) ||
    decoded.includes("//") ||
    LOOKALIKE.test(decoded) ||
    decoded.normalize("NFKC") !== decoded;
  return { path: pathname, ambiguous };
}

/**
 * `/static/*` matches `/static/` and everything below it (not `/staticfoo`, not `/static`);
 * a pattern without `*` matches exactly. Both sides are in the form the origin receives: the
 * pattern is percent-encoded like a URL path (`/файлы/*` → `/%D1%84%D0%B0%D0%B9%D0%BB%D1%8B/*`).
 * Case-sensitive: on a case-insensitive origin `/STATIC/x` is the same file, but it stays
 * protected, which errs on the safe side.
 */
export function matchesPattern(path: string, pattern: string): boolean {
  const wildcard = pattern.endsWith("*");
  const literal = new URL(wildcard ? pattern.slice(0, -1) : pattern, "http://pattern.invalid").pathname;
  return wildcard ? path.startsWith(literal) : path === literal;
}

export function matchesAny(path: CanonicalPath, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => matchesPattern(path.path, pattern));
}
