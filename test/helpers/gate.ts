import { exportJWK, generateKeyPair, type JWK } from "jose";
import { Log, LogLevel, Miniflare } from "miniflare";
import { dirname } from "node:path";
import { inject, type ProvidedContext } from "vitest";
import { bundleWorker } from "./bundle.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { workerCompat } from "../../tools/lib/wrangler-files.mjs";

/** The SESSIONS namespace as seen from Node (read and seed the gate's KV from a test). */
export type GateKV = Awaited<ReturnType<Miniflare["getKVNamespace"]>>;

export interface GateOptions {
  /** Port on 127.0.0.1; pass one from freePort() when the redirect_uri must be known up front. */
  port?: number;
  /** A different Worker script (already bundled ES module); default: this run's src/ bundle. */
  scriptPath?: string;
  /** Also print the Worker's log lines to the test output (default: env GATE_LOGS=1). */
  echoLogs?: boolean;
  /**
   * A directory for SESSIONS: gates started with the same one share their KV (two isolates, or a
   * restart with other settings). Default: in memory, this gate's own.
   */
  kvPersist?: string;
  /** `host:port` of an HTTP proxy that receives every outbound request of the Worker (see faulty-proxy.ts). */
  outboundProxy?: string;
  /**
   * Origin Workers behind service bindings (ROUTES `origin: "service:BINDING"`): binding name →
   * the Worker's ES module source. Each runs in the same workerd, reachable only through the binding.
   */
  services?: Record<string, string>;
}

export interface Gate {
  /** The gate's origin, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  url: string;
  port: number;
  mf: Miniflare;
  kv: GateKV;
  /**
   * Everything the Worker logged (console.*, including the errors Hono's default handler logs)
   * and Miniflare's own warnings and errors, one entry per call as `level: message` (`miniflare:
   * …` for Miniflare's), in order. Tests assert on it, e.g. that no secret is ever logged.
   * An exception that escapes the Worker entirely is not logged by Miniflare: it comes back as
   * the 500 response's body.
   */
  logs: string[];
  close(): Promise<void>;
}

let ownBundle: Promise<string> | undefined;

/** The bundle built once for this run by global-setup.ts, else (outside it) one per process. */
async function gateScript(): Promise<string> {
  // Undefined when the file runs outside the integration project (no global setup).
  const provided: ProvidedContext["gateBundle"] | undefined = inject("gateBundle");
  if (provided !== undefined) {
    if ("error" in provided) throw new Error(`bundling src/index.ts failed:\n${provided.error}`);
    return provided.path;
  }
  ownBundle ??= bundleWorker();
  return ownBundle;
}

/** Miniflare's own messages (startup, runtime errors it reports) go into the same list. */
class CapturingLog extends Log {
  constructor(private readonly sink: (line: string) => void) {
    super(LogLevel.WARN);
  }
  protected override log(message: string): void {
    this.sink(message);
  }
}

/**
 * Starts the gate Worker in Miniflare on a real 127.0.0.1 port (so a browser and the provider's
 * redirects can reach it), with `vars` as its vars/secrets and an empty in-memory SESSIONS KV.
 */
