import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Repository root (test/helpers/ → ../../). */
export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface WorkerCompat {
  compatibilityDate: string;
  compatibilityFlags: string[];
}

/**
 * The compatibility settings from wrangler.toml, so unit tests, the Miniflare-hosted gate and
 * `wrangler dev/deploy` all run the Worker under the same runtime behaviour. Only these two
 * top-level keys are read, with a deliberately tiny parser: a full TOML parser would be a new
 * dependency, and the rest of wrangler.toml (vars, KV ids) must not leak into tests anyway.
 */
export function workerCompat(): WorkerCompat {
  const toml = readFileSync(new URL("wrangler.toml", `file://${repoRoot}`), "utf8");
  // Top-level keys come before the first [table] header.
  const topLevel = toml.split(/^\s*\[/m)[0] ?? "";
  const date = /^\s*compatibility_date\s*=\s*"([^"]+)"/m.exec(topLevel)?.[1];
  if (date === undefined) throw new Error("wrangler.toml has no top-level compatibility_date");
  const flagsText = /^\s*compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(topLevel)?.[1] ?? "";
  const compatibilityFlags = [...flagsText.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? "");
  return { compatibilityDate: date, compatibilityFlags };
}
