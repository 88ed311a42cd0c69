// `npm run setup`: a guided setup of a deployment. Asks (or takes from flags, for CI) the Kontur
// issuer, the client id and secret, the site's hostnames, the origin and the public/API paths;
// generates SESSION_SECRETS and ASSERTION_SIGNING_KEY; writes wrangler.toml (vars, KV binding,
// routes) and .dev.vars (the secrets, for `wrangler dev`); prints the redirect URIs to register at
// Контур.Интегратор and the wrangler steps, and runs those steps when wrangler is logged in.
//
// Re-running keeps the existing secrets and settings (they become the defaults). `--rotate`
// follows the rotation procedure: a new session key goes first in SESSION_SECRETS and the old ones
// stay after it (remove them with `--prune-keys` once SESSION_TTL has passed); the assertion key is
// replaced by one with a new kid, and the old public key goes into ASSERTION_PREVIOUS_PUBLIC_KEY so
// /_auth/jwks.json keeps publishing it (removed by `--prune-keys`, after ten minutes or more).
//
// Run `npm run setup -- --help` for the flags.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stdin, stdout } from 'node:process';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { runCheck, formatCheck } from '../check/check.mjs';
import { generateAssertionKey } from '../lib/secrets.mjs';
import { PLACEHOLDER_KV_ID, readDotenv, readWranglerToml, writeDotenv, wranglerFacts } from '../lib/wrangler-files.mjs';
import { addService, DEV_VARS_COMMENT } from './service.mjs';
import { renderWranglerToml } from './toml.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const ISSUERS = Object.freeze({
  production: 'https://identity.kontur.ru',
  test: 'https://identity.testkontur.ru',
});

const USAGE = `Usage: npm run setup -- [options]

Answers (each one asked when not given; --yes asks nothing and keeps the current or default value):
  --issuer production|test|URL   Kontur's production or test issuer, or another provider's URL
  --client-id ID                 client id from Контур.Интегратор
  --client-secret SECRET         client secret ("API key"); or the OIDC_CLIENT_SECRET environment variable
  --host HOST                    a hostname the gate protects (repeat, or comma-separate)
  --zone ZONE                    the Cloudflare zone of the hostnames (default: the last two labels)
  --origin-url URL               where to forward; "none" = the zone's own origin behind the route
  --public-paths LIST            paths served without login, e.g. "/static/*, /favicon.ico" ("none" to clear)
  --api-paths LIST               paths answered 401 JSON instead of a login redirect ("none" to clear)
  --name NAME                    Worker name (default kontur-gate)
  --kv-id ID                     an existing KV namespace id for SESSIONS

Secrets:
  --rotate                       new session key first in SESSION_SECRETS (old kept); new assertion key,
                                 the old public key kept in ASSERTION_PREVIOUS_PUBLIC_KEY
  --prune-keys                   keep only the first key of SESSION_SECRETS (after SESSION_TTL has
                                 passed) and drop ASSERTION_PREVIOUS_PUBLIC_KEY
  --add-service NAME             only this: a machine client for ROUTES "services"; prints a new secret
                                 once and keeps its SHA-256 in SERVICE_TOKENS (.dev.vars)

Running wrangler:
  --run / --no-run               run the wrangler steps (default: when \`wrangler whoami\` says logged in)
  --wrangler CMD                 the wrangler to run (default: this repo's node_modules/.bin/wrangler)

Other:
  --dir DIR                      where wrangler.toml and .dev.vars are (default: the repository)
  --yes, -y                      ask nothing
  --help, -h`;

