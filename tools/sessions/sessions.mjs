// `npm run sessions`: list and end users' sessions from the command line, for administrators (lock
// someone out, end a lost laptop's session). Works through wrangler's own KV commands — `wrangler
// kv key list`, `bulk put` (tombstones) and `bulk delete` on the `SESSIONS` binding of the wrangler.toml in the
// current directory — on the local state of `wrangler dev` by default (`.wrangler/state`, or the
// directory given with --persist-to, as wrangler dev uses it) and on the deployed namespace with
// --remote. It reads only the index keys and their metadata (docs/storage-schema.md): no record
// is opened, no token is ever printed, and no secret is needed.
//
// Usage: npm run sessions -- list|revoke (--email E | --sub S | --all) [--remote] [--persist-to DIR]
//          [--config FILE] [--env NAME]

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { runAsScript } from '../lib/listen.mjs';
import { QUIET_WRANGLER_ENV, WRANGLER_JS } from '../lib/wrangler-dev.mjs';

export const USAGE = `Usage: npm run sessions -- list|revoke (--email E | --sub S | --all) [options]

  list     shows each live session: user hash, session id (first 8 characters), host,
           start, last check that wrote the record, expiry
  revoke   ends those sessions: each is refused at its next check (SESSION_CHECK_INTERVAL)

  --email E          the user with this e-mail (as it was at login; case-insensitive)
  --sub S            the user with this subject (sub)
  --all              every session (revoke --all signs everyone out)
  --remote           the deployed namespace (default: the local state of wrangler dev)
  --persist-to DIR   local state directory, as given to wrangler dev (default .wrangler/state;
                     npm start uses .dev/state)
  --config FILE      wrangler configuration (default: wrangler.toml here)
  --env NAME         wrangler environment
`;

/** The index's hashes, exactly as src/session/user-index.ts and src/edge/log.ts compute them. */
const sha256Hex = (/** @type {string} */ text, /** @type {number} */ digits) =>
  createHash('sha256').update(text, 'utf8').digest('hex').slice(0, digits);
export const userHash = (/** @type {string} */ sub) => sha256Hex(sub, 16);
export const emailHash = (/** @type {string} */ email) => sha256Hex(email.trim().toLowerCase(), 16);

/**
 * @typedef {object} Target  where the SESSIONS namespace is
 * @property {boolean} remote
 * @property {string} persistTo
 * @property {string} [config]
 * @property {string} [env]
 * @property {string} [cwd]
 */

/** Local state is one SQLite file that a running `wrangler dev` also writes: it can be busy for a moment. */
const LOCAL_BUSY = /SQLITE_BUSY|database is locked/;

/**
 * Runs `attempt` again while it fails because local state was busy: up to `attempts` times in all,
 * waiting `delayMs`, then twice that, and so on. Every wrangler command the tool runs is idempotent
 * (a listing, a bulk put of the same values, a bulk delete of the same keys), so a retry is safe.
 * Any other failure, and the last busy one, is thrown as it is.
 * @template T
 * @param {() => Promise<T>} attempt
 * @param {{ attempts?: number, delayMs?: number }} [options]
 * @returns {Promise<T>}
 */
export async function retryWhileBusy(attempt, { attempts = 5, delayMs = 200 } = {}) {
  for (let tried = 1; ; tried += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (tried >= attempts || !(error instanceof Error) || !LOCAL_BUSY.test(error.message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs * 2 ** (tried - 1)));
    }
  }
}

/**
 * Runs one `wrangler kv …` command on the SESSIONS binding and returns its standard output; on
 * local state, again while the state is busy.
 * @param {string[]} args @param {Target} target
 */
function wrangler(args, target) {
  return target.remote ? wranglerOnce(args, target) : retryWhileBusy(() => wranglerOnce(args, target));
}

/** @param {string[]} args @param {Target} target @returns {Promise<string>} */
function wranglerOnce(args, target) {
  const where = target.remote ? ['--remote'] : ['--local', '--persist-to', target.persistTo];
  const full = [WRANGLER_JS, 'kv', ...args, '--binding', 'SESSIONS', ...where,
    ...(target.config ? ['--config', target.config] : []), ...(target.env ? ['--env', target.env] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, full, {
      cwd: target.cwd ?? process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...QUIET_WRANGLER_ENV },
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => { out += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk) => { err += chunk; });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`wrangler kv ${args[0]} ${args[1]} failed (exit ${code}):\n${(err || out).trim()}`));
    });
  });
}

/**
 * Every key of the namespace with its metadata and expiration, in one `wrangler kv key list`
 * (wrangler pages through them; each wrangler start costs seconds, so one listing serves all).
 * @param {Target} target
 * @returns {Promise<{ name: string, expiration?: number, metadata?: any }[]>}
 */
export async function listKeys(target) {
  const out = await wrangler(['key', 'list'], target);
  const start = out.indexOf('[');
  if (start === -1) throw new Error(`wrangler kv key list printed no JSON:\n${out.trim()}`);
  return JSON.parse(out.slice(start));
}

/**
 * @typedef {object} Session  one live session, as the index and its record's key describe it
 * @property {string} sid
 * @property {string} user   hash of sub (the `user` of the gate's log lines)
 * @property {string} host
 * @property {number} iat
 * @property {number} exp
 * @property {number | undefined} lastWrite  login, a refresh or a re-seal
 * @property {string[]} keys  every KV key of the session
 */

