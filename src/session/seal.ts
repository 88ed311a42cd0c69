/**
 * Authenticated encryption for everything the gate stores outside itself (cookies, KV records):
 * AES-256-GCM with keys derived by HKDF from `SESSION_SECRETS`. A sealed value names the key that
 * sealed it, so opening costs one decryption and old keys keep working during rotation.
 *
 * Format: `1.<key id>.<base64url(iv || ciphertext)>`; the purpose (cookie name, KV key) is bound as
 * additional data, so a value sealed for one place cannot be replayed in another.
 */

const VERSION = "1";
const IV_BYTES = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface SealingKey {
  readonly id: string;
  readonly key: CryptoKey;
}

/** Keys newest first: the first seals, all of them open. */
export type Keyring = readonly SealingKey[];

export interface Opened<T> {
  readonly value: T;
  /** False when an older key sealed it: the caller should re-seal on its next write. */
  readonly current: boolean;
}

// The native base64 methods of Uint8Array (ES2026, in workerd): the session cookie is decoded on
// every request, and atob + a per-character copy took ~10× longer than the AES-GCM decryption.
declare global {
  interface Uint8ArrayConstructor {
    fromBase64(text: string, options?: { alphabet?: "base64" | "base64url" }): Uint8Array<ArrayBuffer>;
  }
  interface Uint8Array<TArrayBuffer extends ArrayBufferLike = ArrayBufferLike> {
    toBase64(options?: { alphabet?: "base64" | "base64url"; omitPadding?: boolean }): string;
  }
}

export function base64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * The bytes of a base64url text in its one canonical spelling, else undefined. The native decoder
 * ignores the unused low bits of the last character, so several spellings would decode to the same
 * sealed value; only the one the gate wrote is accepted.
 */
function fromBase64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const bytes = Uint8Array.fromBase64(text, { alphabet: "base64url" });
    return base64url(bytes) === text ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** A random identifier with 256 bits of entropy, URL- and cookie-safe. */
export function randomId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}


async function importSealingKey(secret: Uint8Array): Promise<SealingKey> {
  const material = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveKey", "deriveBits"]);
  const salt = encoder.encode("kontur-gate");
  const key = await crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info: encoder.encode("seal v1") },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
  const idBits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: encoder.encode("key id v1") }, material, 48);
  return { id: base64url(new Uint8Array(idBits)), key };
}

export async function importKeyring(secrets: readonly Uint8Array[]): Promise<Keyring> {
  return Promise.all(secrets.map(importSealingKey));
}

export async function seal(keyring: Keyring, purpose: string, value: unknown): Promise<string> {
  const current = keyring[0];
  if (current === undefined) throw new Error("seal: the keyring is empty");
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(purpose) },
    current.key,
    encoder.encode(JSON.stringify(value)),
  );
  const body = new Uint8Array(IV_BYTES + ciphertext.byteLength);
  body.set(iv);
  body.set(new Uint8Array(ciphertext), IV_BYTES);
  return `${VERSION}.${current.id}.${base64url(body)}`;
}

/**
 * Opens a sealed value. Anything that is not exactly a value sealed by one of our keys for this
 * purpose — truncated, tampered, foreign key, garbage — yields undefined, never an exception.
 */
export async function open(keyring: Keyring, purpose: string, sealed: string): Promise<Opened<unknown> | undefined> {
  const [version, keyId, data, extra] = sealed.split(".");
  if (version !== VERSION || keyId === undefined || data === undefined || extra !== undefined) return undefined;
  const index = keyring.findIndex((candidate) => candidate.id === keyId);
  const body = fromBase64url(data);
  if (index < 0 || body === undefined || body.length <= IV_BYTES + 16) return undefined;
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: body.subarray(0, IV_BYTES), additionalData: encoder.encode(purpose) },
      keyring[index]!.key,
      body.subarray(IV_BYTES),
    );
    return { value: JSON.parse(decoder.decode(plaintext)) as unknown, current: index === 0 };
  } catch {
    return undefined;
  }
}
