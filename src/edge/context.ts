/**
 * The Hono env type and the one request context every step shares: the
 * parsed URL, the cookie scope, the session store, the request's time and the cookies to set. A
 * first middleware fills it once; when the response is ready (error pages included) it adds the
 * collected `Set-Cookie` headers once, so no step passes cookies around or through exceptions.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { withRequestLog } from "../common/log";
import type { Route } from "../config";
import { cookieScope, type CookieScope, type SessionCookie } from "../session/cookie";
import { SessionStore } from "../session/store";
import type { Bindings } from "./bindings";
import type { Runtime } from "./runtime";

export type { Bindings } from "./bindings";

/** Everything about one request that the gate's steps share. */
export class RequestContext {
  /** Epoch seconds when the request arrived, from the runtime's clock (one instant per request). */
  readonly now: number;
  /** `Set-Cookie` headers for whatever response this request ends with. */
  readonly setCookies: string[] = [];
  /** The visitor's session after the check, once known. */
  session: SessionCookie | undefined;
  /**
   * Where a new login should return to when this request ends in an error: the page asked for
   * (no session), or the pending login's return path (a failed callback, whose spent code must
   * not be repeated). Undefined: the home page, and "try again" repeats the request itself.
   */
  returnTo: string | undefined;
  /** The `ROUTES` entry that decides this request, once known (undefined: the global settings). */
  route: Route | undefined;
  #scope: CookieScope | undefined;
  #store: SessionStore | undefined;

  constructor(
    readonly runtime: Runtime,
    readonly url: URL,
    private readonly kv: KVNamespace,
    /** Keeps work (KV clean-up, revocation) alive after the response without delaying it. */
    readonly waitUntil: (promise: Promise<unknown>) => void,
    /** Runs a step that can log inside this request's log context (see common/log.ts). */
    readonly logged: <T>(work: () => Promise<T>) => Promise<T>,
  ) {
    this.now = Math.floor(runtime.clock() / 1000);
  }

  /**
   * Computed when first needed: endpoints that set no cookie (jwks.json, health) answer on any
   * scheme, while anything that touches a session refuses plain http on a public host.
   */
  get scope(): CookieScope {
    this.#scope ??= cookieScope(this.url);
    return this.#scope;
  }

  get store(): SessionStore {
    this.#store ??= new SessionStore(this.kv, this.runtime.keyring, this.url.hostname);
    return this.#store;
  }
}

export interface AppEnv {
  Bindings: Bindings;
  Variables: { ctx: RequestContext };
}

export type Ctx = Context<AppEnv>;

/**
 * Attaches `Set-Cookie` headers to a response, copying it only when there is something to add. A
 * response that carries a cookie is never stored by any cache, whatever the origin said: a cached
 * `public` page would hand this visitor's cookie to the next one.
 */
export function withCookies(response: Response, cookies: readonly string[]): Response {
  if (cookies.length === 0) return response;
  if (response.webSocket !== null) {
    // A WebSocket handshake has no body to copy: the socket itself moves into the new response.
    // Browsers store cookies set on the handshake, so a re-issued session cookie is not lost.
    const headers = new Headers(response.headers);
    for (const cookie of cookies) headers.append("set-cookie", cookie);
    return new Response(null, { status: response.status, statusText: response.statusText, headers, webSocket: response.webSocket });
  }
  const copy = new Response(response.body, response);
  for (const cookie of cookies) copy.headers.append("set-cookie", cookie);
  if (!/\bno-store\b/i.test(copy.headers.get("cache-control") ?? "")) copy.headers.set("cache-control", "private, no-store");
  return copy;
}

/** The first middleware: one RequestContext per request, and its cookies on the final response. */
export function requestContext(runtime: Runtime) {
  return createMiddleware<AppEnv>(async function requestContext(c, next) {
    const ctx = new RequestContext(
      runtime,
      new URL(c.req.url),
      c.env.SESSIONS,
      (promise) => c.executionCtx.waitUntil(promise),
      (work) => withRequestLog(c.req.raw, work),
    );
    c.set("ctx", ctx);
    await next();
    if (ctx.setCookies.length === 0) return;
    const response = withCookies(c.res, ctx.setCookies);
    // Hono merges the old response's headers into an assigned one (and copies its body, which
    // would lose a WebSocket): clear it first so the response is taken as it is.
    c.res = undefined;
    c.res = response;
  });
}
