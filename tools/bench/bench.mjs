// `npm run bench`: what the gate costs per request, side by side with a bare pass-through Worker
// and the closest peer (@hono/oidc-auth in a minimal Hono proxy); the gate runs twice, with the
// default ASSERTION_MODE=request and with ASSERTION_MODE=session. Loopback only; stops by itself
// in about two minutes (2 cores). Prints one table; docs/performance.md explains every row.
//
// Runtimes: throughput, latency and CPU run under a plain `workerd serve` (one process, the three
// Workers on their own ports); Miniflare's entry layer in front of a Worker costs more than the
// gate does, so it would flatten the differences. `workerd serve` has no Workers KV: there the gate
// gets an in-isolate stand-in, which its real login fills and which the hot path never touches
// (counted). The KV costs, the login and the parallel refresh run in Miniflare, on its real KV.
//
// Then the comparison in which issue 15 set its throughput targets: the same Workers each in its
// own Miniflare (the runtime `wrangler dev` uses, its entry layer in front), 16 connections.
//
// Options: --rounds N (8), --seconds S per round (2.5), --connections C (10), --mf-rounds N (6) and
// --mf-connections C (16) for the Miniflare comparison, --mf-direct-outbound (the Miniflare
// comparison without Miniflare's own Worker behind every subrequest, which production does not
// have; see docs/performance.md), --quick (2 rounds of 2 s and shorter CPU loops, for trying it out).

import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { BROWSER, browserLogin, loadRound, rawRequest, startBenchOrigin } from './http.mjs';
import { formatTable, median } from './table.mjs';

/** @typedef {import('./table.mjs').Summary} Summary */
/** @typedef {import('./table.mjs').BenchStats} BenchStats */
/** @typedef {import('./table.mjs').Costs} Costs */
/** @typedef {import('./table.mjs').CpuTimes} CpuTimes */
/** @typedef {Awaited<ReturnType<typeof loadRound>> & { cpuPerRequestUs: number, originPerRequest: number, ratio: number }} Round */
/** @typedef {{ key: 'a' | 'b' | 'c' | 'd' | 'e' | 'f', url: string, headers: Record<string, string>, cpuSeconds?: () => Promise<number> }} Target */
import { PROBES } from './workers/probes.js';
import { bundleWorkers, serveWorkerd, startMiniflare } from './workers.mjs';
import { startProvider } from '../dev-provider/provider.mjs';
import { freePort } from '../lib/listen.mjs';
import { generateSecrets } from '../lib/secrets.mjs';

const WATCHDOG_MS = 8 * 60_000;
const CLIENT_ID = 'kontur-gate-bench';
const SCOPES = 'openid profile email offline_access';
const PARALLEL = 50;
const SEQUENTIAL = 100;
const LOGINS = 5;

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '2.5' },
    connections: { type: 'string', default: '10' },
    'mf-rounds': { type: 'string', default: '6' },
    'mf-connections': { type: 'string', default: '16' },
    'mf-direct-outbound': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});
const ROUNDS = args.quick ? 2 : Number(args.rounds);
const SINGLE_ROUNDS = args.quick ? 1 : 2;
const SECONDS = args.quick ? 2 : Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const MF_ROUNDS = args.quick ? 2 : Number(args['mf-rounds']);
const MF_CONNECTIONS = Number(args['mf-connections']);
/** Miniflare sends each subrequest through its strip-cf-connecting-ip Worker unless told not to. */
const MF_OUTBOUND = args['mf-direct-outbound'] ? { stripCfConnectingIp: false } : {};
/** Wall time of one CPU loop; long enough that /proc's 10 ms CPU ticks stay a small error. */
const CPU_LOOP_MS = args.quick ? 200 : 500;

/**
 * Everything started, stopped in reverse order at the end, on Ctrl-C or by the watchdog.
 * @type {(() => Promise<unknown>)[]}
 */
const closers = [];
async function closeAll() {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => closeAll().finally(() => process.exit(130)));
}
setTimeout(() => {
  process.stderr.write(`bench: still running after ${WATCHDOG_MS / 60_000} minutes; stopping\n`);
  closeAll().finally(() => process.exit(2));
}, WATCHDOG_MS).unref();

