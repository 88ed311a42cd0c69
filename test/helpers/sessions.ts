/**
 * The session tests' stack: the usual one (stack.ts), with the gate's outbound traffic going through
 * a faulty proxy and its KV kept in a directory, so a test can break the provider, start a second
 * gate on the same KV (another isolate), or restart the gate with other settings.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFaultyProxy, type FaultyProxy } from "./faulty-proxy.ts";
import { startGate, type Gate } from "./gate.ts";
import { startStack, type Stack, type StackOptions } from "./stack.ts";

export interface SessionStack extends Stack {
  proxy: FaultyProxy;
  /** The gate serving `gate.url` now (replaced by `restart`). */
  current: Gate;
  /** Another gate on the same KV and settings (or `vars` on top): another isolate. */
  twin(vars?: Record<string, string>): Promise<Gate>;
  /** Stops the gate and starts it again on the same port and KV with `vars` on top of the settings. */
  restart(vars: Record<string, string>): Promise<Gate>;
  /** KV keys of the session records. */
  sessionKeys(): Promise<string[]>;
}

export async function startSessionStack(options: Omit<StackOptions, "gate"> = {}): Promise<SessionStack> {
  const proxy = await startFaultyProxy();
  const kvPersist = await mkdtemp(join(tmpdir(), "kontur-gate-kv-"));
  const gateOptions = { kvPersist, outboundProxy: proxy.address };
  const stack = await startStack({ ...options, gate: gateOptions });
  proxy.watch(stack.provider.issuer);
  /** Every gate started, and whether it is still running (Miniflare refuses a second dispose). */
  const running = new Set<Gate>([stack.gate]);
  let current = stack.gate;
  return {
    ...stack,
    proxy,
    get current() {
      return current;
    },
    async twin(vars = {}) {
      const gate = await startGate({ ...stack.vars, ...vars }, gateOptions);
      running.add(gate);
      return gate;
    },
    async restart(vars) {
      running.delete(current);
      await current.close();
      current = await startGate({ ...stack.vars, ...vars }, { ...gateOptions, port: stack.gate.port });
      running.add(current);
      return current;
    },
    async sessionKeys() {
      return (await current.kv.list({ prefix: "session:" })).keys.map((key) => key.name);
    },
    async close() {
      for (const gate of running) await gate.close();
      await stack.origin.close();
      await stack.provider.close();
      await proxy.close();
      await rm(kvPersist, { recursive: true, force: true });
    },
  };
}
