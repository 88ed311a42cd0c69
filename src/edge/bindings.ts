/**
 * The Worker's bindings: every setting of the contract as an optional string var or secret (the
 * names are listed once, in src/config/reader.ts), and the session store.
 */
import type { Settings } from "../config";

export type Bindings = Settings & {
  /** Session records (tokens, revocation); see docs/storage-schema.md. */
  SESSIONS: KVNamespace;
};

/**
 * The service binding of this name (`ROUTES` origin `service:BINDING`), looked up among the
 * Worker's bindings, which are typed by the settings only: anything with a `fetch` is one.
 */
export function serviceBinding(env: Bindings, binding: string): Fetcher | undefined {
  const value: unknown = (env as unknown as Record<string, unknown>)[binding];
  return typeof value === "object" && value !== null && typeof (value as Partial<Fetcher>).fetch === "function" ? (value as Fetcher) : undefined;
}
