// Secrets for `npm start`: generated on the first run, kept in `.dev/secrets.json` (gitignored,
// mode 0600) and reused afterwards, so sessions survive a restart of the embedded default.
// Never used for a real deployment (those use `wrangler secret put`).

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';

/**
 * @typedef {object} DevSecrets
 * @property {string} OIDC_CLIENT_SECRET     shared by the dev provider and the gate
 * @property {string} SESSION_SECRETS        one base64url key of 32 random bytes
 * @property {string} ASSERTION_SIGNING_KEY  private Ed25519 JWK (JSON) with kid and alg EdDSA
 */

/** Fresh random values for every secret. @returns {Promise<DevSecrets>} */
export async function generateSecrets() {
  return {
    OIDC_CLIENT_SECRET: randomBytes(32).toString('base64url'),
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
    ASSERTION_SIGNING_KEY: JSON.stringify(await generateAssertionKey()),
  };
}

/**
 * A private JWK for signing X-Auth-Assertion, with `kid` (its thumbprint) and `alg`. Ed25519
 * (EdDSA) by default: a few µs cheaper per signature in workerd than P-256, the same security, and
 * verified by every current JOSE library; `ES256` (P-256) stays supported for origins that need it.
 * @param {'EdDSA' | 'ES256'} [alg]
 */
export async function generateAssertionKey(alg = 'EdDSA') {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

/**
 * Loads the secrets from `file`, generating (and saving) any that are missing or unreadable.
 * @param {string} file  e.g. <repo>/.dev/secrets.json
 * @returns {Promise<{ secrets: DevSecrets, created: boolean }>}
 */
export async function loadOrCreateSecrets(file) {
  /** @type {Partial<DevSecrets>} */
  let stored = {};
  try {
    stored = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    const code = /** @type {NodeJS.ErrnoException} */ (error).code;
    if (code !== 'ENOENT') console.warn(`${file} is unreadable (${/** @type {Error} */ (error).message}); making new secrets`);
  }
  const fresh = await generateSecrets();
  /** @type {DevSecrets} */
  const secrets = {
    OIDC_CLIENT_SECRET: valid(stored.OIDC_CLIENT_SECRET) ?? fresh.OIDC_CLIENT_SECRET,
    SESSION_SECRETS: valid(stored.SESSION_SECRETS) ?? fresh.SESSION_SECRETS,
    ASSERTION_SIGNING_KEY: validKey(stored.ASSERTION_SIGNING_KEY) ?? fresh.ASSERTION_SIGNING_KEY,
  };
  const created = JSON.stringify(secrets) !== JSON.stringify(stored);
  if (created) await writePrivate(file, `${JSON.stringify(secrets, null, 2)}\n`);
  return { secrets, created };
}

/**
 * Writes a file only its owner can read, creating its folder (mode 0700) when needed.
 * @param {string} file
 * @param {string} content
 */
export async function writePrivate(file, content) {
  const dir = file.slice(0, file.lastIndexOf('/'));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(file, content, { mode: 0o600 });
  await chmod(file, 0o600); // writeFile's mode only applies when it creates the file
}

/** @param {unknown} value */
function valid(value) {
  return typeof value === 'string' && /^[\w-]{43,}$/.test(value) ? value : undefined;
}

/** @param {unknown} value */
function validKey(value) {
  if (typeof value !== 'string') return undefined;
  try {
    const jwk = JSON.parse(value);
    const curve = (jwk.kty === 'EC' && jwk.crv === 'P-256') || (jwk.kty === 'OKP' && jwk.crv === 'Ed25519');
    return curve && jwk.d && jwk.kid ? value : undefined;
  } catch {
    return undefined;
  }
}
