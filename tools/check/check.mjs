// `npm run check`: is this configuration going to work? Offline first — every problem at once, by
// setting name, from the gate's own parser (src/config/) — then, when the provider answers, what
// its discovery document supports against the settings (PKCE, end-session, client
// authentication, scopes) and whether it accepts the client's credentials. Exit code 1 when
// something must be fixed, 0 otherwise (warnings included).
//
// Settings are read the way `wrangler dev` sees them: wrangler.toml [vars], then .dev.vars (the
// secrets), then environment variables with a setting's name (handy in CI).
//
// Usage: npm run check -- [--dir DIR] [--offline] [--no-credentials] [--json]
//        npm run check -- --explain URL [--method M] [--email E | --sub S | --service N]

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as oauth from 'oauth4webapi';

import { runExplain } from './explain.mjs';
import { loadGate } from './gate.mjs';

/** @typedef {import('./gate.mjs').GateModules} GateModules */
/** @typedef {import('./gate.mjs').GateConfig} GateConfig */
import { generateAssertionKey } from '../lib/secrets.mjs';
import { PLACEHOLDER_KV_ID, readDotenv, readWranglerToml, wranglerFacts } from '../lib/wrangler-files.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SECRETS = ['OIDC_CLIENT_SECRET', 'SESSION_SECRETS', 'ASSERTION_SIGNING_KEY', 'SERVICE_TOKENS'];
const TIMEOUT_MS = 5000;

/**
 * @typedef {object} CheckResult
 * @property {string[]} problems   must be fixed (exit code 1)
 * @property {string[]} warnings   worth a look
 * @property {string[]} passed     what was verified
 * @property {string[]} sources    where the settings came from
 * @property {string[]} redirectUris  to register at Контур.Интегратор
 * @property {'ok' | 'unreachable' | 'skipped'} provider
 */

/**
 * Checks the configuration in `dir`.
 * @param {{ dir?: string, offline?: boolean, credentials?: boolean, env?: Record<string, string | undefined> }} [options]
 * @returns {Promise<CheckResult>}
 */
