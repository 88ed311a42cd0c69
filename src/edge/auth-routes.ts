/**
 * The gate's own endpoints under AUTH_PREFIX: login, callback, logout (here or everywhere),
 * back-channel logout, signed-out, me, jwks.json, health. Mounted with
 * `app.route(config.authPrefix, authRoutes())`.
 */
import { Hono } from "hono";
import { PAGE_HEADERS, logoutConfirmPage, pickLang, signedOutPage } from "../pages/pages";
import { loginPath, safeReturnPath } from "../policy/return-path";
import { loginMaxAge } from "../policy/routes";
import { describe } from "../oidc/decisions";
import { resolveSession } from "../session/check";
import { readCookie, sessionCookieName } from "../session/cookie";
import { beginLogin, finishLogin } from "../session/login";
import { backchannelLogout } from "../session/backchannel";
import { logoutEverywhere, logoutHere, signedOutCookieName, signedOutUser } from "../session/everywhere";
import type { AppEnv, Ctx } from "./context";
import { GateError } from "../common/errors";
import { log } from "../common/log";

const NO_STORE = { "cache-control": "no-store" };

function cookieHeader(c: Ctx): string {
  return c.req.header("cookie") ?? "";
}

/** The visitor's session after the checks that are due (kept in the request context). */
async function currentSession(c: Ctx) {
  const ctx = c.get("ctx");
  ctx.session = await resolveSession(ctx, readCookie(cookieHeader(c), sessionCookieName(ctx.scope)));
  return ctx.session;
}

/**
 * Fetch metadata says whether the browser itself started this request from our own pages
 * (`same-origin`) or from the address bar (`none`); a link or form on another site says otherwise.
 */
function isSameOriginRequest(c: Ctx): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined) return site === "same-origin" || site === "none";
  const origin = c.req.header("origin");
  return origin === undefined || origin === c.get("ctx").url.origin;
}

function endSession(c: Ctx, returnTo: string | undefined): Promise<Response> {
  const ctx = c.get("ctx");
  return logoutHere(ctx, readCookie(cookieHeader(c), sessionCookieName(ctx.scope)), returnTo);
}

/** The one form field of a logout POST that matters: `everywhere=1`. */
async function wantsEverywhere(c: Ctx): Promise<boolean> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/x-www-form-urlencoded|^multipart\/form-data/i.test(type)) return false;
  return (await c.req.parseBody())["everywhere"] === "1";
}

/** The `logout_token` of a back-channel logout request: exactly one, form-encoded (§2.5). */
async function logoutToken(c: Ctx): Promise<string> {
  if (!/^application\/x-www-form-urlencoded/i.test(c.req.header("content-type") ?? "")) {
    throw new GateError("logout_token_invalid", "A back-channel logout request must be application/x-www-form-urlencoded");
  }
  const tokens = new URLSearchParams(await c.req.text()).getAll("logout_token");
  if (tokens.length !== 1) throw new GateError("logout_token_invalid", `A back-channel logout request needs exactly one logout_token, got ${tokens.length}`);
  return tokens[0]!;
}

export function authRoutes(): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();

  routes.get("/login", (c) => {
    const ctx = c.get("ctx");
    const rd = c.req.query("rd");
    return beginLogin(ctx, cookieHeader(c), rd, loginMaxAge(ctx.runtime.config.routes, ctx.url, rd));
  });

  routes.get("/callback", async (c) => {
    const finished = await finishLogin(c.get("ctx"), cookieHeader(c));
    if (finished !== undefined) return finished;
    // No pending login for this state: a replayed callback, the back button, or another browser.
    if ((await currentSession(c)) !== undefined) return new Response(null, { status: 302, headers: { location: "/", ...NO_STORE } });
    throw new GateError("login_expired", "The callback matches no pending login (expired, replayed or from another browser)");
  });

  routes.get("/logout", async (c) => {
    // Only the browser's own word (fetch metadata) that the link was on this site, or typed in the
    // address bar, logs out at once; a cross-site link or a client without it gets asked first.
    // A navigation only: an <img src="/_auth/logout"> in content on the site is same-origin too.
    const site = c.req.header("sec-fetch-site");
    if ((site === "same-origin" || site === "none") && c.req.header("sec-fetch-mode") === "navigate") return endSession(c, c.req.query("rd"));
    const lang = pickLang(c.req.header("accept-language"));
    const { runtime, url } = c.get("ctx");
    const { authPrefix } = runtime.config;
    const rd = c.req.query("rd");
    const action = rd === undefined ? `${authPrefix}/logout` : `${authPrefix}/logout?rd=${encodeURIComponent(safeReturnPath(rd, url.origin))}`;
    return c.body(logoutConfirmPage(lang, action, `${authPrefix}/logout`), 200, PAGE_HEADERS);
  });

  routes.post("/logout", async (c) => {
    if (!isSameOriginRequest(c)) throw new GateError("cross_site", "A logout form was posted from another site");
    if (!(await wantsEverywhere(c))) return endSession(c, c.req.query("rd"));
    const ctx = c.get("ctx");
    const cookies = cookieHeader(c);
    return logoutEverywhere(ctx, readCookie(cookies, sessionCookieName(ctx.scope)), readCookie(cookies, signedOutCookieName(ctx.scope)), c.req.query("rd"));
  });

  routes.post("/backchannel-logout", async (c) => {
    // Server to server: no cookie, no same-origin check; the signed token is the authority.
    const ctx = c.get("ctx");
    await backchannelLogout(ctx.runtime, ctx.store.kv, await logoutToken(c), ctx.now, ctx.waitUntil);
    return c.body(null, 200, NO_STORE);
  });

  routes.get("/signed-out", async (c) => {
    const lang = pickLang(c.req.header("accept-language"));
    const { runtime, scope, now } = c.get("ctx");
    const { authPrefix } = runtime.config;
    // "Sign out everywhere" only while the gate still knows whose session this browser ended.
    const known = (await signedOutUser(runtime.keyring, readCookie(cookieHeader(c), signedOutCookieName(scope)), now)) !== undefined;
    return c.body(signedOutPage(lang, loginPath(runtime.config, "/"), known ? `${authPrefix}/logout` : undefined), 200, PAGE_HEADERS);
  });

  routes.get("/me", async (c) => {
    const session = await currentSession(c);
    if (session === undefined) throw new GateError("unauthenticated", "No session for /me");
    const body = { ...session.user, session_started_at: session.iat, session_expires_at: session.exp };
    return c.json(body, 200, NO_STORE);
  });

  routes.get("/jwks.json", (c) =>
    c.json(c.get("ctx").runtime.jwks, 200, { "cache-control": "public, max-age=300" }),
  );

  routes.get("/health", async (c) => {
    try {
      await c.get("ctx").runtime.oidc.provider();
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
    throw new GateError("not_found", `No gate endpoint at ${c.get("ctx").url.pathname}`);
  });

  return routes;
}
