// How a Worker is bundled for workerd outside wrangler: shared by the test harness
// (test/helpers/bundle.ts) and the benchmark (tools/bench/workers.mjs), so the bench measures the
// same build the tests run.

/**
 * esbuild options for one ES module that workerd loads the way wrangler would build it: workerd
 * export conditions, runtime modules (`cloudflare:*`, `node:*` with the compatibility flags) left to
 * workerd. No source map: workerd does not apply it to logged stack traces.
 * @param {string} entryPoint
 * @param {string} outfile
 */
export function workerBuildOptions(entryPoint, outfile) {
  return {
    entryPoints: [entryPoint],
    outfile,
    bundle: true,
    format: /** @type {const} */ ('esm'),
    platform: /** @type {const} */ ('neutral'),
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*'],
    logLevel: /** @type {const} */ ('silent'),
  };
}
