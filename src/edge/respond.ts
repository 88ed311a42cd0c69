/**
 * The one place where errors become responses: a page for a browser's navigation, JSON for scripts
 * (with the login URL when a session is missing). What a page needs beyond the error's code — the
 * signed-in user, where "sign in again" leads — comes from the request context.
 */
import type { Context } from "hono";
import { errorPage, forbiddenPage, internalErrorPage, PAGE_HEADERS, pickLang } from "../pages/pages";
import { prefersHtml } from "../policy/access";
import { loginPath, safeReturnPath } from "../policy/return-path";
import type { AppEnv } from "./context";
import { GateError } from "../common/errors";
import { log, logUser, requestRef, type LogEvent } from "../common/log";

/** Which decision a refusal was, for the log. */
function eventOf(error: GateError): LogEvent {
  switch (error.code) {
    case "login_expired":
    case "callback_invalid":
    case "access_denied":
    case "login_rejected":
    case "step_up_failed":
      return "login_failed";
    case "provider_unavailable":
      return "provider_error";
    case "forbidden":
      return "forbidden";
    default:
      return "request_refused";
  }
}

async function gateErrorResponse(error: GateError, c: Context<AppEnv>): Promise<Response> {
  const ctx = c.get("ctx");
  const { config } = ctx.runtime;
  const { url } = ctx;
  // A reference the visitor can quote; every log line of this request carries it as `ray`.
  const ref = requestRef();
  const fields = { code: error.code, status: error.status, reason: error.message, ...(ctx.route === undefined ? {} : { route: ctx.route.name }) };
  const user = ctx.session?.user;
  if (user === undefined) log(eventOf(error), fields);
  else await logUser(eventOf(error), user.sub, fields);
  const headers = new Headers({ "cache-control": "no-store" });
  if (error.retryAfter !== undefined) headers.set("retry-after", String(error.retryAfter));
  // Reduced as /_auth/login would reduce it: a 64 KB URL must not come back three times its size.
  const login = loginPath(config, safeReturnPath(ctx.returnTo, url.origin));
  // Navigations that want a page get a login redirect before it comes to this; what is left
  // (scripts, API paths, form posts, WebSockets) is told in JSON where to send the user.
  if (prefersHtml(c.req.raw) && error.code !== "unauthenticated") {
    const lang = pickLang(c.req.header("accept-language"));
    for (const [name, value] of Object.entries(PAGE_HEADERS)) headers.set(name, value);
    // "Try again" repeats the request when the provider was down, except at the callback (`returnTo`
    // set): its code is spent and must not be echoed into the page, so there it is a new login.
    const retry =
      (error.code === "provider_unavailable" || error.code === "origin_unavailable") && ctx.returnTo === undefined
        ? safeReturnPath(url.pathname + url.search, url.origin)
        : login;
    const body =
      error.code === "forbidden"
        ? forbiddenPage(lang, user?.email ?? user?.name ?? user?.sub ?? "", `${config.authPrefix}/logout`, ref)
        : errorPage(lang, error.code, retry, ref);
    return new Response(body, { status: error.status, headers });
  }
  if (error.code === "unauthenticated") {
    // Tells a script where to send the user: a top-level navigation to this URL signs them in.
    headers.set("www-authenticate", `Bearer realm="kontur-gate", login_url="${login}"`);
    headers.set("x-login-url", login);
  }
  const body = { error: error.code, ...(error.code === "unauthenticated" ? { login_url: login } : {}), reference: ref };
  return Response.json(body, { status: error.status, headers });
}

/** `app.onError`: typed failures become their page or JSON; anything else an internal error page. */
export function errorResponse(error: Error, c: Context<AppEnv>): Response | Promise<Response> {
  if (error instanceof GateError) return gateErrorResponse(error, c);
  const ref = requestRef();
  // Name and message only: causes of library errors can hold tokens.
  log("internal_error", { error: error.name, message: error.message });
  return c.body(internalErrorPage(pickLang(c.req.header("accept-language")), ref), 500, PAGE_HEADERS);
}
