/**
 * Reading what a gate in Miniflare logged: its decision lines are JSON, one per console call.
 */
import { setTimeout as sleep } from "node:timers/promises";

export type Line = Record<string, unknown> & { event: string };

/** The gate's decision lines: every JSON line it logged (console.log or console.error). */
export function decisions(logs: readonly string[]): Line[] {
  return logs
    .map((entry) => /^(?:log|info|error|warn): (\{.*\})$/s.exec(entry)?.[1])
    .filter((json): json is string => json !== undefined)
    .map((json) => JSON.parse(json) as Line);
}

/**
 * Waits up to 3 s for `condition`: for what the gate does after its response (`waitUntil`), and for
 * its log lines, which workerd hands to Miniflare asynchronously.
 */
export async function until(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 60 && !condition(); attempt += 1) await sleep(50);
}

/** The first of the gate's decision lines that matches, waiting up to 3 s for it. */
export async function logged(logs: readonly string[], match: (line: Line) => boolean): Promise<Line | undefined> {
  let line: Line | undefined;
  await until(() => (line = decisions(logs).find(match)) !== undefined);
  return line;
}
