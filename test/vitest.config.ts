import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { repoRoot, workerCompat } from "../tools/lib/wrangler-files.mjs";

// Run with `vitest run --config test/vitest.config.ts` (npm test). The config lives in test/ so
// the repository root holds only the product's files; `root` points vitest back at the repo.
const { compatibilityDate, compatibilityFlags } = workerCompat();

/**
 * Files that give the provider a 1-second OIDC_TIMEOUT (a second file beside them could make an
 * honest provider answer late), and the refresh race across two isolates, whose loser waits a
 * bounded ~2 s for the winner's KV write. They run alone, after everything else.
 */
const ALONE = [
  "test/integration/sessions-outage.test.ts",
  "test/adversarial/provider-failures.test.ts",
  "test/integration/sessions-refresh.test.ts",
];

/**
 * Integration and browser tests run in Node and start real servers (the gate in Miniflare, the
 * dev provider, an origin, chromium), two files at a time on the two cores; `alone` files one at a
 * time, after the others (vitest runs every project without file parallelism in one final group).
 */
function integrationProject(name: string, include: string[], options: { alone: boolean; exclude?: string[] }) {
  return {
    test: {
      name,
      environment: "node" as const,
      include,
      exclude: options.exclude ?? [],
      globalSetup: ["./test/helpers/global-setup.ts"],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      fileParallelism: !options.alone,
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
        },
      },
      integrationProject("integration", ["test/integration/**/*.test.ts", "test/browser/**/*.test.ts", "test/adversarial/**/*.test.ts"], { alone: false, exclude: ALONE }),
      integrationProject("integration-alone", ALONE, { alone: true }),
    ],
  },
});
