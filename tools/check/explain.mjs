// `npm run check -- --explain URL [--method M] [--email E | --sub S | --service N]`: which route
// of ROUTES decides a request (or the global settings), what that user, service or a visitor
// without a session gets there, and why. Runs the gate's own decisions (src/policy/explain.ts)
// on the settings `wrangler dev` would see: wrangler.toml [vars], .dev.vars, then the environment.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { loadGate } from './gate.mjs';
import { generateAssertionKey } from '../lib/secrets.mjs';
import { readDotenv, readWranglerToml, wranglerFacts } from '../lib/wrangler-files.mjs';

/** Secrets the explanation does not depend on: stand-ins when they are not set here. */
async function standIns() {
  return {
    OIDC_CLIENT_SECRET: 'not-needed-to-explain',
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
    ASSERTION_SIGNING_KEY: JSON.stringify(await generateAssertionKey()),
  };
}

/**
 * @param {{ dir: string, env?: Record<string, string | undefined>, url: string, method?: string,
 *   email?: string, sub?: string, service?: string }} options
 * @returns {Promise<{ code: number, text: string }>}
 */
export async function runExplain({ dir, env = process.env, url, method = 'GET', email, sub, service }) {
  const askers = [email, sub, service].filter((value) => value !== undefined);
  if (askers.length > 1) return { code: 2, text: '--explain: give at most one of --email, --sub, --service' };
  let target;
  try {
    target = new URL(url);
  } catch {
    return { code: 2, text: `--explain: "${url}" is not an absolute URL like https://site.example.ru/admin/` };
  }
  const gate = await loadGate();
  const sections = await readWranglerToml(join(dir, 'wrangler.toml'));
  const devVars = await readDotenv(join(dir, '.dev.vars'));
  const fromEnv = Object.fromEntries(gate.SETTING_NAMES.filter((name) => env[name] !== undefined).map((name) => [name, env[name]]));
  const settings = { ...(sections === undefined ? {} : wranglerFacts(sections).vars), ...devVars, ...fromEnv };
  const missing = Object.fromEntries(Object.entries(await standIns()).filter(([name]) => !settings[name]));
  let config;
  try {
    config = gate.parseConfig({ ...settings, ...missing });
  } catch (error) {
    if (!(error instanceof gate.ConfigError)) throw error;
    return { code: 1, text: ['The settings must be fixed first:', ...error.problems.map((problem) => `  FAIL  ${problem}`)].join('\n') };
  }
  /** @type {{ email: string } | { sub: string } | { service: string } | Record<string, never>} */
  const asker = email !== undefined ? { email } : sub !== undefined ? { sub } : service !== undefined ? { service } : {};
  const who = email ?? sub ?? (service === undefined ? 'a visitor without a session' : `service:${service}`);
  const result = gate.explain(config, target, method.toUpperCase(), asker);
  const lines = [
    `${method.toUpperCase()} ${target.href} as ${who}`,
    `  decided by  ${result.decidedBy}`,
    `  outcome     ${result.outcome}`,
    '  why',
    ...result.why.map((reason) => `    - ${reason}`),
  ];
  if (config.routes.length === 0) lines.push('  (ROUTES is not set: the global settings decide every request)');
  return { code: 0, text: lines.join('\n') };
}
