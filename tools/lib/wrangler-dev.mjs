// How the tools start wrangler: `npm start` runs `wrangler dev`, `npm run sessions` runs `wrangler
// kv`, and the test of `npm run sessions` (test/integration/ops-sessions.test.ts) runs the same
// `wrangler dev` as `npm start`, so the gate it tests is started the way an operator starts it.

import { join } from 'node:path';

import { repoRoot } from './wrangler-files.mjs';

/** wrangler's own entry point, run with this Node (`process.execPath`): no npx, no shell. */
export const WRANGLER_JS = join(repoRoot, 'node_modules', 'wrangler', 'bin', 'wrangler.js');

/**
 * Environment for every wrangler the tools start: without it, wrangler tries to reach the internet
 * (telemetry, the `Request.cf` download) and prints its banner.
 */
export const QUIET_WRANGLER_ENV = Object.freeze({
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
});

/**
 * @typedef {object} WranglerDev
 * @property {number} port  the gate's port on 127.0.0.1
 * @property {string} persistTo  local state (KV) directory, absolute or relative to the repository
 * @property {string} envFile  dotenv file with the secrets: given one, wrangler reads neither
 *   `.dev.vars` nor `.env`, so a user's own settings never leak in
 * @property {Record<string, string>} vars  every other setting, each a `--var` (wins over
 *   wrangler.toml's [vars])
 * @property {number} [inspectorPort]  default 9229; give a free one when another wrangler may run
 */

/**
 * The arguments, after `process.execPath`, of `wrangler dev` for the repository's wrangler.toml
 * on 127.0.0.1, with no interactive hotkeys (its output goes to a pipe).
 * @param {WranglerDev} options
 * @returns {string[]}
 */
export function wranglerDevArgs({ port, persistTo, envFile, vars, inspectorPort }) {
  return [
    WRANGLER_JS,
    'dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    ...(inspectorPort === undefined ? [] : ['--inspector-port', String(inspectorPort)]),
    '--persist-to', persistTo,
    '--show-interactive-dev-session=false',
    '--env-file', envFile,
    ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
  ];
}
