/**
 * Machine clients (`SERVICE_TOKENS`): a CI job or another service sends `X-Gate-Client-Id: <name>`
 * and `X-Gate-Client-Secret: <secret>`, the convention of Cloudflare Access service tokens. The
 * gate keeps only the SHA-256 of each secret and compares digests in constant time, so neither the
 * settings nor the time an answer takes tell anything about a secret.
 */
import type { ServiceTokens } from "../config";
import { CLIENT_ID_HEADER, CLIENT_SECRET_HEADER } from "../config/service-tokens";

/** Far above a generated secret (43 characters): nothing longer is hashed. */
const MAX_SECRET_LENGTH = 512;

const encoder = new TextEncoder();

/** True when the request presents service credentials (either header, even empty): it is then judged as a machine. */
export function presentsServiceCredentials(headers: Headers): boolean {
  return headers.has(CLIENT_ID_HEADER) || headers.has(CLIENT_SECRET_HEADER);
}

/** Compares two equal-length digests without an early exit. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i += 1) difference |= a[i]! ^ (b[i] ?? 0);
  return difference === 0;
}

/** SHA-256 of a secret, the form `SERVICE_TOKENS` stores (base64url-encoded there). */
export async function secretDigest(secret: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(secret)));
}

/**
 * The service the request authenticates as, or undefined (unknown name, wrong or missing secret).
 * An unknown name costs the same digest and comparison as a known one.
 */
export async function authenticateService(tokens: ServiceTokens, headers: Headers): Promise<string | undefined> {
  const name = headers.get(CLIENT_ID_HEADER)?.trim() ?? "";
  const secret = headers.get(CLIENT_SECRET_HEADER)?.trim() ?? "";
  if (secret === "" || secret.length > MAX_SECRET_LENGTH) return undefined;
  const expected = tokens.get(name);
  const digest = await secretDigest(secret);
  const matches = sameDigest(digest, expected ?? new Uint8Array(digest.length));
  return expected !== undefined && matches ? name : undefined;
}
