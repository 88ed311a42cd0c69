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

/** workerd hands console output to Miniflare asynchronously: waits up to 3 s for a matching line. */
export async function logged(logs: readonly string[], match: (line: Line) => boolean): Promise<Line | undefined> {
  for (let attempt = 0; attempt < 60; attempt += 1) {
    const line = decisions(logs).find(match);
    if (line !== undefined) return line;
    await sleep(50);
  }
  return undefined;
}