const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
const progress = (/** @type {string} */ message) => process.stderr.write(`bench: ${message}\n`);

/**
 * GET with a browser's headers and `cookie`; returns status, Set-Cookie lines and the body.
 * @param {string} url
 * @param {string} [cookie]
 */
async function get(url, cookie) {
  const response = await rawRequest(url, { headers: { ...BROWSER, ...(cookie ? { cookie } : {}) } });
  return { status: response.status, setCookies: response.headers.getSetCookie(), body: decoded(response.headers.get('content-encoding'), Buffer.from(await response.arrayBuffer())) };
}

/**
 * A body as text, uncompressed: Miniflare's entry layer compresses answers for a client that
 * accepts it, as Cloudflare's edge does.
 * @param {string | null} encoding
 * @param {Buffer} body
 */
function decoded(encoding, body) {
  if (encoding === 'gzip') return gunzipSync(body).toString();
  if (encoding === 'br') return brotliDecompressSync(body).toString();
  if (encoding === 'deflate') return inflateSync(body).toString();
  return body.toString();
}

/**
 * The gate build's counters (tools/bench/workers/gate.js): KV calls, subrequests, requests.
 * @param {string} gateUrl
 * @returns {Promise<BenchStats>}
 */
async function benchStats(gateUrl) {
  return /** @type {Promise<BenchStats>} */ ((await fetch(`${gateUrl}/__bench/stats`)).json());
}
/** @param {string} gateUrl */
async function benchReset(gateUrl) {
  await fetch(`${gateUrl}/__bench/reset`, { method: 'POST' });
}

/**
 * A login, then `ms` of waiting so that the session's next request is due for a check.
 * @param {string} url
 * @param {number} ms
 */
async function loginAndAge(url, ms) {
  const login = await browserLogin(url);
  await sleep(ms);
  return login;
}

/**
 * `count` parallel GETs with one session's cookie.
 * @param {string} url
 * @param {string} cookie
 * @param {number} count
 */
function burst(url, cookie, count) {
  return Promise.all(Array.from({ length: count }, () => get(url, cookie)));
}

/**
 * Secrets, the origin, the two providers (Kontur's lifetimes; and one whose access tokens are
 * always due for refresh) and the settings of every Worker. Ports come first: each Worker's
 * redirect URI must be registered at its provider before it starts.
 */
async function setUp() {
  const bundles = await bundleWorkers();
  closers.push(bundles.close);
  const secrets = await generateSecrets();
  const origin = await startBenchOrigin();
  closers.push(origin.close);

  const names = /** @type {const} */ (['passthrough', 'gate', 'gateSession', 'peer', 'peerRefresh', 'mfGate', 'mfGateChecks', 'mfGateRefresh', 'mfPassthrough', 'mfLoadGate', 'mfLoadGateSession', 'mfPeer']);
  /** @type {Record<(typeof names)[number], number>} */
  const ports = /** @type {Record<(typeof names)[number], number>} */ (Object.fromEntries(names.map((name) => [name, 0])));
  const taken = new Set();
  for (const name of names) {
    let port;
    do port = await freePort();
    while (taken.has(port));
    taken.add(port);
    ports[name] = port;
  }
  const at = (/** @type {number} */ port) => `http://127.0.0.1:${port}`;
  const client = (/** @type {string[]} */ redirectUris) => ({
    client_id: CLIENT_ID,
    client_secret: secrets.OIDC_CLIENT_SECRET,
    redirect_uris: redirectUris,
    token_endpoint_auth_method: /** @type {const} */ ('client_secret_post'),
  });
  const provider = await startProvider({
    clients: [
      client([
        ...[ports.gate, ports.gateSession, ports.mfGate, ports.mfGateChecks, ports.mfLoadGate, ports.mfLoadGateSession].map((port) => `${at(port)}/_auth/callback`),
        ...[ports.peer, ports.mfPeer].map((port) => `${at(port)}/callback`),
      ]),
    ],
  });
  closers.push(provider.close);
  // 30 s access tokens: within the gate's refresh margin, so every check refreshes.
  const dueProvider = await startProvider({
    accessTokenTTL: 30,
    clients: [client([`${at(ports.mfGateRefresh)}/_auth/callback`, `${at(ports.peerRefresh)}/callback`])],
  });
  closers.push(dueProvider.close);

  const peerSecret = randomBytes(32).toString('base64url');
  return {
    bundles,
    origin,
    ports,
    provider,
    dueProvider,
    /** @param {string} issuer @param {Record<string, string>} [extra] @returns {Record<string, string>} */
    gateVars: (issuer, extra = {}) => ({
      OIDC_ISSUER: issuer,
      OIDC_ALLOW_HTTP: 'true',
      OIDC_CLIENT_ID: CLIENT_ID,
      OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET,
      OIDC_SCOPES: SCOPES,
      SESSION_SECRETS: secrets.SESSION_SECRETS,
      ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY,
      ORIGIN_URL: origin.url,
      PUBLIC_PATHS: '/public/*',
      ...extra,
    }),
    /** @param {string} issuer @param {Record<string, string>} [extra] @returns {Record<string, string>} */
    peerVars: (issuer, extra = {}) => ({
      OIDC_ISSUER: issuer,
      OIDC_CLIENT_ID: CLIENT_ID,
      OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET,
      OIDC_AUTH_SECRET: peerSecret,
      OIDC_SCOPES: SCOPES,
      ORIGIN_URL: origin.url,
      ...extra,
    }),
  };
}

