import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import type { TestProject } from "vitest/node";
import { bundleWorker } from "./bundle.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Path of the Worker bundle built for this run, or the build error (see gate.ts). */
    gateBundle: { path: string } | { error: string };
  }
}

/**
 * Integration project global setup: bundle src/ once per run and hand the path to every test
 * file (each file runs in its own worker process, so a module-level cache would rebuild per file).
 * A build failure is passed on instead of thrown, so only the tests that start a gate fail —
 * not unrelated suites (e.g. the provider's own tests) while src/ is being written.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let built: string | undefined;
  try {
    built = await bundleWorker();
    project.provide("gateBundle", { path: built });
  } catch (err) {
    project.provide("gateBundle", { error: err instanceof Error ? err.message : String(err) });
  }
  return async () => {
    if (built !== undefined) await rm(dirname(built), { recursive: true, force: true });
  };
}
