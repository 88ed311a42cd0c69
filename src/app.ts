/**
 * The Hono app for one runtime: the gate's endpoints under AUTH_PREFIX, the gate in front of
 * everything else, and the one place where errors become responses.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "./env";
import { GateError } from "./errors";
import { gate } from "./gate";
import { log, logUser, requestRef, type LogEvent } from "./log";
import { PAGE_HEADERS, errorPage, forbiddenPage, internalErrorPage, pickLang } from "./pages";
import { safeReturnPath } from "./policy";
import { loginPath, prefersHtml, withCookies } from "./request";
import { authRoutes } from "./routes";
import type { Runtime } from "./runtime";

/** Which decision a refusal was, for the log. */
function eventOf(error: GateError): LogEvent {
  switch (error.code) {
    case "login_expired":
    case "callback_invalid":
    case "access_denied":
    case "login_rejected":
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
  const { config } = c.var.runtime;
  // A reference the visitor can quote; every log line of this request carries it as `ray`.
  const ref = requestRef();
  const url = new URL(c.req.url);
  const fields = { code: error.code, status: error.status, reason: error.message };
  const sub = c.var.session?.user.sub;
  if (sub === undefined) log(eventOf(error), fields);
  else await logUser(eventOf(error), sub, fields);
  const headers = new Headers({ "cache-control": "no-store" });
  if (error.options.retryAfter !== undefined) headers.set("retry-after", String(error.options.retryAfter));
  // Reduced as /_auth/login would reduce it: a 64 KB URL must not come back three times its size.
  const login = loginPath(config, safeReturnPath(error.options.returnTo, url.origin));
  let response: Response;
  // Navigations that want a page get a login redirect before it comes to this; what is left
  // (scripts, API paths, form posts, WebSockets) is told in JSON where to send the user.
  if (prefersHtml(c.req.raw) && error.code !== "unauthenticated") {
    const lang = pickLang(c.req.header("accept-language"));
    for (const [name, value] of Object.entries(PAGE_HEADERS)) headers.set(name, value);
    // "Try again" repeats the request when the provider was down, except at the callback (`returnTo`
    // set): its code is spent and must not be echoed into the page, so there it is a new login.
    const retry = (error.code === "provider_unavailable" || error.code === "origin_unavailable") && error.options.returnTo === undefined ? safeReturnPath(url.pathname + url.search, url.origin) : login;
    const body =
      error.code === "forbidden"
        ? forbiddenPage(lang, error.options.who ?? "", `${config.authPrefix}/logout`, ref)
        : errorPage(lang, error.code, retry, ref);
    response = new Response(body, { status: error.status, headers });
  } else {
    if (error.code === "unauthenticated") {
      // Tells a script where to send the user: a top-level navigation to this URL signs them in.
      headers.set("www-authenticate", `Bearer realm="kontur-gate", login_url="${login}"`);
      headers.set("x-login-url", login);
    }
    const body = { error: error.code, ...(error.code === "unauthenticated" ? { login_url: login } : {}), reference: ref };
    response = Response.json(body, { status: error.status, headers });
  }
  return withCookies(response, error.options.setCookies ?? []);
}

export function buildApp(runtime: Runtime): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(async function attachRuntime(c, next) {
    c.set("runtime", runtime);
    await next();
  });
  app.route(runtime.config.authPrefix, authRoutes());
  app.all("*", gate);
  app.onError((error, c) => {
    if (error instanceof GateError) return gateErrorResponse(error, c);
    const ref = requestRef();
    // Name and message only: causes of library errors can hold tokens.
    log("internal_error", { error: error.name, message: error.message });
    return c.body(internalErrorPage(pickLang(c.req.header("accept-language")), ref), 500, PAGE_HEADERS);
  });
  return app;
}
