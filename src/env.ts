/**
 * The Worker's bindings and the Hono context type. Every setting is an optional string var or
 * secret, named by src/config.ts, so the list of names exists once.
 */
import type { Settings } from "./config";
import type { Runtime } from "./runtime";
import type { SessionCookie } from "./session";

export type Bindings = Settings & {
  /** Session records (tokens, revocation); see docs/storage-schema.md. */
  SESSIONS: KVNamespace;
};

export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    runtime: Runtime;
    /** The visitor's session after the check, when there is one. */
    session: SessionCookie | undefined;
  };
}