export async function runCheck({ dir = ROOT, offline = false, credentials = true, env = process.env } = {}) {
  const gate = await loadGate();
  /** @type {CheckResult} */
  const result = { problems: [], warnings: [], passed: [], sources: [], redirectUris: [], provider: 'skipped' };

  const sections = await readWranglerToml(join(dir, 'wrangler.toml'));
  const facts = sections === undefined ? undefined : wranglerFacts(sections);
  const devVars = await readDotenv(join(dir, '.dev.vars'));
  const fromEnv = Object.fromEntries(gate.SETTING_NAMES.filter((name) => env[name] !== undefined).map((name) => [name, env[name]]));
  /** @type {Record<string, string | undefined>} */
  const settings = { ...facts?.vars, ...devVars, ...fromEnv };
  if (facts) result.sources.push(`wrangler.toml [vars]: ${Object.keys(facts.vars).join(', ') || 'none'}`);
  else result.problems.push(`wrangler.toml: not found in ${dir} (run npm run setup)`);
  result.sources.push(`.dev.vars: ${Object.keys(devVars).join(', ') || 'none'}`);
  if (Object.keys(fromEnv).length > 0) result.sources.push(`environment: ${Object.keys(fromEnv).join(', ')}`);

  // Names that are no setting at all: a typo silently falls back to a default.
  for (const name of Object.keys({ ...facts?.vars, ...devVars })) {
    if (!gate.SETTING_NAMES.includes(name)) {
      const near = gate.SETTING_NAMES.find((known) => distance(known, name) <= 2);
      result.warnings.push(`${name}: is not a setting of kontur-gate and is ignored${near ? ` (did you mean ${near}?)` : ''}`);
    }
  }
  for (const name of SECRETS) {
    if (facts?.vars[name] !== undefined) {
      result.problems.push(`${name}: is a secret but is in wrangler.toml [vars]; remove it there and use \`npx wrangler secret put ${name}\` (and .dev.vars locally)`);
    }
  }

  let config;
  try {
    config = gate.parseConfig(settings);
    result.passed.push('settings: every setting is valid (src/config/)');
  } catch (error) {
    if (!(error instanceof gate.ConfigError)) throw error;
    result.problems.push(...error.problems);
  }

  if (facts) {
    if (facts.kvId === undefined) {
      result.problems.push('SESSIONS: wrangler.toml has no [[kv_namespaces]] with binding = "SESSIONS" (run npm run setup, or `npx wrangler kv namespace create SESSIONS`)');
    } else if (facts.kvId === PLACEHOLDER_KV_ID) {
      result.warnings.push('SESSIONS: the KV namespace id is the placeholder: fine for `wrangler dev`, refused by `wrangler deploy` (run `npx wrangler kv namespace create SESSIONS` and put its id in wrangler.toml)');
    } else {
      result.passed.push(`SESSIONS: KV namespace ${facts.kvId}`);
    }
    if (!facts.observability) result.warnings.push('wrangler.toml: [observability] enabled = true is missing; without it the gate\'s log lines are not kept');
    if (facts.routes.length === 0) result.warnings.push('wrangler.toml: no routes; the gate would only answer on workers.dev (run npm run setup with --host)');
    const prefix = (settings.AUTH_PREFIX ?? '').trim() || '/_auth';
    for (const { pattern } of facts.routes) {
      const host = pattern.replace(/^https?:\/\//, '').split('/')[0] ?? '';
      if (host.includes('*')) {
        result.warnings.push(`routes: "${pattern}" has a wildcard host; register the callback of every hostname it covers`);
      } else if (host !== '') {
        result.redirectUris.push(`https://${host}${prefix}/callback`);
      }
    }
  }

  if (offline) return result;
  const providerConfig = config ?? configForProviderCheck(gate, settings, await placeholderSecrets());
  if (providerConfig === undefined) {
    result.warnings.push('provider: not checked until the settings above are fixed');
    return result;
  }
  await checkProvider(gate, providerConfig, result, credentials && config !== undefined);
  return result;
}

/**
 * The settings with every secret that is missing or wrong replaced by a generated one, so the
 * provider can be checked while only secrets are missing; undefined if other settings are wrong.
 *
 * @param {GateModules} gate
 * @param {Record<string, string | undefined>} settings
 * @param {Record<string, string>} placeholders
 * @returns {GateConfig | undefined}
 */
function configForProviderCheck(gate, settings, placeholders) {
  try {
    return gate.parseConfig({ ...settings, ...placeholders });
  } catch {
    return undefined;
  }
}

async function placeholderSecrets() {
  return {
    OIDC_CLIENT_SECRET: 'not-checked',
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
    ASSERTION_SIGNING_KEY: JSON.stringify(await generateAssertionKey()),
  };
}

/**
 * Discovery through the gate's own client (the same validation, algorithm choice and PKCE
 * decision the Worker makes), then the settings against what the provider advertises.
 *
 * @param {GateModules} gate
 * @param {GateConfig} config
 * @param {CheckResult} result
 * @param {boolean} tryCredentials
 */
async function checkProvider(gate, config, result, tryCredentials) {
  const client = new gate.OidcClient(config);
  let discovered;
  try {
    discovered = await client.provider();
  } catch (error) {
    result.provider = 'unreachable';
    result.problems.push(`OIDC_ISSUER: the provider's discovery at ${config.issuer.href} failed: ${error instanceof Error ? error.message : error}`);
    return;
  }
  result.provider = 'ok';
  const { as, usePkce } = discovered;
  result.passed.push(`provider: discovery at ${config.issuer.href} is valid (issuer matches; authorization, token and JWKS endpoints; id_token ${discovered.client.id_token_signed_response_alg})`);

  const s256 = (as.code_challenge_methods_supported ?? []).includes('S256');
  if (config.pkce === 'on' && !s256) {
    result.warnings.push('OIDC_PKCE: is "on" but the provider does not advertise S256; if logins fail with invalid_grant at the callback, set OIDC_PKCE=off');
  } else {
    // Kontur does not document PKCE, and an IdentityServer client not set up for it refuses a
    // code_verifier even though discovery advertises S256: say what that looks like and the fix.
    const refusal = s256 && usePkce
      ? ' (if the client is not set up for PKCE at the provider, logins end in "Sign-in failed" and the log says "invalid_grant" with "OIDC_PKCE=off": then set OIDC_PKCE=off)'
      : '';
    result.passed.push(`PKCE: ${s256 ? 'S256 advertised' : 'not advertised'}; OIDC_PKCE=${config.pkce} → ${usePkce ? 'sent' : 'not sent'}${refusal}`);
  }

  if (as.userinfo_endpoint) {
    result.passed.push(`userinfo: ${as.userinfo_endpoint} (asked at login${config.sessionRevalidate === 'userinfo' ? ' and at every session check: SESSION_REVALIDATE=userinfo' : ''})`);
  } else if (config.sessionRevalidate === 'userinfo') {
    result.warnings.push('SESSION_REVALIDATE: is "userinfo" but the provider advertises no userinfo_endpoint: claims come from the id_token only and sessions are not revalidated');
  }
  result.passed.push(as.revocation_endpoint
    ? `revocation: ${as.revocation_endpoint} (logout revokes the session's tokens)`
    : 'revocation: not advertised (logout ends the session here only; its tokens live on at the provider)');

  if (as.end_session_endpoint) {
    result.passed.push(`end-session: ${as.end_session_endpoint}${config.logoutAtProvider ? ' (used: LOGOUT_AT_PROVIDER=true)' : ''}`);
  } else if (config.logoutAtProvider) {
    result.problems.push('LOGOUT_AT_PROVIDER: is true but the provider advertises no end_session_endpoint; set LOGOUT_AT_PROVIDER=false');
  } else {
    result.passed.push('end-session: not advertised (LOGOUT_AT_PROVIDER=false, nothing needs it)');
  }

  // RFC 8414 §2: an absent list means client_secret_basic only.
  const methods = as.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  if (methods.includes(config.clientAuth)) {
    result.passed.push(`client authentication: ${config.clientAuth} supported (advertised: ${methods.join(', ')})`);
  } else {
    result.problems.push(`OIDC_CLIENT_AUTH: ${config.clientAuth} is not among the provider's token_endpoint_auth_methods_supported (${methods.join(', ')})`);
  }

  const advertised = as.scopes_supported;
  if (Array.isArray(advertised)) {
    const missing = config.scopes.filter((scope) => !advertised.includes(scope));
    if (missing.length === 0) result.passed.push(`scopes: ${config.scopes.join(' ')} all advertised`);
    else if (missing.some((scope) => ['openid', 'profile', 'email', 'phone', 'offline_access'].includes(scope))) {
      result.problems.push(`OIDC_SCOPES: ${missing.join(' ')} not advertised by the provider (scopes_supported: ${advertised.join(' ')})`);
    } else {
      // Product scopes (extern.api, …) are often granted per client without being advertised.
      result.warnings.push(`OIDC_SCOPES: ${missing.join(' ')} not advertised; make sure Контур.Интегратор granted them to this client`);
    }
  } else {
    result.warnings.push('scopes: the provider does not list scopes_supported; make sure the client was granted the scopes in OIDC_SCOPES');
  }
  if (!(as.response_types_supported ?? []).includes('code')) {
    result.problems.push('OIDC_ISSUER: the provider does not advertise response_type "code", which the gate uses');
  }

  if (tryCredentials) await checkCredentials(as, config, result);
}

/**
 * A token request with a made-up authorization code: a provider that accepts the client's
 * credentials answers `invalid_grant` (the code), one that does not answers `invalid_client`.
 * Nothing is created or changed at the provider.
 *
 * @param {import('oauth4webapi').AuthorizationServer} as
 * @param {GateConfig} config
 * @param {CheckResult} result
 */
async function checkCredentials(as, config, result) {
  const clientAuth = config.clientAuth === 'client_secret_basic' ? oauth.ClientSecretBasic(config.clientSecret) : oauth.ClientSecretPost(config.clientSecret);
  const options = { signal: AbortSignal.timeout(TIMEOUT_MS), ...(config.allowHttpIssuer ? { [oauth.allowInsecureRequests]: true } : {}) };
  const redirectUri = result.redirectUris[0] ?? 'http://127.0.0.1:8787/_auth/callback';
  let error;
  try {
    const client = { client_id: config.clientId };
    // oauth4webapi takes the code only from a validated callback; this one is made up on purpose.
    const callback = oauth.validateAuthResponse(as, client, new URLSearchParams({ code: `kontur-gate-check-${randomBytes(16).toString('base64url')}`, iss: as.issuer }), oauth.skipStateCheck);
    const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, callback, redirectUri, oauth.nopkce, options);
    await oauth.processAuthorizationCodeResponse(as, client, response);
  } catch (caught) {
    error = caught;
  }
  const code = error instanceof oauth.ResponseBodyError ? error.error : undefined;
  if (code === 'invalid_grant') {
    result.passed.push(`client credentials: accepted by the token endpoint (${config.clientAuth})`);
  } else if (code === 'invalid_client') {
    result.problems.push(`OIDC_CLIENT_SECRET: the provider refused the client credentials (invalid_client): check OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and OIDC_CLIENT_AUTH`);
  } else if (code === 'unauthorized_client') {
    result.problems.push('OIDC_CLIENT_ID: the client may not use the authorization-code flow (unauthorized_client); choose that scheme in Контур.Интегратор');
  } else {
    const reason = code ?? (error instanceof Error ? `${error.name}: ${error.message}` : 'the made-up code was accepted');
    result.warnings.push(`client credentials: could not be confirmed (${reason})`);
  }
}

