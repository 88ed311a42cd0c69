/**
 * Everything built from the settings once per isolate: the parsed config, imported keys and the
 * provider client (which caches discovery and JWKS). workerd forbids I/O and randomness at global
 * scope, so this happens lazily on the first request and is reused while the settings are unchanged.
 */
import { importJWK, type JWK } from "jose";
import { parseConfig, SETTING_NAMES, type Config } from "../config";
import { OidcClient } from "../oidc/client";
import { AssertionSigner, publicJwk } from "../proxy/assertion";
import type { SessionRuntime } from "../session/request";
import { importKeyring } from "../session/seal";
import { serviceBinding, type Bindings } from "./bindings";
import { ConfigError } from "../common/errors";

export interface Runtime extends SessionRuntime {
  readonly oidc: OidcClient;
  readonly signer: AssertionSigner;
  /** What `/_auth/jwks.json` serves: the signing key's public part, then the previous keys'. */
  readonly jwks: { readonly keys: readonly JWK[] };
}

export interface RuntimeOptions {
  /** Epoch milliseconds; tests inject a clock they can move instead of sleeping. */
  readonly clock?: () => number;
}

let cached: { env: Bindings; fingerprint: string; runtime: Promise<Runtime> } | undefined;

function fingerprint(env: Bindings): string {
  return JSON.stringify(SETTING_NAMES.map((name) => env[name] ?? null));
}

/** Builds a runtime from settings; a ConfigError lists every problem. Exported for tests (app.request). */
export async function createRuntime(env: Bindings, options: RuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? Date.now;
  const problems: string[] = [];
  let config: Config | undefined;
  try {
    config = parseConfig(env, { hasService: (binding) => serviceBinding(env, binding) !== undefined });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (typeof env.SESSIONS?.get !== "function") {
    problems.push('SESSIONS: the Workers KV namespace binding is missing; add [[kv_namespaces]] binding = "SESSIONS" to wrangler.toml');
  }
  if (config === undefined || problems.length > 0) throw new ConfigError(problems);
  let signer: AssertionSigner;
  try {
    signer = await AssertionSigner.create(
      config.assertionKey,
      config.claimHeaders.map(({ claim }) => claim),
    );
  } catch {
    throw new ConfigError(["ASSERTION_SIGNING_KEY: the key does not import; it must be a valid private JWK (EC P-256 or Ed25519)"]);
  }
  const previous = config.assertionPreviousKeys.map(publicJwk);
  for (const key of previous) {
    // A key origins cannot import would break their verification of every assertion.
    await importJWK(key, key.alg).catch(() => {
      throw new ConfigError([`ASSERTION_PREVIOUS_PUBLIC_KEY: the key "${key.kid}" does not import; copy it unchanged from /_auth/jwks.json`]);
    });
  }
  return {
    config,
    clock,
    keyring: await importKeyring(config.sessionSecrets),
    oidc: new OidcClient(config, clock),
    signer,
    jwks: { keys: [signer.publicJwk, ...previous] },
    checks: new Map(),
  };
}

/** The runtime for these bindings; a ConfigError (rejected promise) when the settings are wrong. */
export function runtimeFor(env: Bindings): Promise<Runtime> {
  if (cached?.env === env) return cached.runtime;
  const print = fingerprint(env);
  if (cached?.fingerprint !== print) cached = { env, fingerprint: print, runtime: createRuntime(env) };
  else cached.env = env;
  return cached.runtime;
}
