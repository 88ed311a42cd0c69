// The gate as the benchmark runs it: src/index.ts unchanged, behind a thin wrapper that
// - counts KV calls (around Miniflare's real KV, or around an in-isolate stand-in under
//   `workerd serve`, which has no KV),
// - counts subrequests when BENCH_COUNT_SUBREQUESTS=true (it wraps the global fetch, so it stays
//   off while throughput is measured),
// - answers /__bench/stats, /__bench/reset and /__bench/cpu (see cpu.js); every other request
//   goes to the gate as it is.
import gate from "../../../src/index.ts";
import { measureCpu } from "./cpu.js";
import { countingKv, memoryKv, newKvCounts } from "./kv.js";

/** @typedef {import('../../../src/edge/bindings.ts').Bindings & { BENCH_COUNT_SUBREQUESTS?: string }} BenchEnv */

const BENCH_PREFIX = "/__bench/";

const counts = { kv: newKvCounts(), subrequests: { origin: 0, other: 0 }, requests: 0 };
/**
 * The env the gate gets, per env workerd passes: same object in, same object out, because the gate
 * keeps its runtime (settings, keys) per env object. `distinctEnvs` shows how many there were.
 */
/** @type {WeakMap<BenchEnv, BenchEnv>} */
const wrappedEnvs = new WeakMap();
let distinctEnvs = 0;
/** @type {KVNamespace | undefined} */
let standIn;
let fetchCounted = false;

/** @param {BenchEnv} env */
function benchEnv(env) {
  let wrapped = wrappedEnvs.get(env);
  if (wrapped === undefined) {
    standIn ??= memoryKv();
    wrapped = { ...env, SESSIONS: countingKv(env.SESSIONS ?? standIn, counts.kv) };
    wrappedEnvs.set(env, wrapped);
    distinctEnvs += 1;
  }
  return wrapped;
}

/** @param {string} originUrl */
function countSubrequests(originUrl) {
  if (fetchCounted) return;
  fetchCounted = true;
  const inner = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url.startsWith(originUrl)) counts.subrequests.origin += 1;
    else counts.subrequests.other += 1;
    return inner(input, init);
  };
}

function reset() {
  Object.assign(counts.kv, newKvCounts());
  counts.subrequests.origin = 0;
  counts.subrequests.other = 0;
  counts.requests = 0;
}

/** @param {Request} request @param {BenchEnv} env @param {ExecutionContext} ctx @param {string | undefined} path */
async function benchEndpoint(request, env, ctx, path) {
  if (path === "stats") return Response.json({ ...counts, distinctEnvs });
  if (path === "reset" && request.method === "POST") {
    reset();
    return new Response(null, { status: 204 });
  }
  if (path === "cpu") {
    try {
      return Response.json(await measureCpu(gate, benchEnv(env), ctx, request));
    } catch (error) {
      return Response.json({ error: error instanceof Error ? error.message : String(error) }, { status: 500 });
    }
  }
  return new Response("unknown bench endpoint\n", { status: 404 });
}

export default {
  /** @param {Request<unknown, IncomingRequestCfProperties>} request @param {BenchEnv} env @param {ExecutionContext} ctx */
  async fetch(request, env, ctx) {
    const pathStart = request.url.indexOf("/", request.url.indexOf("//") + 2);
    if (request.url.startsWith(BENCH_PREFIX, pathStart)) {
      const path = request.url.slice(pathStart + BENCH_PREFIX.length).split("?", 1)[0];
      return benchEndpoint(request, env, ctx, path);
    }
    if (env.BENCH_COUNT_SUBREQUESTS === "true") countSubrequests(env.ORIGIN_URL ?? "");
    counts.requests += 1;
    return gate.fetch(request, benchEnv(env), ctx);
  },
};
