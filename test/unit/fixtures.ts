/** Fresh keys and valid settings for unit tests; nothing here is a fixed secret. */
import { ConfigError } from "../../src/common/errors";
import type { Settings } from "../../src/config";
import { base64url } from "../../src/session/seal";

export function randomSecret(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function signingJwk(kind: "EC" | "OKP" = "EC"): Promise<JsonWebKey & { kid: string }> {
  const pair = (await crypto.subtle.generateKey(
    kind === "EC" ? { name: "ECDSA", namedCurve: "P-256" } : { name: "Ed25519" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  return { ...jwk, kid: `test-${randomSecret(6)}` };
}

export async function validSettings(overrides: Settings = {}): Promise<Settings> {
  return {
    OIDC_ISSUER: "https://identity.testkontur.ru",
    OIDC_CLIENT_ID: "site-client",
    OIDC_CLIENT_SECRET: randomSecret(),
    SESSION_SECRETS: randomSecret(),
    ASSERTION_SIGNING_KEY: JSON.stringify(await signingJwk()),
    ...overrides,
  };
}

/** The problems a ConfigError lists; fails the test when `run` throws nothing or something else. */
export function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error("expected a ConfigError");
}