/** Levenshtein distance, for "did you mean". @param {string} a @param {string} b */
function distance(a, b) {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(
        /** @type {number} */ (previous[j]) + 1,
        /** @type {number} */ (current[j - 1]) + 1,
        /** @type {number} */ (previous[j - 1]) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return /** @type {number} */ (previous[b.length]);
}

/** The report for people. @param {CheckResult} result @param {string} dir */
export function formatCheck(result, dir) {
  const lines = [`kontur-gate check of ${dir}`, ...result.sources.map((source) => `  settings from ${source}`), ''];
  for (const item of result.passed) lines.push(`  ok    ${item}`);
  for (const item of result.warnings) lines.push(`  warn  ${item}`);
  for (const item of result.problems) lines.push(`  FAIL  ${item}`);
  if (result.redirectUris.length > 0) {
    lines.push('', 'Redirect URIs to register at Контур.Интегратор (exactly):', ...result.redirectUris.map((uri) => `  ${uri}`));
  }
  lines.push(
    '',
    result.problems.length === 0
      ? `No problems${result.warnings.length > 0 ? ` (${result.warnings.length} warning${result.warnings.length > 1 ? 's' : ''})` : ''}.`
      : `${result.problems.length} problem${result.problems.length > 1 ? 's' : ''} to fix.`,
  );
  return lines.join('\n');
}

async function main() {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      offline: { type: 'boolean', default: false },
      'no-credentials': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      explain: { type: 'string' },
      method: { type: 'string' },
      email: { type: 'string' },
      sub: { type: 'string' },
      service: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('Usage: npm run check -- [--dir DIR] [--offline] [--no-credentials] [--json]');
    console.log('       npm run check -- --explain URL [--method M] [--email E | --sub S | --service N]   which route decides, and what that user gets');
    return 0;
  }
  const dir = values.dir ?? ROOT;
  if (values.explain !== undefined) {
    const { code, text } = await runExplain({ dir, url: values.explain, method: values.method, email: values.email, sub: values.sub, service: values.service });
    console.log(text);
    return code;
  }
  const result = await runCheck({ dir, offline: values.offline, credentials: !values['no-credentials'] });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatCheck(result, dir));
  return result.problems.length === 0 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(`npm run check: ${error instanceof Error ? error.message : error}`);
      process.exit(2);
    },
  );
}