/** @typedef {Awaited<ReturnType<typeof setUp>>} Env */
/** @typedef {Awaited<ReturnType<typeof serveWorkerd<'passthrough' | 'gate' | 'gateSession' | 'peer' | 'peerRefresh'>>>} Served */

/**
 * Runs `measure` against the gate build in Miniflare (real KV, subrequests counted), then stops it.
 * @template T
 * @param {Env} env
 * @param {string} issuer
 * @param {number} port
 * @param {Record<string, string>} extraVars
 * @param {(url: string) => Promise<T>} measure
 * @returns {Promise<T>}
 */
async function inMiniflare({ bundles, gateVars }, issuer, port, extraVars, measure) {
  const mf = await startMiniflare(bundles.scripts.gate, gateVars(issuer, { BENCH_COUNT_SUBREQUESTS: 'true', ...extraVars }), { port });
  closers.push(mf.close);
  try {
    return await measure(mf.url);
  } finally {
    await closers.pop()?.();
  }
}

/**
 * KV calls and subrequests between checks, at a check, at a refreshing check; the parallel refresh.
 * @param {Env} env
 */
async function miniflareCosts(env) {
  const { provider, dueProvider, ports } = env;
  const between = await inMiniflare(env, provider.issuer, ports.mfGate, {}, async (url) => {
    const login = await browserLogin(`${url}/bench`);
    await benchReset(url);
    for (let i = 0; i < SEQUENTIAL; i += 1) {
      const response = await get(`${url}/bench`, login.cookie);
      if (response.status !== 200 || response.setCookies.length > 0) {
        throw new Error(`a signed-in request between checks answered ${response.status} with ${response.setCookies.length} Set-Cookie`);
      }
    }
    return { stats: await benchStats(url) };
  });
  const check = await inMiniflare(env, provider.issuer, ports.mfGateChecks, { SESSION_CHECK_INTERVAL: '1' }, async (url) => {
    const login = await loginAndAge(`${url}/bench`, 1100);
    await benchReset(url);
    const response = await get(`${url}/bench`, login.cookie);
    if (response.status !== 200 || response.setCookies.length !== 1) throw new Error(`a request at a check answered ${response.status}`);
    return { stats: await benchStats(url) };
  });
  return inMiniflare(env, dueProvider.issuer, ports.mfGateRefresh, { SESSION_CHECK_INTERVAL: '1' }, async (url) => {
    let login = await loginAndAge(`${url}/bench`, 1100);
    await benchReset(url);
    dueProvider.resetStats();
    const response = await get(`${url}/bench`, login.cookie);
    if (response.status !== 200) throw new Error(`a request at a refreshing check answered ${response.status}`);
    const refresh = { stats: await benchStats(url), tokenCalls: dueProvider.stats.tokenRequests.refresh_token };

    login = await loginAndAge(`${url}/bench`, 1100);
    await benchReset(url);
    dueProvider.resetStats();
    const answers = await burst(`${url}/bench`, login.cookie, PARALLEL);
    const parallel = {
      stats: await benchStats(url),
      tokenCalls: dueProvider.stats.tokenRequests.refresh_token,
      ok: answers.filter((r) => r.status === 200).length,
    };
    return { between, check, refresh, parallel };
  });
}

