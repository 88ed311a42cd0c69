import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { repoRoot, workerCompat } from "../tools/lib/wrangler-files.mjs";

// Run with `vitest run --config test/vitest.config.ts` (npm test). The config lives in test/ so
// the repository root holds only the product's files; `root` points vitest back at the repo.
const { compatibilityDate, compatibilityFlags } = workerCompat();

/**
 * Integration and browser tests run in Node and start real servers (the gate in Miniflare, the
 * dev provider, an origin, chromium), two files at a time on the two cores.
 */
function integrationProject(name: string, include: string[]) {
  return {
    test: {
      name,
      environment: "node" as const,
      include,
      globalSetup: ["./test/helpers/global-setup.ts"],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      // Files in one worker share loaded modules (miniflare, oidc-provider, playwright-core, the
      // helpers): re-importing them for each file cost about 90 s of a run. The files keep no state
      // in shared modules beyond what each sets up for itself, and one worker runs one file at a time.
      isolate: false,
    },
  };
}

export default defineConfig({
  root: repoRoot,
  test: {
    // The default reporter for people, and the one-line summary that .ci/run prints last for CI.
    reporters: ["default", "./test/reporter.ts"],
    // The gate logs every decision (the app tests run all of it): shown only for a test that fails.
    silent: "passed-only",
    // Two cores: the workerd unit files and the integration files share them, two at a time.
    maxWorkers: 2,
    projects: [
      {
        // Unit tests run inside workerd, importing modules from src/ directly, with the same
        // compatibility settings as wrangler.toml and an empty SESSIONS KV. Plain miniflare
        // options rather than `wrangler.configPath`: that would also make src/index.ts the pool's
        // `main`, so one broken import in the entry point would fail every unit test, and it
        // would pull production vars into tests.
        plugins: [
          cloudflareTest({
            miniflare: { compatibilityDate, compatibilityFlags, kvNamespaces: ["SESSIONS"] },
          }),
        ],
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // One isolate per worker for all unit files (43 s → 12 s): they share KV and module state,
          // so each test starts what it needs (its own keys, runtime and KV keys) and restores what
          // it patches; the files pass in any order (--sequence.shuffle).
          isolate: false,
        },
      },
      integrationProject("integration", ["test/integration/**/*.test.ts", "test/browser/**/*.test.ts", "test/adversarial/**/*.test.ts"]),
    ],
  },
});
