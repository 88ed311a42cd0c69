import { build } from "esbuild";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { workerBuildOptions } from "../../tools/lib/worker-build.mjs";
import { repoRoot } from "../../tools/lib/wrangler-files.mjs";

/**
 * Bundles src/index.ts into one ES module that Miniflare can load, the way wrangler would
 * (workerd export conditions, no Node built-ins). esbuild comes with wrangler/vite; its JS API
 * takes ~100 ms where `wrangler deploy --dry-run` takes seconds.
 *
 * Returns the path of the bundled script.
 */
export async function bundleWorker(outdir?: string): Promise<string> {
  const dir = outdir ?? (await mkdtemp(join(tmpdir(), "kontur-gate-bundle-")));
  const outfile = join(dir, "index.js");
  await build(workerBuildOptions(join(repoRoot, "src/index.ts"), outfile));
  return outfile;
}