/**
 * The peer with 50 parallel requests on a session due for refresh.
 * @param {string} url
 * @param {Env['dueProvider']} dueProvider
 */
async function peerParallelRefresh(url, dueProvider) {
  const login = await loginAndAge(`${url}/bench`, 2100); // its refresh time is whole seconds, compared with <
  dueProvider.resetStats();
  const answers = await burst(`${url}/bench`, login.cookie, PARALLEL);
  return {
    tokenCalls: dueProvider.stats.tokenRequests.refresh_token,
    ok: answers.filter((r) => r.status === 200).length,
    toLogin: answers.filter((r) => r.status >= 300 && r.status < 400).length,
  };
}

/**
 * Throws unless every target is what it claims to be: identity passed on by the gate and the peer,
 * none on the public path. Answers the request headers each target's origin received.
 * @param {Target[]} targets
 */
async function checkTargets(targets) {
  /** @type {Partial<Record<Target['key'], Record<string, string | undefined>>>} */
  const seen = {};
  for (const target of targets) {
    const response = await get(target.url.replace(/\/(public\/)?bench$/, '/$1echo'), target.headers.cookie);
    if (response.status !== 200) throw new Error(`${target.url}: /echo answered ${response.status}`);
    seen[target.key] = JSON.parse(response.body).headers;
  }
  if (!seen.b?.['x-auth-assertion'] || !seen.b['x-forwarded-user']) throw new Error('the gate did not pass the identity on');
  if (!seen.c?.['x-forwarded-user']) throw new Error('the peer did not pass the identity on');
  if (seen.d !== undefined && seen.d['x-forwarded-user'] !== undefined) throw new Error('the public path was not anonymous');
  const sessionAssertion = JSON.parse(Buffer.from(seen.e?.['x-auth-assertion']?.split('.')[1] ?? '', 'base64url').toString() || '{}');
  if (!sessionAssertion.sub || 'htu' in sessionAssertion) throw new Error('the gate with ASSERTION_MODE=session did not pass a session assertion on');
  return seen;
}

/**
 * Rounds alternating the targets; each with its request rate, latencies, CPU per request (NaN
 * without a CPU clock), requests the origin received per request answered, and its ratio to the
 * floor (a) measured right before and right after it (the mean of the two). A round is a, b, c, …;
 * with `floorBetween` it is a, b, a, c, a, e, so no ratio's floor is more than one segment away:
 * this machine's speed can change within seconds, and a floor measured several targets earlier
 * would then be measured on a different machine. A last floor closes the schedule.
 * @param {(target: Target) => Promise<number>} cpuSeconds  the CPU seconds of the target's Workers process so far
 * @param {Env['origin']} origin
 * @param {Target[]} targets  the floor (a) first
 * @param {{ rounds: number, seconds: number, connections: number, floorBetween?: boolean }} options
 * @returns {Promise<Partial<Record<Target['key'], Round[]>>>}  the targets' keys only
 */
