/**
 * Keys: `SESSION_SECRETS` (the sealing keyring, newest first) and the assertion keys (the private
 * signing JWK and the public keys still published during a rotation). Secret values never appear
 * in a problem message.
 */
import { base64urlDecode, parseList, type SettingsReader } from "./reader";

/** The private JWK that signs `X-Auth-Assertion`; imported lazily by src/assertion.ts. */
export interface AssertionKeyJwk extends JsonWebKey {
  kid: string;
  kty: "EC" | "OKP";
  d: string;
}

/** A public JWK that `/_auth/jwks.json` keeps publishing after a rotation of the assertion key. */
export interface AssertionPublicJwk extends JsonWebKey {
  kid: string;
  kty: "EC" | "OKP";
}

const KEY_HINT = "generate one with: openssl rand -base64 32 | tr '+/' '-_' | tr -d '='";

export function readSessionSecrets(reader: SettingsReader): Uint8Array[] {
  const raw = reader.required("SESSION_SECRETS", `comma-separated base64url keys of at least 32 bytes; ${KEY_HINT}`);
  const entries = parseList(raw);
  // A value of commas alone would leave the keyring empty: nothing could be sealed or opened.
  if (raw !== "" && entries.length === 0) reader.problem("SESSION_SECRETS", `holds no key, only commas; ${KEY_HINT}`);
  const keys: Uint8Array[] = [];
  entries.forEach((entry, index) => {
    const bytes = base64urlDecode(entry);
    if (bytes === undefined) {
      reader.problem("SESSION_SECRETS", `key #${index + 1} is not base64url; ${KEY_HINT}`);
    } else if (bytes.length < 32) {
      reader.problem("SESSION_SECRETS", `key #${index + 1} decodes to ${bytes.length} bytes, at least 32 are needed; ${KEY_HINT}`);
    } else {
      keys.push(bytes);
    }
  });
  return keys;
}

export function readAssertionKey(reader: SettingsReader): AssertionKeyJwk {
  const placeholder: AssertionKeyJwk = { kty: "EC", kid: "", d: "" };
  const raw = reader.required("ASSERTION_SIGNING_KEY", "a private JWK (EC P-256 or Ed25519) with a kid; see docs/configuration.md");
  if (raw === "") return placeholder;
  let jwk: unknown;
  try {
    jwk = JSON.parse(raw);
  } catch {
    reader.problem("ASSERTION_SIGNING_KEY", "is not JSON; it must be a private JWK such as {\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":…,\"x\":…,\"y\":…,\"d\":…}");
    return placeholder;
  }
  if (typeof jwk !== "object" || jwk === null) {
    reader.problem("ASSERTION_SIGNING_KEY", "must be a JSON object (a private JWK)");
    return placeholder;
  }
  const key = jwk as Record<string, unknown>;
  const curveOk = (key.kty === "EC" && key.crv === "P-256") || (key.kty === "OKP" && key.crv === "Ed25519");
  if (!curveOk) reader.problem("ASSERTION_SIGNING_KEY", "must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key");
  if (typeof key.d !== "string") reader.problem("ASSERTION_SIGNING_KEY", "must be the private key (the JWK has no \"d\")");
  if (typeof key.kid !== "string" || key.kid === "") reader.problem("ASSERTION_SIGNING_KEY", "must have a \"kid\" so origins can pick the key from /_auth/jwks.json");
  return curveOk && typeof key.d === "string" && typeof key.kid === "string" ? (key as unknown as AssertionKeyJwk) : placeholder;
}

/** The public part of an EC P-256 or Ed25519 JWK with a kid; the problem when it is not one. */
function publicKeyProblem(key: Record<string, unknown>): string | undefined {
  if ("d" in key) return 'holds a private key ("d"); put only the public key here, as /_auth/jwks.json shows it';
  const ec = key.kty === "EC" && key.crv === "P-256" && typeof key.x === "string" && typeof key.y === "string";
  const okp = key.kty === "OKP" && key.crv === "Ed25519" && typeof key.x === "string";
  if (!ec && !okp) return "must be EC P-256 or OKP Ed25519 public keys (with x, and y for EC)";
  if (typeof key.kid !== "string" || key.kid === "") return 'must have a "kid", as /_auth/jwks.json shows it';
  return undefined;
}

/**
 * The key(s) published next to the signing key during a rotation: a public JWK, or a JWK set as
 * `/_auth/jwks.json` returns it (so the current set can be pasted in before the new key goes live).
 */
export function readPreviousAssertionKeys(reader: SettingsReader, signing: AssertionKeyJwk): AssertionPublicJwk[] {
  const raw = reader.raw("ASSERTION_PREVIOUS_PUBLIC_KEY");
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", "is not JSON; it must be a public JWK or the JWK set copied from /_auth/jwks.json");
    return [];
  }
  const set = typeof parsed === "object" && parsed !== null && "keys" in parsed ? (parsed as { keys: unknown }).keys : [parsed];
  if (!Array.isArray(set) || set.length === 0 || !set.every((key) => typeof key === "object" && key !== null)) {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", "must be a public JWK or a JWK set {\"keys\":[…]}");
    return [];
  }
  const keys = set as Record<string, unknown>[];
  const problem = keys.map(publicKeyProblem).find((found) => found !== undefined);
  if (problem !== undefined) {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", problem);
    return [];
  }
  if (keys.some((key) => key.kid === signing.kid)) {
    reader.problem("ASSERTION_PREVIOUS_PUBLIC_KEY", `has the kid of ASSERTION_SIGNING_KEY ("${signing.kid}"); the new signing key needs a new kid`);
    return [];
  }
  return keys as unknown as AssertionPublicJwk[];
}

/**
 * `request` (default): an assertion signed per request, bound to its method and URL (`htm`, `htu`).
 * `session`: one assertion per session, reused while it is valid — a signature saved per request,
 * for origins that only check who the user is (a copied assertion works on any URL of the origin
 * until it expires, as a per-request one works on its own URL).
 */
export type AssertionMode = "request" | "session";

export function readAssertionMode(reader: SettingsReader): AssertionMode {
  return reader.oneOf("ASSERTION_MODE", ["request", "session"], "request");
}