export async function startGate(vars: Record<string, string>, options: GateOptions = {}): Promise<Gate> {
  const scriptPath = options.scriptPath ?? (await gateScript());
  const port = options.port ?? (await freePort());
  const echo = options.echoLogs ?? process.env.GATE_LOGS === "1";
  const logs: string[] = [];
  const record = (line: string): void => {
    logs.push(line);
    if (echo) process.stderr.write(`[gate] ${line}\n`);
  };
  const { compatibilityDate, compatibilityFlags } = workerCompat();
  const gateWorker = {
    modules: true,
    scriptPath,
    // Module names are paths relative to this root, and workerd refuses "../": the bundle lives
    // in a temporary directory outside the repository.
    modulesRoot: dirname(scriptPath),
    compatibilityDate,
    compatibilityFlags,
    kvNamespaces: ["SESSIONS"],
    ...(options.outboundProxy === undefined ? {} : { outboundService: { external: { address: options.outboundProxy, http: {} } } }),
    bindings: vars,
  };
  const services = Object.entries(options.services ?? {});
  // The first Worker is the one on the port; service-bound origin Workers follow it.
  const workers =
    services.length === 0
      ? gateWorker
      : {
          workers: [
            { name: "gate", ...gateWorker, serviceBindings: Object.fromEntries(services.map(([binding]) => [binding, `origin-${binding}`])) },
            ...services.map(([binding, script]) => ({ name: `origin-${binding}`, modules: true, script, compatibilityDate, compatibilityFlags })),
          ],
        };
  const mf = new Miniflare({
    ...workers,
    ...(options.kvPersist === undefined ? {} : { kvPersist: options.kvPersist }),
    host: "127.0.0.1",
    port,
    // Never reach the internet for Request.cf; placeholder values are fine for the gate.
    cf: false,
    log: new CapturingLog((message) => record(`miniflare: ${message}`)),
    // workerd then emits console output as JSON records instead of raw text; the message of each
    // record is what the Worker logged (multi-argument console calls arrive already joined).
    handleStructuredLogs: ({ level, message }) => record(`${level}: ${message}`),
  });
  try {
    const ready = await mf.ready;
    const kv = await mf.getKVNamespace("SESSIONS");
    return {
      url: ready.origin,
      port: Number(ready.port),
      mf,
      kv,
      logs,
      close: () => mf.dispose(),
    };
  } catch (err) {
    await mf.dispose().catch(() => undefined);
    // workerd's reason for refusing to start is in its output, which we captured: show it.
    const detail = logs.length > 0 ? `\n--- gate output ---\n${logs.join("\n")}` : "";
    throw new Error(`gate failed to start${detail}`, { cause: err });
  }
}

export interface TestSecrets {
  /** base64url of 32 random bytes (one key; join several with "," to test rotation). */
  SESSION_SECRETS: string;
  /** Private EC P-256 JWK (JSON) with `kid` and `alg: "ES256"`. */
  ASSERTION_SIGNING_KEY: string;
  OIDC_CLIENT_SECRET: string;
  /** The public half of ASSERTION_SIGNING_KEY, to verify X-Auth-Assertion in tests. */
  assertionPublicJwk: JWK;
}

/** base64url of `n` random bytes. */
export function randomSecret(n = 32): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString("base64url");
}

/** Fresh keys for one test: tests never use fixed keys, so nothing can depend on their values. */
export async function generateSecrets(): Promise<TestSecrets> {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = randomSecret(9);
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: "ES256" };
  const assertionPublicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256" };
  return {
    SESSION_SECRETS: randomSecret(32),
    ASSERTION_SIGNING_KEY: JSON.stringify(privateJwk),
    OIDC_CLIENT_SECRET: randomSecret(32),
    assertionPublicJwk,
  };
}

export interface LoopbackGateSettings {
  /** The provider's issuer: plain http on localhost, hence OIDC_ALLOW_HTTP. */
  issuer: string;
  clientId: string;
  /** From generateSecrets(); OIDC_CLIENT_SECRET is what the provider was started with. */
  secrets: Pick<TestSecrets, "OIDC_CLIENT_SECRET" | "SESSION_SECRETS" | "ASSERTION_SIGNING_KEY">;
  /** The origin behind the gate; left out where a test never gets that far. */
  originUrl?: string;
}

/**
 * The settings of a gate in front of a provider on loopback: issuer, client, fresh keys and the
 * origin. `extra` adds or overrides settings (a test's own policy, lifetimes, a broken value).
 */
export function loopbackGateVars(settings: LoopbackGateSettings, extra: Record<string, string> = {}): Record<string, string> {
  const { issuer, clientId, secrets, originUrl } = settings;
  return {
    OIDC_ISSUER: issuer,
    OIDC_ALLOW_HTTP: "true",
    OIDC_CLIENT_ID: clientId,
    OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET,
    SESSION_SECRETS: secrets.SESSION_SECRETS,
    ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY,
    ...(originUrl === undefined ? {} : { ORIGIN_URL: originUrl }),
    ...extra,
  };
}
