import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Reporter, SerializedError, TestModule, Vitest } from "vitest/node";

/**
 * Writes the run's closing line, `N passed, N failed[, N skipped]`, to test-results/summary.txt
 * and prints it. CI reads only that line and it must be the last one printed; the Workers pool
 * can log after vitest's own summary, so .ci/run prints the file again after vitest exits.
 *
 * Counts are of tests. Failures that belong to no test count as one failure each, so a broken
 * run never reads as green: a test file that failed to load (syntax or import error) and a
 * failing beforeAll/afterAll. Errors vitest calls "unhandled" (a rejection nobody awaited) are
 * usually the echo of a failing test, so they count only when nothing else failed.
 */
export default class SummaryReporter implements Reporter {
  private root = process.cwd();

  onInit(vitest: Vitest): void {
    this.root = vitest.config.root;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      // Module-level errors: the file could not be collected, or a hook outside any test threw.
      failed += module.errors().length;
      for (const suite of module.children.allSuites()) failed += suite.errors().length;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else if (state === "skipped") skipped++; // skip, todo, or filtered out
        else failed++; // still pending at the end: the run was cut short
      }
    }
    if (failed === 0) failed = unhandledErrors.length;
    const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
    const dir = join(this.root, "test-results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "summary.txt"), `${line}\n`);
    process.stdout.write(`\n${line}\n`);
  }
}
