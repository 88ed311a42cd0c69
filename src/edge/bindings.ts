/**
 * The Worker's bindings: every setting of the contract as an optional string var or secret (the
 * names are listed once, in src/config/reader.ts), and the session store.
 */
import type { Settings } from "../config";

export type Bindings = Settings & {
  /** Session records (tokens, revocation); see docs/storage-schema.md. */
  SESSIONS: KVNamespace;
};