/** @param {string[]} argv */
export function parseSetupArgs(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      host: { type: 'string', multiple: true },
      zone: { type: 'string' },
      'origin-url': { type: 'string' },
      'public-paths': { type: 'string' },
      'api-paths': { type: 'string' },
      name: { type: 'string' },
      'kv-id': { type: 'string' },
      rotate: { type: 'boolean', default: false },
      'prune-keys': { type: 'boolean', default: false },
      'add-service': { type: 'string' },
      run: { type: 'boolean' },
      'no-run': { type: 'boolean', default: false },
      wrangler: { type: 'string' },
      dir: { type: 'string' },
      yes: { type: 'boolean', short: 'y', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  return values;
}

/** `production`, `test` or a URL → the issuer URL. @param {string} answer */
export function issuerFrom(answer) {
  const key = answer.trim().toLowerCase();
  if (key === 'production' || key === 'prod' || key === '1') return ISSUERS.production;
  if (key === 'test' || key === '2') return ISSUERS.test;
  const url = new URL(answer.trim());
  return url.href.replace(/\/$/, '');
}

/** @param {string} list */
function splitList(list) {
  return list.split(',').map((item) => item.trim()).filter(Boolean);
}

/** The zone a hostname most likely belongs to: its last two labels. @param {string} host */
export function guessZone(host) {
  return host.split('.').slice(-2).join('.');
}

/**
 * Asks questions on a terminal (or reads answers line by line from a pipe); with `yes`, never asks.
 * @param {boolean} yes
 */
function questioner(yes) {
  const rl = yes ? undefined : createInterface({ input: stdin, output: stdout, terminal: stdin.isTTY === true });
  return {
    /**
     * @param {string} question
     * @param {string | undefined} current  shown in brackets; Enter keeps it
     * @param {{ secret?: boolean }} [options]
     */
    async ask(question, current, { secret = false } = {}) {
      if (rl === undefined) return current;
      const shown = current === undefined || current === '' ? '' : secret ? ' [keep the current one]' : ` [${current}]`;
      let muted = false;
      if (secret && stdin.isTTY) {
        // Echo nothing while the secret is typed.
        const write = /** @type {any} */ (rl)._writeToOutput;
        /** @type {any} */ (rl)._writeToOutput = (/** @type {string} */ text) => {
          if (!muted || text.includes(question)) write.call(rl, text);
        };
        muted = true;
      }
      const answer = (await rl.question(`${question}${shown}: `)).trim();
      if (muted) stdout.write('\n');
      return answer === '' ? current : answer;
    },
    close() {
      rl?.close();
    },
  };
}

/**
 * Runs a command, feeding `input` to its stdin; resolves with its exit code and output.
 * @param {string[]} command
 * @param {{ input?: string, cwd: string, echo?: boolean }} options
 * @returns {Promise<{ code: number, out: string }>}
 */
function run(command, { input, cwd, echo = true }) {
  return new Promise((resolvePromise) => {
    const [file, ...args] = /** @type {[string, ...string[]]} */ (command);
    const child = spawn(file, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
    let out = '';
    const collect = (/** @type {Buffer} */ chunk) => {
      out += chunk.toString('utf8');
      if (echo) stdout.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (error) => resolvePromise({ code: 127, out: `${out}${error.message}` }));
    child.on('close', (code) => resolvePromise({ code: code ?? 1, out }));
    child.stdin.end(input ?? '');
  });
}

/**
 * The whole setup; returns what it did so tests can check it.
 * @param {string[]} argv
 */
export async function setup(argv) {
  const flags = parseSetupArgs(argv);
  if (flags.help) {
    console.log(USAGE);
    return { code: 0 };
  }
  const dir = resolve(flags.dir ?? ROOT);
  await mkdir(dir, { recursive: true });
  if (flags['add-service'] !== undefined) return addService(dir, flags['add-service']);
  const tomlFile = join(dir, 'wrangler.toml');
  const devVarsFile = join(dir, '.dev.vars');
  const sections = (await readWranglerToml(tomlFile)) ?? (await readWranglerToml(join(ROOT, 'wrangler.toml'))) ?? [];
  const facts = wranglerFacts(sections);
  const existingSecrets = await readDotenv(devVarsFile);
  const q = questioner(flags.yes);

  console.log('kontur-gate setup: Kontur (Контур.ID) login in front of your site.\n');
  let answers;
  try {
    const issuerAnswer =
      flags.issuer ??
      (await q.ask(
        'Kontur issuer: "production" (identity.kontur.ru), "test" (identity.testkontur.ru) or a URL',
        facts.vars.OIDC_ISSUER ?? 'production',
      )) ??
      'production';
    const issuer = issuerFrom(issuerAnswer);
    const clientId = flags['client-id'] ?? (await q.ask('Client id from Контур.Интегратор', facts.vars.OIDC_CLIENT_ID));
    const clientSecret =
      flags['client-secret'] ??
      (process.env.OIDC_CLIENT_SECRET || undefined) ??
      (await q.ask('Client secret ("API key") from Контур.Интегратор', existingSecrets.OIDC_CLIENT_SECRET, { secret: true }));
    const currentHosts = facts.routes.map((route) => route.pattern.replace(/^https?:\/\//, '').split('/')[0] ?? '').filter(Boolean);
    const hostAnswer = flags.host?.join(',') ?? (await q.ask('Hostnames of the site, comma-separated (e.g. app.example.ru)', currentHosts.join(', ')));
    const hosts = splitList(hostAnswer ?? '');
    const currentZone = facts.routes.find((route) => route.zone !== undefined)?.zone;
    const zone = flags.zone ?? (hosts.length === 0 ? undefined : await q.ask('Cloudflare zone of these hostnames', currentZone ?? guessZone(hosts[0] ?? '')));
    const none = (/** @type {string | undefined} */ value) => (value === undefined || ['none', '-'].includes(value.trim().toLowerCase()) ? '' : value.trim());
    const originUrl = none(
      flags['origin-url'] ??
        (await q.ask('Origin URL to forward to ("none" = the zone\'s own origin behind the route)', facts.vars.ORIGIN_URL ?? 'none')),
    );
    const publicPaths = none(flags['public-paths'] ?? (await q.ask('Paths served without login ("none" for none)', facts.vars.PUBLIC_PATHS ?? 'none')));
    const apiPaths = none(flags['api-paths'] ?? (await q.ask('API paths answered 401 instead of a login redirect ("none" for none)', facts.vars.API_PATHS ?? 'none')));
    answers = { issuer, clientId: clientId?.trim() ?? '', clientSecret: clientSecret?.trim() ?? '', hosts, zone, originUrl, publicPaths, apiPaths };
  } finally {
    q.close();
  }

  // Secrets: kept unless asked otherwise; rotation puts the new session key first.
  const keys = splitList(existingSecrets.SESSION_SECRETS ?? '');
  const notes = [];
  if (keys.length === 0) {
    keys.push(randomBytes(32).toString('base64url'));
    notes.push('generated SESSION_SECRETS');
  } else if (flags.rotate) {
    keys.unshift(randomBytes(32).toString('base64url'));
    notes.push(`rotated SESSION_SECRETS: a new key seals from now on, the ${keys.length - 1} older one(s) still open existing sessions`);
  } else {
    notes.push('kept SESSION_SECRETS');
  }
  if (flags['prune-keys'] && keys.length > 1) {
    notes.push(`pruned SESSION_SECRETS to its first key (sessions sealed with the ${keys.length - 1} older key(s) go back to login)`);
    keys.splice(1);
  }
  let assertionKey = existingSecrets.ASSERTION_SIGNING_KEY;
  /** @type {Record<string, string>} set only when rotating or pruning; otherwise the var is kept as it is */
  const previousKey = {};
  if (assertionKey === undefined || assertionKey === '' || flags.rotate) {
    const old = assertionKey === undefined || assertionKey === '' ? undefined : publicJwk(assertionKey);
    assertionKey = JSON.stringify(await generateAssertionKey());
    if (old === undefined) {
      notes.push('generated ASSERTION_SIGNING_KEY');
    } else {
      // The gate keeps publishing the old public key, so assertions signed just before the
      // deployment still verify at the origins.
      previousKey.ASSERTION_PREVIOUS_PUBLIC_KEY = JSON.stringify({ keys: [old] });
      notes.push(`rotated ASSERTION_SIGNING_KEY (new kid; the old public key "${old.kid}" stays in /_auth/jwks.json through ASSERTION_PREVIOUS_PUBLIC_KEY until --prune-keys)`);
    }
  } else {
    notes.push('kept ASSERTION_SIGNING_KEY');
  }
  if (flags['prune-keys'] && !flags.rotate && facts.vars.ASSERTION_PREVIOUS_PUBLIC_KEY !== undefined) {
    previousKey.ASSERTION_PREVIOUS_PUBLIC_KEY = '';
    notes.push('removed ASSERTION_PREVIOUS_PUBLIC_KEY');
  }
  /** @type {{ SESSION_SECRETS: string, ASSERTION_SIGNING_KEY: string, OIDC_CLIENT_SECRET?: string }} */
  const secrets = { SESSION_SECRETS: keys.join(','), ASSERTION_SIGNING_KEY: assertionKey };
  if (answers.clientSecret !== '') secrets.OIDC_CLIENT_SECRET = answers.clientSecret;

  const kvId = flags['kv-id'] ?? facts.kvId ?? PLACEHOLDER_KV_ID;
  const issuerUrl = new URL(answers.issuer);
  const vars = {
    OIDC_ISSUER: answers.issuer,
    // A development provider on this machine (the test suite's, or `node tools/dev-provider/provider.mjs`).
    OIDC_ALLOW_HTTP: issuerUrl.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(issuerUrl.hostname) ? 'true' : '',
    OIDC_CLIENT_ID: answers.clientId,
    ORIGIN_URL: answers.originUrl,
    PUBLIC_PATHS: answers.publicPaths,
    API_PATHS: answers.apiPaths,
    ...previousKey,
  };
  const routes = answers.hosts.map((host) => ({ pattern: `${host}/*`, zone: answers.zone ?? guessZone(host) }));
  const write = async (/** @type {string} */ id) => {
    const text = renderWranglerToml(sections, { name: flags.name ?? facts.name ?? 'kontur-gate', vars, kvId: id, routes });
    await writeFile(tomlFile, text); // no secret in it: an ordinary file
  };
  await write(kvId);
  await writeDotenv(
    devVarsFile,
    {
      ...(secrets.OIDC_CLIENT_SECRET === undefined ? {} : { OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET }),
      SESSION_SECRETS: secrets.SESSION_SECRETS,
      ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY,
      // Machine clients added with --add-service survive a re-run.
      ...(existingSecrets.SERVICE_TOKENS === undefined ? {} : { SERVICE_TOKENS: existingSecrets.SERVICE_TOKENS }),
    },
    DEV_VARS_COMMENT,
  );

  const prefix = (facts.vars.AUTH_PREFIX ?? '').trim() || '/_auth';
  const redirectUris = answers.hosts.map((host) => `https://${host}${prefix}/callback`);
  const postLogoutUris = answers.hosts.map((host) => `https://${host}${prefix}/signed-out`);
  const print = (/** @type {string} */ text = '') => console.log(text);
  print(`\nWrote ${tomlFile} and ${devVarsFile} (${notes.join('; ')}).`);
  print('\n1. Register at Контур.Интегратор (https://integrations.kontur.ru/), authorization-code scheme:');
  if (redirectUris.length === 0) print('   (no hostnames yet: run setup again with --host)');
  for (const uri of redirectUris) print(`   redirect URI            ${uri}`);
  for (const uri of postLogoutUris) print(`   post-logout URI         ${uri}   (only with LOGOUT_AT_PROVIDER=true)`);
  print(`   local development       http://127.0.0.1:8787${prefix}/callback   (only if you run \`npx wrangler dev\` against this issuer)`);
  print('   scopes                  openid profile email (OIDC_SCOPES)');
  if (answers.clientId === '') print('   then run setup again with the client id you get there.');

  const steps = [];
  if (kvId === PLACEHOLDER_KV_ID) steps.push({ label: 'create the SESSIONS KV namespace', command: ['kv', 'namespace', 'create', 'SESSIONS'], kind: 'kv' });
  // The secrets go up with the deployment itself, so the Worker is never live without them.
  const deployable = answers.clientId !== '' && secrets.OIDC_CLIENT_SECRET !== undefined && answers.hosts.length > 0;
  if (deployable) steps.push({ label: 'deploy, with the secrets from .dev.vars', command: ['deploy', '--secrets-file', '.dev.vars'], kind: 'deploy' });
  print('\n2. Deploy (from this folder):');
  print('   npm run check                                # the settings, and what the provider supports');
  print('   npx wrangler login');
  for (const step of steps) print(`   npx wrangler ${step.command.join(' ')}`.padEnd(48) + `# ${step.label}`);
  if (!deployable) {
    print('   npx wrangler deploy --secrets-file .dev.vars # once setup has the client id, the secret and a hostname');
  }
  print('   npx wrangler tail                            # the gate\'s log lines, live (or Workers Logs in the dashboard)');
  print('   Rotate keys later with: npm run setup -- --rotate (then deploy again)');

  const wrangler = flags.wrangler === undefined ? [process.execPath, join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js')] : flags.wrangler.split(' ');
  let runSteps = flags.run === true && !flags['no-run'];
  if (flags.run === undefined && !flags['no-run']) {
    const whoami = await run([...wrangler, 'whoami'], { cwd: dir, echo: false });
    runSteps = whoami.code === 0 && !/not authenticated|not logged in/i.test(whoami.out);
    print(runSteps ? '\nwrangler is logged in: running these steps now.' : '\nwrangler is not logged in: run the steps above yourself.');
  }
  let code = 0;
  if (runSteps) {
    for (const step of steps) {
      print(`\n$ wrangler ${step.command.join(' ')}`);
      const result = await run([...wrangler, ...step.command], { cwd: dir });
      if (result.code !== 0) {
        print(`wrangler ${step.command.join(' ')} failed (exit ${result.code}); fix it and run setup again.`);
        code = 1;
        break;
      }
      if (step.kind === 'kv') {
        const id = /\bid\b["'\s:=]+([0-9a-f]{32})/.exec(result.out)?.[1];
        if (id === undefined) {
          print('Could not find the new namespace id in wrangler\'s output; run setup again with --kv-id ID.');
          code = 1;
          break;
        }
        await write(id);
        print(`Put the SESSIONS namespace ${id} into wrangler.toml.`);
      }
    }
  }

  // The settings as written, checked offline with the gate's own parser.
  const check = await runCheck({ dir, offline: true, env: {} });
  if (check.problems.length > 0) {
    print(`\n${formatCheck(check, dir)}`);
    if (code === 0) code = 1;
  } else {
    print('\nThe settings pass `npm run check` offline; run it without --offline to check the provider too.');
  }
  return { code, dir, redirectUris, ran: runSteps };
}

/** The public half of a private JWK (JSON), for ASSERTION_PREVIOUS_PUBLIC_KEY. @param {string} json */
function publicJwk(json) {
  const { d, ...rest } = JSON.parse(json);
  return d === undefined ? undefined : rest;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  setup(process.argv.slice(2)).then(
    ({ code }) => process.exit(code),
    (error) => {
      console.error(`npm run setup: ${error instanceof Error ? error.message : error}`);
      process.exit(2);
    },
  );
}
