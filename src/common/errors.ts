/**
 * The closed set of failures the gate reports, each with a stable `code` and the HTTP status it maps
 * to. `app.onError` (src/edge/app.ts) is the only place that turns them into responses: routes and
 * middleware throw, they never build error responses themselves. Like Hono's `HTTPException` an
 * error carries no response data: what a page needs (cookies, return path, user) is in the request
 * context.
 */

export type GateErrorCode =
  | "not_found"
  | "insecure_transport"
  | "login_expired"
  | "callback_invalid"
  | "access_denied"
  | "login_rejected"
  | "unauthenticated"
  | "forbidden"
  | "cross_site"
  | "logout_token_invalid"
  | "provider_unavailable"
  | "origin_unavailable"
  | "step_up_failed"
  | "service_refused"
  | "ambiguous_path";

const STATUS: Record<GateErrorCode, number> = {
  not_found: 404,
  insecure_transport: 400,
  login_expired: 400,
  callback_invalid: 400,
  access_denied: 403,
  login_rejected: 401,
  unauthenticated: 401,
  forbidden: 403,
  cross_site: 403,
  logout_token_invalid: 400,
  provider_unavailable: 503,
  origin_unavailable: 502,
  step_up_failed: 401,
  service_refused: 401,
  ambiguous_path: 400,
};

/**
 * Seconds a visitor is asked to wait (`Retry-After`): the provider (or the session store at login)
 * is asked again after 30 s, the origin after 10 s.
 */
const RETRY_AFTER: Partial<Record<GateErrorCode, number>> = {
  provider_unavailable: 30,
  origin_unavailable: 10,
};

/** A failure caused by the request or by the provider; safe to describe to the visitor. */
export class GateError extends Error {
  override readonly name = "GateError";
  readonly status: number;
  /** Seconds for `Retry-After`, for the failures that pass by themselves. */
  readonly retryAfter: number | undefined;

  /**
   * @param code stable identifier, logged and returned in JSON bodies
   * @param message what went wrong, for the log; never contains tokens, codes or cookie values
   */
  constructor(
    readonly code: GateErrorCode,
    message: string,
  ) {
    super(message);
    this.status = STATUS[code];
    this.retryAfter = RETRY_AFTER[code];
  }
}

/**
 * Every problem found in the settings, reported together so an operator fixes them in one pass.
 * Each entry names the setting and what to do; secret values are never included.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";

  constructor(readonly problems: readonly string[]) {
    super(`kontur-gate is misconfigured:\n${problems.map((p) => `- ${p}`).join("\n")}`);
  }
}