async function loadRounds(cpuSeconds, origin, targets, { rounds: count, seconds, connections, floorBetween = false }) {
  const [floor, ...others] = targets;
  if (floor?.key !== 'a') throw new Error('loadRounds: the floor (a) comes first');
  const round = floorBetween ? others.flatMap((target) => [floor, target]) : targets;
  const schedule = [...Array.from({ length: count }, () => round).flat(), floor];
  progress(`${count} rounds of ${seconds} s per segment with ${connections} connection(s): ${round.map((t) => t.key).join(',')}, …, a`);
  /** @type {{ key: Target['key'], result: Omit<Round, 'ratio'> }[]} */
  const segments = [];
  for (const [index, target] of schedule.entries()) {
    const cpuBefore = await cpuSeconds(target);
    const originBefore = origin.counts.requests;
    const result = await loadRound({ url: target.url, headers: target.headers, seconds, connections });
    const cpu = (await cpuSeconds(target)) - cpuBefore;
    const answered = Math.max(1, result.requests);
    segments.push({ key: target.key, result: { ...result, cpuPerRequestUs: (cpu * 1e6) / answered, originPerRequest: (origin.counts.requests - originBefore) / answered } });
    if ((index + 1) % round.length === 0) progress(`round ${(index + 1) / round.length}/${count}: ${segments.slice(-round.length).map((x) => `${x.key} ${Math.round(x.result.rps)}/s`).join(', ')}`);
  }
  /** @type {Partial<Record<Target['key'], Round[]>>} */
  const rounds = {};
  for (const [index, { key, result }] of segments.entries()) {
    const before = segments.slice(0, index).findLast((x) => x.key === 'a')?.result.rps ?? NaN;
    const after = segments.slice(index + 1).find((x) => x.key === 'a')?.result.rps ?? NaN;
    (rounds[key] ??= []).push({ ...result, ratio: key === 'a' ? 1 : result.rps / ((before + after) / 2) });
  }
  return rounds;
}

/**
 * Medians over the rounds; each ratio against the floor measured around it (see loadRounds).
 * @param {Partial<Record<Target['key'], Round[]>>} rounds
 * @returns {Record<Target['key'], Summary>}
 */
function summarize(rounds) {
  return /** @type {Record<Target['key'], Summary>} */ (Object.fromEntries(
    Object.entries(rounds).map(([key, list]) => [
      key,
      {
        rps: median(list.map((r) => r.rps)),
        p50: median(list.map((r) => r.p50)),
        p99: median(list.map((r) => r.p99)),
        cpuPerRequestUs: median(list.map((r) => r.cpuPerRequestUs)),
        originPerRequest: median(list.map((r) => r.originPerRequest)),
        ratio: median(list.map((r) => r.ratio)),
        ratioLow: Math.min(...list.map((r) => r.ratio)),
        ratioHigh: Math.max(...list.map((r) => r.ratio)),
        failures: list.reduce((sum, r) => sum + r.non2xx + r.errors, 0),
      },
    ]),
  ));
}

/**
 * `rounds` against `against`, round by round: the ratio of their ratios to the floor in each round
 * (both measured within the same few seconds), its median and its lowest and highest round.
 * @param {Round[]} rounds @param {Round[]} against
 * @returns {import('./table.mjs').Paired}
 */
function paired(rounds, against) {
  const ratios = rounds.map((round, index) => round.ratio / (against[index]?.ratio ?? NaN));
  return { median: median(ratios), low: Math.min(...ratios), high: Math.max(...ratios) };
}

/**
 * The comparison issue 15 set its throughput targets in: the pass-through, the gate in both
 * assertion modes and the peer, each in its own Miniflare on its real KV, loaded in alternating
 * rounds like the `workerd serve` ones. Miniflare's entry layer in front of each Worker is part of
 * every request here, as it is under `wrangler dev`.
 * @param {Env} env
 */
