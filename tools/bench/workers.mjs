// The benchmark's Workers: bundling them (esbuild, the way wrangler would), running them under a
// plain `workerd serve` (generated capnp config: no Miniflare entry layer in front, the fastest way
// workerd runs locally) and in Miniflare (for Workers KV: `workerd serve` has none).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { build } from 'esbuild';
import { Log, LogLevel, Miniflare } from 'miniflare';
import workerd from 'workerd';

import { workerBuildOptions } from '../lib/worker-build.mjs';
import { repoRoot, workerCompat } from '../lib/wrangler-files.mjs';

/** The Worker sources under tools/bench/workers/, bundled with src/ and their npm dependencies. */
export const WORKERS = /** @type {const} */ (['passthrough', 'contract', 'gate', 'peer']);

/**
 * Bundles each of WORKERS into `<dir>/<name>.js`: ES module, workerd export conditions, runtime
 * modules (`cloudflare:*`, `node:*` with the compatibility flags) left to workerd.
 */
export async function bundleWorkers() {
  const dir = await mkdtemp(join(tmpdir(), 'kontur-gate-bench-'));
  const scripts = /** @type {Record<(typeof WORKERS)[number], string>} */ (
    Object.fromEntries(WORKERS.map((name) => [name, join(dir, `${name}.js`)]))
  );
  for (const name of WORKERS) {
    await build(workerBuildOptions(join(repoRoot, 'tools/bench/workers', `${name}.js`), scripts[name]));
  }
  return { dir, scripts, close: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A capnp text literal; the values here are URLs, base64url and JSON, all printable ASCII.
 * @param {string} value
 */
function capnpText(value) {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error('workerd config values must be printable ASCII');
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The name of a worker's constant in the capnp config (camelCase, as capnp insists).
 * @param {string} service
 */
function capnpName(service) {
  return `worker${service.replace(/^./, (first) => first.toUpperCase()).replace(/\W/g, '')}`;
}

/**
 * @template {string} [Name=string]
 * @typedef {object} ServedWorker
 * @property {Name} name     service name
 * @property {string} script   bundled ES module
 * @property {number} port     on 127.0.0.1
 * @property {Record<string, string>} bindings  text bindings (vars and secrets)
 */

/**
 * Runs `workers` in one `workerd serve` process, each on its own 127.0.0.1 port, allowed to fetch
 * loopback addresses only (the origin and the provider).
 * @template {string} Name
 * @param {ServedWorker<Name>[]} workers
 */
export async function serveWorkerd(workers) {
  const { compatibilityDate, compatibilityFlags } = workerCompat();
  const dir = await mkdtemp(join(tmpdir(), 'kontur-gate-workerd-'));
  const flags = compatibilityFlags.map(capnpText).join(', ');
  const lines = [
    'using Workerd = import "/workerd/workerd.capnp";',
    'const config :Workerd.Config = (',
    '  services = [',
    ...workers.map((w) => `    (name = ${capnpText(w.name)}, worker = .${capnpName(w.name)}),`),
    '    (name = "loopback", network = (allow = ["local"])),',
    '  ],',
    '  sockets = [',
    ...workers.map((w) => `    (name = ${capnpText(w.name)}, address = "127.0.0.1:${w.port}", http = (), service = ${capnpText(w.name)}),`),
    '  ],',
    ');',
  ];
  for (const w of workers) {
    const module = `${w.name}-${basename(w.script)}`;
    await writeFile(join(dir, module), await readFile(w.script));
    const bindings = Object.entries(w.bindings).map(([name, text]) => `(name = ${capnpText(name)}, text = ${capnpText(text)})`);
    lines.push(
      `const ${capnpName(w.name)} :Workerd.Worker = (`,
      `  modules = [(name = ${capnpText(module)}, esModule = embed ${capnpText(module)})],`,
      `  compatibilityDate = ${capnpText(compatibilityDate)},`,
      `  compatibilityFlags = [${flags}],`,
      `  bindings = [${bindings.join(', ')}],`,
      '  globalOutbound = "loopback",',
      ');',
    );
  }
  const configFile = join(dir, 'config.capnp');
  await writeFile(configFile, `${lines.join('\n')}\n`);

  const child = spawn(workerd.default, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (/** @type {Buffer} */ chunk) => {
    output = (output + chunk).slice(-8000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = once(child, 'exit');
  try {
    await Promise.race([
      Promise.all(workers.map((w) => waitForPort(w.port, 15_000))),
      exited.then(([code]) => {
        throw new Error(`workerd exited (${code}) before listening:\n${output}`);
      }),
    ]);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    pid: /** @type {number} */ (child.pid),
    version: workerd.version,
    urls: /** @type {Record<Name, string>} */ (Object.fromEntries(workers.map((w) => [w.name, `http://127.0.0.1:${w.port}`]))),
    /** The log workerd printed (uncaught errors end up here). */
    output: () => output,
    /** CPU seconds workerd has used so far, all threads, user + system. */
    cpuSeconds: () => processCpuSeconds(/** @type {number} */ (child.pid)),
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * utime + stime of a process (Linux /proc), in seconds.
 * @param {number} pid
 */
export async function processCpuSeconds(pid) {
  const { fields } = procStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  const CLOCK_TICKS = 100; // USER_HZ on Linux
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * A /proc/<pid>/stat line: the command name (field 2) and the fields after it, from field 3 (the
 * state) on. The name may hold spaces and parentheses, so it ends at the last closing parenthesis.
 * @param {string} stat
 */
function procStat(stat) {
  const close = stat.lastIndexOf(')');
  return { name: stat.slice(stat.indexOf('(') + 1, close), fields: stat.slice(close + 2).split(' ') };
}

/** @param {number} port @param {number} timeoutMs */
async function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const connected = await new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

class QuietLog extends Log {
  /** @param {string[]} sink */
  constructor(sink) {
    super(LogLevel.WARN);
    this.sink = sink;
  }
  /** @override @param {string} message */
  log(message) {
    this.sink.push(message);
  }
}

/**
 * Runs one bundled Worker in Miniflare on 127.0.0.1 with an in-memory SESSIONS KV namespace
 * (Miniflare's own implementation of Workers KV). `stripCfConnectingIp: false` sends subrequests
 * straight out instead of through Miniflare's strip-cf-connecting-ip Worker (its default).
 * @param {string} script
 * @param {Record<string, string>} bindings
 * @param {{ port?: number, stripCfConnectingIp?: boolean }} [options]
 */
export async function startMiniflare(script, bindings, { port = 0, stripCfConnectingIp = true } = {}) {
  const { compatibilityDate, compatibilityFlags } = workerCompat();
  /** @type {string[]} */
  const logs = [];
  const mf = new Miniflare({
    modules: true,
    scriptPath: script,
    modulesRoot: dirname(script),
    compatibilityDate,
    compatibilityFlags,
    kvNamespaces: ['SESSIONS'],
    bindings,
    host: '127.0.0.1',
    port,
    cf: false,
    stripCfConnectingIp,
    log: new QuietLog(logs),
    handleStructuredLogs: ({ level, message }) => {
      logs.push(`${level}: ${message}`);
    },
  });
  const before = await workerdChildren();
  const ready = await mf.ready;
  // Miniflare does not say which process it started: the workerd child that was not there before.
  const [pid] = (await workerdChildren()).filter((child) => !before.includes(child));
  return {
    url: ready.origin,
    logs,
    /** CPU seconds of this Miniflare's workerd so far (NaN if it could not be told apart). */
    cpuSeconds: () => (pid === undefined ? Promise.resolve(NaN) : processCpuSeconds(pid)),
    close: () => mf.dispose(),
  };
}

/** The pids of this process's workerd children (Linux /proc). */
async function workerdChildren() {
  /** @type {number[]} */
  const pids = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue; // gone meanwhile
    const { name, fields } = procStat(stat);
    // fields[1] is field 4, the parent's pid.
    if (name === 'workerd' && fields[1] === String(process.pid)) pids.push(Number(entry));
  }
  return pids;
}
