/**
 * One JSON line per decision. Callers pass codes, paths and reasons only: never tokens,
 * authorization codes, cookie values or secrets (the adversarial tests scan the log for them).
 */

export type LogEvent =
  | "config_invalid"
  | "login_started"
  | "login_ok"
  | "login_failed"
  | "session_revoked"
  | "session_expired"
  | "refresh_ok"
  | "refresh_failed"
  | "logout"
  | "forbidden"
  | "request_refused"
  | "provider_error"
  | "internal_error";

export function log(event: LogEvent, fields: Record<string, string | number | boolean | undefined> = {}): void {
  const line = JSON.stringify({ event, ...fields });
  if (event === "internal_error" || event === "config_invalid") console.error(line);
  else console.log(line);
}
