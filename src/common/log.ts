/**
 * One JSON line per decision, for Workers Logs (`[observability]` in wrangler.toml) or `wrangler tail`.
 * Every line carries the request it was made for — `ray` (the `cf-ray` header, or a generated id
 * when there is none, e.g. locally), `method` and `path` — and an `outcome`, so an operator can find
 * every decision about one request, and a visitor's reference number leads to the right lines.
 *
 * Callers pass codes, paths and reasons only: never tokens, authorization codes, cookie values or
 * secrets (the integration tests scan the log for them). A user appears only as `user`, a hash of
 * their `sub` (see `userHash`).
 */
import { AsyncLocalStorage } from "node:async_hooks";

export type LogEvent =
  | "config_invalid"
  | "login_started"
  | "login_ok"
  | "login_failed"
  | "session_revoked"
  | "session_expired"
  | "refresh_ok"
  | "refresh_failed"
  | "claims_updated"
  | "tokens_revoked"
  | "logout"
  | "forbidden"
  | "request_refused"
  | "provider_error"
  | "internal_error";

/** What a decision did, in one word an operator can filter on. */
const OUTCOME: Record<LogEvent, string> = {
  config_invalid: "error",
  login_started: "redirect",
  login_ok: "ok",
  login_failed: "failed",
  session_revoked: "ended",
  session_expired: "ended",
  refresh_ok: "ok",
  refresh_failed: "failed",
  claims_updated: "ok",
  tokens_revoked: "ok",
  logout: "ok",
  forbidden: "denied",
  request_refused: "refused",
  provider_error: "error",
  internal_error: "error",
};

type Value = string | number | boolean | undefined;

/**
 * Extra fields of a line. `sub` is refused by the type: a user is logged only as a hash, so the
 * raw subject never reaches a log store.
 */
export type LogFields = Record<string, Value> & { sub?: never };

interface RequestContext {
  readonly ray: string;
  readonly method: string;
  readonly path: string;
}

const current = new AsyncLocalStorage<RequestContext>();

/**
 * Cloudflare's ray id: 16 hex digits and the data centre. Anything else in `cf-ray` (a client's own
 * header where no edge sets it, e.g. `wrangler dev`) is not echoed into pages and logs.
 */
const RAY_ID = /^[0-9a-f]{16}(-[A-Z]{3,4})?$/;

/** One context per request, however often it is entered (a step of the gate, then its error page). */
const contexts = new WeakMap<Request, RequestContext>();

function contextOf(request: Request): RequestContext {
  let context = contexts.get(request);
  if (context === undefined) {
    const given = request.headers.get("cf-ray");
    const ray = given !== null && RAY_ID.test(given) ? given : crypto.randomUUID();
    context = { ray, method: request.method, path: new URL(request.url).pathname };
    contexts.set(request, context);
  }
  return context;
}

/**
 * Runs `handle` with `request` as the context of every line logged until it settles, including
 * work it leaves to `waitUntil`. Entered only around the steps that can log (the gate's
 * endpoints, a session check, a login, an error page), not around a signed-in request that
 * nothing interrupts; every entry for one request carries the same `ray`.
 */
export function withRequestLog<T>(request: Request, handle: () => T): T {
  return current.run(contextOf(request), handle);
}

/**
 * The current request's reference: its `cf-ray` (or generated id). Shown on error pages and in JSON
 * errors, and present in every log line of the request.
 */
export function requestRef(): string {
  return current.getStore()?.ray ?? crypto.randomUUID();
}

/**
 * Hash of a user's `sub` for the log: the first 16 hex digits of its SHA-256. An operator finds a
 * user's lines with `printf %s "$SUB" | sha256sum | cut -c1-16`; the log alone does not reveal
 * the subject.
 */
export async function userHash(sub: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(sub)));
  return Array.from(digest.subarray(0, 8), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Writes one line: the event, its outcome, the request it belongs to, then `fields`. */
export function log(event: LogEvent, fields: LogFields = {}): void {
  const line = JSON.stringify({ event, outcome: OUTCOME[event], ...current.getStore(), ...fields });
  if (OUTCOME[event] === "error") console.error(line);
  else console.log(line);
}

/** `log` for a decision about a known user, who appears as `user` (see `userHash`). */
export async function logUser(event: LogEvent, sub: string, fields: LogFields = {}): Promise<void> {
  log(event, { user: await userHash(sub), ...fields });
}
