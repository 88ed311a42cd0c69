/**
 * The gate's own endpoints under AUTH_PREFIX: login, callback, logout, signed-out, me, jwks.json,
 * health. Mounted with `app.route(config.authPrefix, authRoutes())`.
 */
import { Hono, type Context } from "hono";
import { getCookie } from "hono/cookie";
import type { AppEnv } from "./env";
import { GateError } from "./errors";
import { beginLogin, finishLogin } from "./login";
import { log, logUser } from "./log";
import { describe } from "./oidc";
import { PAGE_HEADERS, logoutConfirmPage, pickLang, signedOutPage } from "./pages";
import { safeReturnPath } from "./policy";
import { cookieScope, loginPath, withCookies } from "./request";
import { resolveSession } from "./resolve";
import { SESSION_COOKIE, SessionStore, clearCookie, openSessionCookie, sessionCookieName } from "./session";

type Ctx = Context<AppEnv>;

const NO_STORE = { "cache-control": "no-store" };

function cookieHeader(c: Ctx): string {
  return c.req.header("cookie") ?? "";
}

function waitUntil(c: Ctx): (promise: Promise<unknown>) => void {
  return (promise) => c.executionCtx.waitUntil(promise);
}

async function currentSession(c: Ctx) {
  const scope = cookieScope(new URL(c.req.url));
  return resolveSession(c.var.runtime, c.env.SESSIONS, scope, getCookie(c, sessionCookieName(scope)), waitUntil(c));
}

/**
 * Fetch metadata says whether the browser itself started this request from our own pages
 * (`same-origin`) or from the address bar (`none`); a link or form on another site says otherwise.
 */
function isSameOriginRequest(c: Ctx): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined) return site === "same-origin" || site === "none";
  const origin = c.req.header("origin");
  return origin === undefined || origin === new URL(c.req.url).origin;
}

async function logout(c: Ctx, returnTo: string | undefined): Promise<Response> {
  const { config, keyring, oidc } = c.var.runtime;
  const url = new URL(c.req.url);
  const scope = cookieScope(url);
  const opened = await openSessionCookie(keyring, getCookie(c, sessionCookieName(scope)));
  let idToken: string | undefined;
  if (opened !== undefined) {
    const store = new SessionStore(c.env.SESSIONS, keyring);
    idToken = (await store.get(opened.cookie.sid).catch(() => undefined))?.record.idToken;
    // Local logout must always work: a KV failure leaves the record to its TTL, the cookie still goes.
    await store.delete(opened.cookie.sid).catch((error: unknown) => log("provider_error", { step: "kv_delete", reason: describe(error) }));
  }
  const fields = { had_session: opened !== undefined, at_provider: config.logoutAtProvider };
  if (opened === undefined) log("logout", fields);
  else await logUser("logout", opened.cookie.user.sub, fields);
  const signedOut = `${url.origin}${config.authPrefix}/signed-out`;
  let location = returnTo === undefined ? signedOut : safeReturnPath(returnTo, url.origin);
  if (config.logoutAtProvider && opened !== undefined) {
    // Local logout has happened already; a provider that cannot be reached must not undo it.
    const endSession = await oidc.endSessionUrl(idToken, signedOut).catch((error: unknown) => {
      log("provider_error", { step: "end_session", reason: describe(error) });
      return undefined;
    });
    if (endSession !== undefined) location = endSession.href;
  }
  const headers = new Headers({ location, ...NO_STORE });
  headers.append("set-cookie", clearCookie(scope, SESSION_COOKIE));
  return new Response(null, { status: 303, headers });
}

export function authRoutes(): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();

  routes.get("/login", (c) => beginLogin(c.var.runtime, new URL(c.req.url), cookieHeader(c), c.req.query("rd")));

  routes.get("/callback", async (c) => {
    const url = new URL(c.req.url);
    const finished = await finishLogin(c.var.runtime, c.env.SESSIONS, url, cookieHeader(c));
    if (finished !== undefined) return finished;
    // No pending login for this state: a replayed callback, the back button, or another browser.
    const { session, setCookie } = await currentSession(c);
    if (session !== undefined) return withCookies(new Response(null, { status: 302, headers: { location: "/", ...NO_STORE } }), [setCookie]);
    throw new GateError("login_expired", "The callback matches no pending login (expired, replayed or from another browser)", {
      setCookies: setCookie === undefined ? [] : [setCookie],
    });
  });

  routes.get("/logout", async (c) => {
    // Only the browser's own word (fetch metadata) that the link was on this site, or typed in the
    // address bar, logs out at once; a cross-site link or a client without it gets asked first.
    // A navigation only: an <img src="/_auth/logout"> in content on the site is same-origin too.
    const site = c.req.header("sec-fetch-site");
    if ((site === "same-origin" || site === "none") && c.req.header("sec-fetch-mode") === "navigate") return logout(c, c.req.query("rd"));
    const lang = pickLang(c.req.header("accept-language"));
    const { authPrefix } = c.var.runtime.config;
    const rd = c.req.query("rd");
    const action = rd === undefined ? `${authPrefix}/logout` : `${authPrefix}/logout?rd=${encodeURIComponent(safeReturnPath(rd, new URL(c.req.url).origin))}`;
    return c.body(logoutConfirmPage(lang, action), 200, PAGE_HEADERS);
  });

  routes.post("/logout", async (c) => {
    if (!isSameOriginRequest(c)) throw new GateError("cross_site", "A logout form was posted from another site");
    return logout(c, c.req.query("rd"));
  });

  routes.get("/signed-out", (c) => {
    const lang = pickLang(c.req.header("accept-language"));
    return c.body(signedOutPage(lang, loginPath(c.var.runtime.config, "/")), 200, PAGE_HEADERS);
  });

  routes.get("/me", async (c) => {
    const { session, setCookie } = await currentSession(c);
    if (session === undefined) {
      throw new GateError("unauthenticated", "No session for /me", { returnTo: "/", setCookies: setCookie === undefined ? [] : [setCookie] });
    }
    const body = { ...session.user, session_started_at: session.iat, session_expires_at: session.exp };
    return withCookies(c.json(body, 200, NO_STORE), [setCookie]);
  });

  routes.get("/jwks.json", (c) =>
    c.json(c.var.runtime.jwks, 200, { "cache-control": "public, max-age=300" }),
  );

  routes.get("/health", async (c) => {
    try {
      await c.var.runtime.oidc.provider();
      return c.json({ status: "ok" }, 200, NO_STORE);
    } catch (error) {
      log("provider_error", { step: "health", reason: describe(error) });
      return c.json({ status: "unavailable", reason: "the provider's discovery document cannot be fetched" }, 503, {
        ...NO_STORE,
        "retry-after": "30",
      });
    }
  });

  routes.all("*", (c) => {
    throw new GateError("not_found", `No gate endpoint at ${new URL(c.req.url).pathname}`);
  });

  return routes;
}
