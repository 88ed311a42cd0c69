// The benchmark's one table (Markdown, so docs/performance.md can quote it as printed).

const CPU_LIMIT_US = 10_000; // Workers free plan: 10 ms of CPU per request
const TARGET_RATIO = 0.75;
const TARGET_CPU_US = 200;

/**
 * One target's medians over the load rounds (bench.mjs `summarize`).
 * @typedef {object} Summary
 * @property {number} rps
 * @property {number} p50   ms
 * @property {number} p99   ms
 * @property {number} cpuPerRequestUs
 * @property {number} originPerRequest
 * @property {number} ratio  requests per second relative to the floor (a) measured right before and after (median of the rounds)
 * @property {number} ratioLow   the lowest round's ratio
 * @property {number} ratioHigh  the highest round's ratio
 * @property {number} failures  non-2xx answers and errors, all rounds
 */
/** @typedef {{ a: Summary, b: Summary, c: Summary, d: Summary, e: Summary }} Summaries */
/**
 * One target against another round by round: in each round the ratio of the two targets' ratios
 * to the floor; the median and the lowest and highest round (bench.mjs `paired`).
 * @typedef {{ median: number, low: number, high: number }} Paired
 */
/**
 * The Miniflare comparison has no public-path target, and one more: the contract alone (f); and
 * the gate in session mode against the peer round by round, so that a tie shows as one.
 * @typedef {Omit<Summaries, 'd'> & { f: Summary, sessionVsPeer: Paired }} MiniflareSummaries
 */

/**
 * The gate build's counters, as /__bench/stats answers them (workers/gate.js).
 * @typedef {object} BenchStats
 * @property {{ get: number, put: number, delete: number, list: number }} kv
 * @property {{ origin: number, other: number }} subrequests
 * @property {number} requests
 * @property {number} distinctEnvs
 */

/** @typedef {Awaited<ReturnType<typeof import('./http.mjs').browserLogin>>} Login */

/**
 * What the Miniflare runs and the logins cost (bench.mjs `miniflareCosts`, then `main`).
 * @typedef {object} Costs
 * @property {{ stats: BenchStats }} between
 * @property {{ stats: BenchStats }} check
 * @property {{ stats: BenchStats, tokenCalls: number }} refresh
 * @property {{ stats: BenchStats, tokenCalls: number, ok: number }} parallel
 * @property {{ tokenCalls: number, ok: number, toLogin: number }} peerParallel
 * @property {Login[]} gateLogins
 * @property {Login[]} peerLogins
 */

/** Microseconds of workerd CPU per run of each probe. @typedef {Record<import('./workers/probes.js').Probe, number>} CpuTimes */

/**
 * The middle value (the mean of the two middle ones for an even count); NaN for none.
 * @param {number[]} values
 */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const at = (/** @type {number} */ i) => sorted[i] ?? NaN;
  return sorted.length % 2 === 1 ? at(middle) : (at(middle - 1) + at(middle)) / 2;
}

const int = (/** @type {number} */ n) => Math.round(n).toLocaleString('en-US');
/** The median ratio and, in brackets, its lowest and highest round: how much the machine moved. @param {Summary} s */
const ratio = (s) => `${exact(s.ratio)}× (rounds ${s.ratioLow.toFixed(2)}–${s.ratioHigh.toFixed(2)})`;
/** Three decimals: with two, a miss such as 0.745 would print as the 0.75 it missed. @param {number} n */
const exact = (n) => n.toFixed(3);
const ms = (/** @type {number} */ n) => (n < 10 ? n.toFixed(2) : n.toFixed(1));
const us = (/** @type {number} */ n) => (n < 100 ? n.toFixed(1) : int(n));
const per = (/** @type {number} */ count, /** @type {number} */ requests) => {
  const value = count / requests;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
};
const verdict = (/** @type {boolean} */ ok) => (ok ? '✓' : '✗');

/**
 * `name=value` of the named cookie in Set-Cookie lines, or undefined.
 * @param {string[]} setCookies
 * @param {string} name
 */
function cookiePair(setCookies, name) {
  return setCookies.map((line) => line.split(';', 1)[0] ?? '').find((pair) => pair.startsWith(`${name}=`) || pair.startsWith(`__Host-${name}=`));
}

/**
 * @param {string} id
 * @param {string} label
 * @param {Summary} loaded  under load
 * @param {Summary} single  one request at a time
 * @param {string} vsFloor
 */