async function miniflareThroughput({ bundles, origin, ports, provider, gateVars, peerVars }) {
  progress('the same comparison in Miniflare');
  /** @type {(() => Promise<unknown>)[]} */
  const own = [];
  /** @param {string} script @param {Record<string, string>} bindings @param {number} port */
  const start = async (script, bindings, port) => {
    const mf = await startMiniflare(script, bindings, { port, ...MF_OUTBOUND });
    closers.push(mf.close);
    own.push(mf.close);
    return mf;
  };
  try {
    const passthrough = await start(bundles.scripts.passthrough, { ORIGIN_URL: origin.url }, ports.mfPassthrough);
    const gate = await start(bundles.scripts.gate, gateVars(provider.issuer), ports.mfLoadGate);
    const gateSession = await start(bundles.scripts.gate, gateVars(provider.issuer, { ASSERTION_MODE: 'session' }), ports.mfLoadGateSession);
    const peer = await start(bundles.scripts.peer, peerVars(provider.issuer), ports.mfPeer);
    /** @param {Target['key']} key @param {Awaited<ReturnType<typeof start>>} mf @param {string} [cookie] @returns {Target} */
    const target = (key, mf, cookie) => ({ key, url: `${mf.url}/bench`, headers: cookie === undefined ? BROWSER : { ...BROWSER, cookie }, cpuSeconds: mf.cpuSeconds });
    const gateCookie = (await browserLogin(`${gate.url}/bench`)).cookie;
    const targets = [
      target('a', passthrough),
      target('b', gate, gateCookie),
      target('c', peer, (await browserLogin(`${peer.url}/bench`)).cookie),
      target('e', gateSession, (await browserLogin(`${gateSession.url}/bench`)).cookie),
    ];
    const seen = await checkTargets(targets);
    // What the gate added to a real request (the floor's request has none of these headers).
    const added = Object.entries(seen.b ?? {}).filter(([name]) => name.startsWith('x-') && seen.a?.[name] === undefined);
    const contract = await start(bundles.scripts.contract, { ORIGIN_URL: origin.url, CONTRACT_HEADERS: JSON.stringify(Object.fromEntries(added)) }, 0);
    targets.push(target('f', contract, gateCookie));
    for (const { url, headers } of targets) await loadRound({ url, headers, seconds: 1, connections: MF_CONNECTIONS }); // warm-up
    // Each Miniflare is its own workerd process.
    const ownCpu = (/** @type {Target} */ t) => t.cpuSeconds?.() ?? Promise.resolve(NaN);
    const rounds = await loadRounds(ownCpu, origin, targets, { rounds: MF_ROUNDS, seconds: SECONDS, connections: MF_CONNECTIONS, floorBetween: true });
    return { ...summarize(rounds), sessionVsPeer: paired(rounds.e ?? [], rounds.c ?? []) };
  } finally {
    for (const close of own.reverse()) {
      closers.splice(closers.indexOf(close), 1);
      await close().catch(() => undefined);
    }
  }
}

/**
 * Microseconds of workerd CPU per run of a probe (see tools/bench/workers/cpu.js): a short calibration run
 * sizes the loop to about CPU_LOOP_MS; the fastest of two loops counts (GC included either way).
 * @param {Served} served
 * @param {string} gateUrl
 * @param {import('./workers/probes.js').Probe} probe
 * @param {string} cookie
 */
async function cpuPerRun(served, gateUrl, probe, cookie) {
  /** @param {number} n @returns {Promise<{ runs: number, wallMs: number }>} */
  const loop = async (n) => {
    const response = await rawRequest(`${gateUrl}/__bench/cpu?probe=${probe}&n=${n}&path=/bench&public=/public/bench`, {
      headers: { ...BROWSER, cookie },
    });
    const result = /** @type {{ runs: number, wallMs: number, error?: string }} */ (await response.json());
    if (result.error) throw new Error(`CPU loop ${probe}: ${result.error}`);
    return result;
  };
  const calibration = await loop(200);
  const n = Math.min(200_000, Math.max(200, Math.round((CPU_LOOP_MS * 200) / Math.max(calibration.wallMs, 1))));
  let best = Infinity;
  for (let i = 0; i < 2; i += 1) {
    const before = await served.cpuSeconds();
    const { runs } = await loop(n);
    best = Math.min(best, (((await served.cpuSeconds()) - before) * 1e6) / runs);
  }
  return best;
}

