// One load round of the benchmark, in its own process so the load generator never shares an
// event loop with the origin or the provider: autocannon against one URL for a fixed time, with
// every response time kept (autocannon's own histogram rounds to whole milliseconds; loopback
// latencies are a few of those, so percentiles come from the raw times instead).
//
// Usage: node tools/bench/load.mjs '{"url":"http://127.0.0.1:1234/x","headers":{},"seconds":4,"connections":10}'
// Prints one JSON line: { requests, seconds, rps, p50, p99, non2xx, errors }.

import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';

/**
 * @param {{ url: string, headers?: Record<string, string>, seconds: number, connections: number }} options
 */
export function runLoad({ url, headers = {}, seconds, connections }) {
  /** @type {number[]} */
  const times = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url, headers, duration: seconds, connections }, (error, result) => {
      if (error) {
        reject(error);
        return;
      }
      times.sort((a, b) => a - b);
      const at = (/** @type {number} */ q) => (times.length === 0 ? NaN : times[Math.min(times.length - 1, Math.floor(q * times.length))]);
      const elapsed = result.duration; // seconds, as measured by autocannon
      resolve({
        requests: result.requests.total,
        seconds: elapsed,
        rps: result['2xx'] / elapsed,
        p50: at(0.5),
        p99: at(0.99),
        non2xx: result.non2xx,
        errors: result.errors + result.timeouts,
      });
    });
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) times.push(responseTime);
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runLoad(JSON.parse(process.argv[2] ?? '{}')).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
