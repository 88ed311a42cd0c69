// `npm run setup -- --add-service NAME`: a machine client for ROUTES `services` (SERVICE_TOKENS).
// Makes a strong random secret, prints it once, and stores only its SHA-256 in .dev.vars; adding
// a name that exists replaces its secret (rotation: the old one stops working at the next deploy).

import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { readDotenv, writeDotenv } from '../lib/wrangler-files.mjs';

/** What SERVICE_TOKENS accepts as a name (src/config/service-tokens.ts). */
const SERVICE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export const DEV_VARS_COMMENT =
  'kontur-gate secrets for `npx wrangler dev`, written by `npm run setup`. Never commit this file.\nProduction gets the same values with `npx wrangler secret bulk` (see npm run setup).';

/** The SERVICE_TOKENS entry for a secret: `name=<base64url SHA-256>`. @param {string} name @param {string} secret */
export function serviceTokenEntry(name, secret) {
  return `${name}=${createHash('sha256').update(secret, 'utf8').digest('base64url')}`;
}

/**
 * Adds (or replaces) the service `name` in `dir`/.dev.vars and prints its secret once.
 * @param {string} dir
 * @param {string} name
 * @param {(line?: string) => void} [print]
 * @returns {Promise<{ code: number, secret?: string }>}
 */
export async function addService(dir, name, print = (line = '') => console.log(line)) {
  if (!SERVICE_NAME.test(name)) {
    print(`--add-service: "${name}" is not a service name (letters, digits, . _ -, at most 64)`);
    return { code: 1 };
  }
  const file = join(dir, '.dev.vars');
  const existing = await readDotenv(file);
  const entries = (existing.SERVICE_TOKENS ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  const kept = entries.filter((entry) => entry.split('=', 1)[0]?.trim() !== name);
  // 32 random bytes: far beyond guessing, and hashing it once is all the protection it needs.
  const secret = randomBytes(32).toString('base64url');
  await writeDotenv(file, { ...existing, SERVICE_TOKENS: [...kept, serviceTokenEntry(name, secret)].join(',') }, DEV_VARS_COMMENT);
  print(`${kept.length < entries.length ? 'Replaced' : 'Added'} the service "${name}" in ${file} (SERVICE_TOKENS keeps only the SHA-256 of its secret).`);
  print('');
  print('Its secret, shown this once (store it in the client\'s secret store now):');
  print(`  ${secret}`);
  print('');
  print('The client sends:');
  print(`  X-Gate-Client-Id: ${name}`);
  print('  X-Gate-Client-Secret: <the secret>');
  print(`It is admitted only on ROUTES entries whose "services" list "${name}".`);
  print('Production: npx wrangler secret put SERVICE_TOKENS (the value from .dev.vars), or deploy with --secrets-file .dev.vars.');
  return { code: 0, secret };
}
