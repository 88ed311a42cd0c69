// The gate's own settings parser and provider client, for `npm run check` and `npm run setup`:
// src/ is TypeScript for workerd, so it is bundled for Node with esbuild (shipped with wrangler)
// into a temporary module and imported. The checks then run exactly the code the Worker runs.

import { build } from 'esbuild';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The part of src/config/'s `Config` the check reads. Typed here rather than imported: src/ is
 * typed for workerd, this program for Node, and the bundle below is what actually runs.
 * @typedef {object} GateConfig
 * @property {URL} issuer
 * @property {string} clientId
 * @property {string} clientSecret
 * @property {'client_secret_post' | 'client_secret_basic'} clientAuth
 * @property {readonly string[]} scopes
 * @property {'auto' | 'on' | 'off'} pkce
 * @property {boolean} allowHttpIssuer
 * @property {boolean} logoutAtProvider
 * @property {'userinfo' | 'off'} sessionRevalidate
 * @property {readonly unknown[]} routes  ROUTES, parsed
 */

/**
 * @typedef {object} GateModules
 * @property {(settings: Record<string, string | undefined>) => GateConfig} parseConfig  src/config/index.ts
 * @property {readonly string[]} SETTING_NAMES
 * @property {new (problems: string[]) => Error & { problems: string[] }} ConfigError
 * @property {(config: GateConfig, url: URL, method: string, asker: { email: string } | { sub: string } | { service: string } | Record<string, never>) => { decidedBy: string, outcome: string, why: readonly string[] }} explain  src/policy/explain.ts
 * @property {new (config: GateConfig) => { provider(): Promise<{ as: import('oauth4webapi').AuthorizationServer, usePkce: boolean, client: import('oauth4webapi').Client }> }} OidcClient
 */

/** @type {Promise<GateModules> | undefined} */
let loaded;

/** @returns {Promise<GateModules>} */
export function loadGate() {
  loaded ??= bundleAndImport();
  return loaded;
}

async function bundleAndImport() {
  const dir = await mkdtemp(join(tmpdir(), 'kontur-gate-check-'));
  const outfile = join(dir, 'gate.mjs');
  try {
    await build({
      stdin: {
        contents: [
          'export { parseConfig, SETTING_NAMES } from "./src/config/index.ts";',
          'export { ConfigError } from "./src/common/errors.ts";',
          'export { OidcClient } from "./src/oidc/client.ts";',
          'export { explain } from "./src/policy/explain.ts";',
        ].join('\n'),
        resolveDir: ROOT,
        loader: 'ts',
      },
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'silent',
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