/**
 * The live sessions matching the selector (index entries whose record still exists), from a listing.
 * @param {{ email?: string, sub?: string }} who
 * @param {{ name: string, metadata?: any }[]} listing
 * @returns {Session[]}
 */
export function findSessions(who, listing) {
  const prefix = who.sub === undefined ? 'user:' : `user:${userHash(who.sub)}:`;
  const records = new Map(listing.filter((key) => key.name.startsWith('session:')).map((key) => [key.name.slice('session:'.length), key]));
  const wanted = who.email === undefined ? undefined : emailHash(who.email);
  /** @type {Session[]} */
  const sessions = [];
  for (const { name, metadata } of listing) {
    if (!name.startsWith(prefix)) continue;
    const [, user = '', sid = ''] = name.split(':');
    const record = records.get(sid);
    // An entry without its record is a session that ended already (logout, expiry, a failed refresh).
    if (record === undefined || metadata?.v !== 1) continue;
    if (wanted !== undefined && metadata.eh !== wanted) continue;
    const keys = [`session:${sid}`, name, ...(typeof metadata.ph === 'string' ? [`psid:${metadata.ph}:${sid}`] : [])];
    sessions.push({ sid, user, host: metadata.host, iat: metadata.iat, exp: metadata.exp, lastWrite: record.metadata?.w, keys });
  }
  return sessions.sort((a, b) => a.iat - b.iat);
}

/** Every session key of a listing (revoke --all), sessions from before the index included. */
const allSessionKeys = (/** @type {{ name: string }[]} */ listing) =>
  listing.map((key) => key.name).filter((name) => /^(session|user|psid):/.test(name));

/** Seconds a tombstone lives: TOMBSTONE_TTL in src/session/store.ts (test/integration/ops-sessions-tool.test.ts holds the two equal). */
const TOMBSTONE_TTL = 300;

/**
 * The tombstone of each session about to end (`tombstone:<sid>`, the epoch second, as the gate's
 * own logout writes it): a check that was refreshing one of them while it ended finds it after its
 * write and undoes that write, so no session comes back from a revoke.
 * @param {string[]} names  the keys to delete
 * @param {number} now  epoch seconds
 */
export function tombstones(names, now) {
  return names
    .filter((name) => name.startsWith('session:'))
    .map((name) => ({ key: `tombstone:${name.slice('session:'.length)}`, value: String(now), expiration_ttl: TOMBSTONE_TTL }));
}

/**
 * Ends sessions: their tombstones in one `wrangler kv bulk put`, then their keys in one `bulk delete`.
 * @param {string[]} names @param {Target} target
 */
async function endKeys(names, target) {
  if (names.length === 0) return;
  const dir = await mkdtemp(join(tmpdir(), 'kontur-gate-sessions-'));
  try {
    const marks = join(dir, 'tombstones.json');
    await writeFile(marks, JSON.stringify(tombstones(names, Math.floor(Date.now() / 1000))));
    await wrangler(['bulk', 'put', marks], target);
    const keys = join(dir, 'keys.json');
    await writeFile(keys, JSON.stringify(names));
    await wrangler(['bulk', 'delete', keys, '--force'], target);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const time = (/** @type {number | undefined} */ seconds) =>
  seconds === undefined ? '-' : new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

/** The `list` table. @param {Session[]} sessions */
export function formatSessions(sessions) {
  const header = ['user', 'session', 'host', 'started', 'last check', 'expires'];
  const rows = [header, ...sessions.map((s) => [s.user, s.sid.slice(0, 8), s.host, time(s.iat), time(s.lastWrite), time(s.exp)])];
  const widths = header.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

/**
 * Runs the command; returns what to print.
 * @param {string[]} argv @param {{ cwd?: string }} [options]
 */
export async function runSessions(argv, options = {}) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      sub: { type: 'string' },
      all: { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string', default: join('.wrangler', 'state') },
      config: { type: 'string' },
      env: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return USAGE;
  const [command] = positionals;
  const selectors = [values.email !== undefined, values.sub !== undefined, values.all].filter(Boolean).length;
  if ((command !== 'list' && command !== 'revoke') || positionals.length !== 1 || selectors !== 1) {
    throw new UsageError('give list or revoke, and exactly one of --email, --sub, --all');
  }
  /** @type {Target} */
  const target = { remote: values.remote, persistTo: values['persist-to'], config: values.config, env: values.env, cwd: options.cwd };
  const where = values.remote ? 'the deployed namespace' : `local state in ${values['persist-to']}`;
  const who = { email: values.email, sub: values.sub };
  const listing = await listKeys(target);
  if (command === 'list') {
    const sessions = findSessions(who, listing);
    return sessions.length === 0 ? `No live sessions (${where}).` : `${formatSessions(sessions)}\n${sessions.length} session(s) (${where}).`;
  }
  if (values.all) {
    const names = allSessionKeys(listing);
    await endKeys(names, target);
    const count = names.filter((name) => name.startsWith('session:')).length;
    return `Ended ${count} session(s) (${where}); each is refused at its next check.`;
  }
  const sessions = findSessions(who, listing);
  await endKeys(sessions.flatMap((s) => s.keys), target);
  return `Ended ${sessions.length} session(s) (${where}); each is refused at its next check.`;
}

export class UsageError extends Error {}

async function main() {
  try {
    console.log(await runSessions(process.argv.slice(2)));
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`npm run sessions: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(`npm run sessions: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}

runAsScript(import.meta.url, main);