function throughputRow(id, label, loaded, single, vsFloor) {
  const failures = loaded.failures + single.failures > 0 ? ` · ⚠ ${loaded.failures + single.failures} non-2xx or failed` : '';
  return [
    id,
    label,
    `${int(loaded.rps)} req/s · p50 ${ms(loaded.p50)} ms · p99 ${ms(loaded.p99)} ms · workerd CPU ${int(loaded.cpuPerRequestUs)} µs/req; ` +
      `one at a time: p50 ${ms(single.p50)} ms · p99 ${ms(single.p99)} ms${failures}`,
    vsFloor,
  ];
}

/**
 * @param {{ loaded: Summaries, single: Summaries, miniflare: MiniflareSummaries, cpu: CpuTimes, costs: Costs, hotPathStats: BenchStats, sequential: number, parallel: number }} data
 *   what tools/bench/bench.mjs measured
 * @returns {string}
 */
export function formatTable({ loaded, single, miniflare, cpu, costs, hotPathStats, sequential, parallel }) {
  const { a, b, c, d, e } = loaded;
  const t = cpu;
  // Under `workerd serve` the target is CPU: the gate's extra work over the peer's fits in one
  // signature. A signature costs about twice as much inside a request as in a loop (2a), so both
  // yardsticks are printed: 1b less 1e is what signing per request adds in this very run.
  const aboveThePeer = b.cpuPerRequestUs - c.cpuPerRequestUs;
  const signatureInRequest = b.cpuPerRequestUs - e.cpuPerRequestUs;
  const mf = miniflare;
  /** @param {Summary} summary */
  const mfResult = (summary) =>
    `${int(summary.rps)} req/s · p50 ${ms(summary.p50)} ms · p99 ${ms(summary.p99)} ms · workerd CPU ${int(summary.cpuPerRequestUs)} µs/req${summary.failures > 0 ? ` · ⚠ ${summary.failures} non-2xx or failed` : ''}`;
  const hotPath = t.cookieOpen + t.policy + t.headerRewrite + t.assertionSigning;
  const [gateLogin] = costs.gateLogins;
  const [peerLogin] = costs.peerLogins;
  if (gateLogin === undefined || peerLogin === undefined) throw new Error('formatTable: no login was measured');
  const gateCookie = cookiePair(gateLogin.callbackSetCookies, 'kg_session') ?? '';
  const peerCookie = cookiePair(peerLogin.callbackSetCookies, 'oidc-auth') ?? '';
  const between = costs.between.stats;
  const hotKv = Object.values(hotPathStats.kv).reduce((sum, n) => sum + n, 0);
  const kv = (/** @type {BenchStats} */ stats) => `${stats.kv.get} read${stats.kv.get === 1 ? '' : 's'}, ${stats.kv.put} write${stats.kv.put === 1 ? '' : 's'}`;

  const rows = [
    ['#', 'measurement', 'result', 'vs floor / target'],
    throughputRow('1a', 'bare pass-through Worker (the floor)', a, single.a, '1.00×'),
    throughputRow(
      '1b',
      'gate, signed in',
      b,
      single.b,
      `${ratio(b)}; CPU ${us(Math.abs(aboveThePeer))} µs/req ${aboveThePeer < 0 ? 'below' : 'above'} 1c — target: within one signature, in a loop (2a: ${us(t.assertionSigning)} µs) ${verdict(aboveThePeer <= t.assertionSigning)}, inside a request (1b − 1e: ${us(signatureInRequest)} µs) ${verdict(aboveThePeer <= signatureInRequest)}`,
    ),
    throughputRow('1c', '@hono/oidc-auth proxy, signed in', c, single.c, ratio(c)),
    throughputRow('1d', 'gate, public path (anonymous)', d, single.d, ratio(d)),
    throughputRow('1e', 'gate, signed in, `ASSERTION_MODE=session`', e, single.e, `${ratio(e)} — target ≥ 1c (${exact(c.ratio)}×) ${verdict(e.ratio >= c.ratio)}`),
    ['Ma', 'Miniflare: bare pass-through Worker (the floor)', mfResult(mf.a), '1.00×'],
    ['Mb', 'Miniflare: gate, signed in', mfResult(mf.b), `${ratio(mf.b)} — target ≥ ${TARGET_RATIO.toFixed(2)}× ${verdict(mf.b.ratio >= TARGET_RATIO)}`],
    ['Mc', 'Miniflare: @hono/oidc-auth proxy, signed in', mfResult(mf.c), ratio(mf.c)],
    [
      'Me',
      'Miniflare: gate, signed in, `ASSERTION_MODE=session`',
      mfResult(mf.e),
      `${ratio(mf.e)} — target ≥ Mc (${exact(mf.c.ratio)}×) ${verdict(mf.e.ratio >= mf.c.ratio)}; ` +
        `Me ÷ Mc round by round ${exact(mf.sessionVsPeer.median)} (rounds ${mf.sessionVsPeer.low.toFixed(2)}–${mf.sessionVsPeer.high.toFixed(2)})`,
    ],
    [
      'Mf',
      "Miniflare: the contract alone — the pass-through sending the gate's headers (as set on Mb's request), `no-store`, the `private` copy; no logic, no signature",
      mfResult(mf.f),
      `${ratio(mf.f)} — what the contract alone leaves`,
    ],
    [
      '2a',
      "CPU of the gate's authenticated hot path in workerd",
      `${us(hotPath)} µs: cookie open ${us(t.cookieOpen)}, policy ${us(t.policy)}, header rewrite ${us(t.headerRewrite)}, assertion signing ${us(t.assertionSigning)} µs`,
      `target < ${TARGET_CPU_US} µs ${verdict(hotPath < TARGET_CPU_US)}`,
    ],
    [
      '2b',
      'CPU of a whole request in workerd (origin stubbed)',
      `gate signed in ${us(t.gateRequest)} µs, public path ${us(t.gatePublicRequest)} µs; bare pass-through ${us(t.passthroughRequest)} µs`,
      `${((t.gateRequest / CPU_LIMIT_US) * 100).toFixed(1)}% of the 10 ms free-plan limit`,
    ],
    [
      '3a',
      'KV per signed-in request between checks',
      `${per(between.kv.get, sequential)} reads, ${per(between.kv.put, sequential)} writes (${sequential} requests, Miniflare KV); ` +
        `${hotKv} KV calls in ${int(hotPathStats.requests)} requests under load`,
      `target 0 ${verdict(between.kv.get + between.kv.put + between.kv.delete + hotKv === 0)}`,
    ],
    ['3b', 'KV at a check (access token still fresh)', `${kv(costs.check.stats)}; session cookie re-issued`, ''],
    ['3c', 'KV at a check that refreshes the access token', `${kv(costs.refresh.stats)}; ${costs.refresh.tokenCalls} token-endpoint call`, ''],
    [
      '3d',
      'subrequests per request',
      `between checks: ${per(between.subrequests.origin, sequential)} to the origin, ${per(between.subrequests.other, sequential)} to the provider; ` +
        `at a refreshing check: ${costs.refresh.stats.subrequests.origin} + ${costs.refresh.stats.subrequests.other} (the token endpoint and userinfo; discovery and JWKS cached); ` +
        `origin requests per answer under load: a ${a.originPerRequest.toFixed(2)}, b ${b.originPerRequest.toFixed(2)}, c ${c.originPerRequest.toFixed(2)}, d ${d.originPerRequest.toFixed(2)}`,
      `settings and keys built once per isolate (${hotPathStats.distinctEnvs} env object in ${int(hotPathStats.requests)} requests)`,
    ],
    [
      '3e',
      'session cookie',
      `gate: ${Buffer.byteLength(gateCookie)} bytes (\`${gateCookie.split('=', 1)[0]}=…\`); peer: ${Buffer.byteLength(peerCookie)} bytes`,
      'browsers allow 4096',
    ],
    ['3f', 'redirects in a full login', `gate: ${gateLogin.redirects}; peer: ${peerLogin.redirects}`, ''],
    [
      '4',
      'full login, provider on loopback',
      `gate: ${ms(median(costs.gateLogins.map((l) => l.ms)))} ms, ${gateLogin.requests} round trips; ` +
        `peer: ${ms(median(costs.peerLogins.map((l) => l.ms)))} ms, ${peerLogin.requests} round trips (medians of ${costs.gateLogins.length})`,
      '',
    ],
    [
      '5',
      `${parallel} parallel requests on a session due for refresh`,
      `gate: ${costs.parallel.tokenCalls} token-endpoint call, ${costs.parallel.ok}/${parallel} answered 200, ${kv(costs.parallel.stats)}; ` +
        `peer: ${costs.peerParallel.tokenCalls} token-endpoint calls, ${costs.peerParallel.ok} answered 200, ${costs.peerParallel.toLogin} sent to login`,
      `target 1 ${verdict(costs.parallel.tokenCalls === 1 && costs.parallel.ok === parallel)}`,
    ],
  ];
  return rows.map((row, i) => `| ${row.join(' | ')} |${i === 0 ? `\n|${row.map(() => '---').join('|')}|` : ''}`).join('\n');
}