async function main() {
  const loadBefore = await loadavg();
  progress(`load average before: ${loadBefore}`);
  const env = await setUp();
  const { bundles, origin, ports, provider, dueProvider, gateVars, peerVars } = env;

  progress('KV, subrequests and the parallel refresh (Miniflare, real KV)');
  const miniflare = await miniflareCosts(env);

  progress('starting workerd serve with the pass-through, the gate (both assertion modes) and the peer');
  const served = await serveWorkerd([
    { name: 'passthrough', script: bundles.scripts.passthrough, port: ports.passthrough, bindings: { ORIGIN_URL: origin.url } },
    { name: 'gate', script: bundles.scripts.gate, port: ports.gate, bindings: gateVars(provider.issuer) },
    { name: 'gateSession', script: bundles.scripts.gate, port: ports.gateSession, bindings: gateVars(provider.issuer, { ASSERTION_MODE: 'session' }) },
    { name: 'peer', script: bundles.scripts.peer, port: ports.peer, bindings: peerVars(provider.issuer) },
    { name: 'peerRefresh', script: bundles.scripts.peer, port: ports.peerRefresh, bindings: peerVars(dueProvider.issuer, { OIDC_AUTH_REFRESH_INTERVAL: '1' }) },
  ]);
  closers.push(served.close);
  const { urls } = served;
  const peerParallel = await peerParallelRefresh(urls.peerRefresh, dueProvider);

  // Logins timed in the same runtime as the throughput; the first session of each is the one loaded.
  /** @type {Costs['gateLogins']} */
  const gateLogins = [];
  /** @type {Costs['peerLogins']} */
  const peerLogins = [];
  for (let i = 0; i < LOGINS; i += 1) {
    gateLogins.push(await browserLogin(`${urls.gate}/bench`));
    peerLogins.push(await browserLogin(`${urls.peer}/bench`));
  }
  /** @type {Costs} */
  const costs = { ...miniflare, peerParallel, gateLogins, peerLogins };
  const cookie = { gate: gateLogins[0]?.cookie ?? '', peer: peerLogins[0]?.cookie ?? '', gateSession: (await browserLogin(`${urls.gateSession}/bench`)).cookie };
  /** @type {Target[]} */
  const targets = [
    { key: 'a', url: `${urls.passthrough}/bench`, headers: BROWSER },
    { key: 'b', url: `${urls.gate}/bench`, headers: { ...BROWSER, cookie: cookie.gate } },
    { key: 'c', url: `${urls.peer}/bench`, headers: { ...BROWSER, cookie: cookie.peer } },
    { key: 'd', url: `${urls.gate}/public/bench`, headers: BROWSER },
    { key: 'e', url: `${urls.gateSession}/bench`, headers: { ...BROWSER, cookie: cookie.gateSession } },
  ];
  await checkTargets(targets);
  await benchReset(urls.gate);
  for (const target of targets) await loadRound({ url: target.url, headers: target.headers, seconds: 1, connections: CONNECTIONS }); // warm-up
  const loaded = summarize(await loadRounds(served.cpuSeconds, origin, targets, { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS }));
  // One request at a time: the latency a visitor sees when nothing queues.
  const single = summarize(await loadRounds(served.cpuSeconds, origin, targets, { rounds: SINGLE_ROUNDS, seconds: 2, connections: 1 }));
  const hotPathStats = await benchStats(urls.gate);

  progress("CPU loops in the gate's isolate");
  // Filled for every probe by the loop below.
  const cpu = /** @type {CpuTimes} */ ({});
  for (const probe of PROBES) cpu[probe] = await cpuPerRun(served, urls.gate, probe, cookie.gate);
  closers.splice(closers.indexOf(served.close), 1);
  await served.close(); // idle from here on, but the Miniflare comparison gets the machine to itself
  const miniflareLoaded = await miniflareThroughput(env);

  const loadAfter = await loadavg();
  process.stdout.write(`
kontur-gate benchmark — ${new Date().toISOString()}
machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version}; workerd ${served.version}; load average ${loadBefore} before, ${loadAfter} after
throughput (workerd serve): ${ROUNDS} rounds × ${SECONDS} s per target with ${CONNECTIONS} connections, then ${SINGLE_ROUNDS} × 2 s with 1, alternating a,b,c,d,e; in Miniflare${args['mf-direct-outbound'] ? ' (without its outbound Worker: --mf-direct-outbound)' : ''}: ${MF_ROUNDS} rounds of a,b,a,c,a,e,a,f × ${SECONDS} s with ${MF_CONNECTIONS} connections; a last a closes each schedule, each ratio is against the floor right before and after, medians of the rounds; autocannon in its own process
origin: Node on 127.0.0.1 answering ~100 bytes; provider: tools/dev-provider/provider.mjs on localhost

${formatTable({ loaded, single, miniflare: miniflareLoaded, cpu, costs, hotPathStats, sequential: SEQUENTIAL, parallel: PARALLEL })}
`);
}

try {
  await main();
} finally {
  await closeAll();
}
