/**
 * What the session's steps need of the gate: the isolate's runtime (settings, keys, the provider,
 * the clock, the checks in flight) and the request (its URL, time, cookie scope, store, and the
 * cookies its response will set). The edge's RequestContext is one; tests build their own.
 */
import type { Config } from "../config";
import type { OidcClient } from "../oidc/client";
import type { CookieScope, SessionCookie } from "./cookie";
import type { Keyring } from "./seal";
import type { SessionStore } from "./store";

/** The result of one session check against KV and the provider. */
export type CheckOutcome = { kind: "ok"; cookie: SessionCookie } | { kind: "ended"; reason: string };

export interface SessionRuntime {
  readonly config: Config;
  readonly keyring: Keyring;
  readonly oidc: Pick<OidcClient, "authorizationUrl" | "callback" | "refresh" | "endSessionUrl" | "userinfo" | "revoke">;
  /** Epoch milliseconds. */
  readonly clock: () => number;
  /** Session checks in flight in this isolate, by session id: parallel requests share one. */
  readonly checks: Map<string, Promise<CheckOutcome>>;
}

export interface SessionRequest {
  readonly runtime: SessionRuntime;
  readonly url: URL;
  /** Epoch seconds when the request arrived. */
  readonly now: number;
  readonly scope: CookieScope;
  readonly store: SessionStore;
  /** `Set-Cookie` headers for this request's response, whatever it turns out to be. */
  readonly setCookies: string[];
  readonly waitUntil: (promise: Promise<unknown>) => void;
  /** Runs a step that can log inside the request's log context (entered only when needed). */
  readonly logged: <T>(work: () => Promise<T>) => Promise<T>;
  /** The session after the check. */
  session: SessionCookie | undefined;
  /** Where "sign in again" leads after a failed callback. */
  returnTo: string | undefined;
}
