/**
 * The Hono app for one runtime: the gate's endpoints under AUTH_PREFIX, the gate in front of
 * everything else, and the one place where errors become responses.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "./env";
import { GateError } from "./errors";
import { gate } from "./gate";
import { log } from "./log";
import { PAGE_HEADERS, errorPage, forbiddenPage, internalErrorPage, pickLang } from "./pages";
import { loginPath, prefersHtml, withCookies } from "./request";
import { authRoutes } from "./routes";
import type { Runtime } from "./runtime";

/** A reference the visitor can quote and the operator can find in the log; `cf-ray` when present. */
function reference(c: Context<AppEnv>): string {
  return c.req.header("cf-ray") ?? crypto.randomUUID();
}

function gateErrorResponse(error: GateError, c: Context<AppEnv>): Response {
  const { config } = c.var.runtime;
  const ref = reference(c);
  const url = new URL(c.req.url);
  log(error.code === "provider_unavailable" ? "provider_error" : error.code === "forbidden" ? "forbidden" : "request_refused", {
    code: error.code,
    status: error.status,
    path: url.pathname,
    reason: error.message,
    ref,
  });
  const headers = new Headers({ "cache-control": "no-store" });
  if (error.options.retryAfter !== undefined) headers.set("retry-after", String(error.options.retryAfter));
  const login = loginPath(config, error.options.returnTo ?? "/");
  let response: Response;
  // Navigations that want a page get a login redirect before it comes to this; what is left
  // (scripts, API paths, form posts, WebSockets) is told in JSON where to send the user.
  if (prefersHtml(c.req.raw) && error.code !== "unauthenticated") {
    const lang = pickLang(c.req.header("accept-language"));
    for (const [name, value] of Object.entries(PAGE_HEADERS)) headers.set(name, value);
    const body =
      error.code === "forbidden"
        ? forbiddenPage(lang, error.options.who ?? "", `${config.authPrefix}/logout`, ref)
        : errorPage(lang, error.code, error.code === "provider_unavailable" ? url.pathname + url.search : login, ref);
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
    const ref = reference(c);
    // Name and message only: causes of library errors can hold tokens.
    log("internal_error", { error: error.name, message: error.message, path: new URL(c.req.url).pathname, ref });
    return c.body(internalErrorPage(pickLang(c.req.header("accept-language")), ref), 500, PAGE_HEADERS);
  });
  return app;
}
