import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeName, requireGateIdentity } from "../../examples/node/gate-identity.mjs";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../helpers/ports.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { repoRoot } from "../helpers/worker-config.ts";

const run = promisify(execFile);
const EXAMPLES = join(repoRoot, "examples");

/** Whether a command runs here; the Python, Go and PHP kits are exercised only where their tools are. */
async function available(command: string, args: string[]): Promise<boolean> {
  try {
    await run(command, args, { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

interface Kit {
  /** Checks that the kit's sources parse (compile, vet) with the language's own tools. */
  lint?: () => Promise<void>;
  /** Starts the example origin on `port`, verifying assertions of the gate at `gateUrl`. */
  start(port: number, gateUrl: string): Promise<() => Promise<void>>;
}

/** A child process serving on `port`; resolves once it answers HTTP. */
async function serve(command: string, args: string[], options: { cwd: string; env: Record<string, string>; port: number }): Promise<() => Promise<void>> {
  const child: ChildProcess = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${command} exited (${child.exitCode}):\n${output}`);
    try {
      await fetch(`http://127.0.0.1:${options.port}/`, { signal: AbortSignal.timeout(1000) });
      return stop;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  await stop();
  throw new Error(`${command} did not answer on port ${options.port}:\n${output}`);
}

const KITS: Record<string, Kit> = {
  // examples/node/server.mjs itself: Express (a devDependency) with the kit's middleware.
  node: {
    lint: async () => {
      for (const file of ["server.mjs", "gate-identity.mjs"]) await run(process.execPath, ["--check", file], { cwd: join(EXAMPLES, "node") });
    },
    start: (port, gateUrl) =>
      serve(process.execPath, ["server.mjs"], { cwd: join(EXAMPLES, "node"), port, env: { PORT: String(port), GATE_URL: gateUrl, ORIGIN_URL: `http://127.0.0.1:${port}` } }),
  },
  // The same middleware under plain node:http: it uses only Node's req/res, so it needs no Express.
  "node (node:http)": {
    async start(port, gateUrl) {
      const gateIdentity = requireGateIdentity({ gateUrl, originUrl: `http://127.0.0.1:${port}` });
      const server: Server = createServer((req, res) => {
        void gateIdentity(req, res, () => {
          const header = req.headers["x-forwarded-name"];
          res.setHeader("content-type", "application/json; charset=utf-8");
          res.end(
            JSON.stringify({
              ...(req as typeof req & { user: object }).user,
              header_user: req.headers["x-forwarded-user"],
              header_name: decodeName(typeof header === "string" ? header : undefined),
            }),
          );
        });
      });
      await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
      return () => new Promise<void>((resolve) => server.close(() => resolve()));
    },
  },
};

if (await available("python3", ["-c", "import flask, joserfc"])) {
  KITS.python = {
    lint: async () => {
      await run("python3", ["-c", "import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]", "app.py", "gate_identity.py"], { cwd: join(EXAMPLES, "python") });
    },
    start: (port, gateUrl) =>
      serve("python3", ["app.py"], { cwd: join(EXAMPLES, "python"), port, env: { PORT: String(port), GATE_URL: gateUrl, ORIGIN_URL: `http://127.0.0.1:${port}`, PYTHONDONTWRITEBYTECODE: "1" } }),
  };
}
if (await available("go", ["version"])) {
  let binary = "";
  KITS.go = {
    lint: async () => {
      const { stdout } = await run("gofmt", ["-l", "."], { cwd: join(EXAMPLES, "go") });
      expect(stdout, "files gofmt would change").toBe("");
      await run("go", ["vet", "./..."], { cwd: join(EXAMPLES, "go"), timeout: 120_000 });
    },
    async start(port, gateUrl) {
      if (binary === "") {
        binary = join(await mkdtemp(join(tmpdir(), "kontur-gate-go-")), "origin");
        await run("go", ["build", "-o", binary, "."], { cwd: join(EXAMPLES, "go"), timeout: 120_000 });
      }
      return serve(binary, [], { cwd: join(EXAMPLES, "go"), port, env: { PORT: String(port), GATE_URL: gateUrl, ORIGIN_URL: `http://127.0.0.1:${port}` } });
    },
  };
}
if (await available("php", ["-r", "exit(function_exists('sodium_crypto_sign_verify_detached') && function_exists('openssl_verify') ? 0 : 1);"])) {
  KITS.php = {
    lint: async () => {
      for (const file of ["GateIdentity.php", "index.php"]) await run("php", ["-l", file], { cwd: join(EXAMPLES, "php") });
    },
    async start(port, gateUrl) {
      // Its own temp dir: the kit caches the JWKS in a file there.
      const cache = await mkdtemp(join(tmpdir(), "kontur-gate-php-"));
      const stop = await serve("php", ["-S", `127.0.0.1:${port}`, "index.php"], {
        cwd: join(EXAMPLES, "php"),
        port,
        env: { GATE_URL: gateUrl, ORIGIN_URL: `http://127.0.0.1:${port}`, TMPDIR: cache },
      });
      return async () => {
        await stop();
        await rm(cache, { recursive: true, force: true });
      };
    },
  };
}

const TARGET = "/whoami?q=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82&n=1";

describe.each(Object.keys(KITS))("origin kit %s: verifies X-Auth-Assertion from the gate and reads the identity headers", (language) => {
  const kit = KITS[language]!;
  let stack: Stack;
  let stop: () => Promise<void>;
  let origin: string;
  let signingKey: JWK;

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    stack = await startStack({ vars: { ORIGIN_URL: origin } });
    stop = await kit.start(port, stack.gate.url);
    signingKey = JSON.parse(stack.secrets.ASSERTION_SIGNING_KEY) as JWK;
  }, 180_000);
  afterAll(async () => {
    await stop?.();
    await stack?.close();
  });

  /** An assertion made like the gate's, with `changes` applied, signed with `key` (the gate's by default). */
  async function assertion(changes: Record<string, unknown> = {}, key: JWK = signingKey): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: stack.gate.url, aud: origin, sub: "forged-sub", name: "Иванов Иван", iat: now, exp: now + 60, jti: crypto.randomUUID(), htm: "GET", htu: `${origin}${TARGET}`, ...changes };
    return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: key.kid! }).sign(await importJWK(key, "ES256"));
  }

  async function direct(headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${origin}${TARGET}`, { headers });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  if (kit.lint !== undefined) {
    it("parses with the language's own tools", async () => {
      await kit.lint!();
    }, 120_000);
  }

  it("a signed-in request through the gate: verified sub, e-mail and the Cyrillic name, from the assertion and the headers", async () => {
    const { client, callback } = await stack.signIn(TARGET);
    expect(callback.status).toBe(302);
    const response = await client.get(`${stack.gate.url}${TARGET}`, NAVIGATE);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ email: "demo@example.kontur.ru", name: "Иванов Иван Иванович", header_name: "Иванов Иван Иванович" });
    expect(body.sub).toEqual(expect.any(String));
    expect(body.header_user).toBe(body.sub);
  });

  it("an assertion made like the gate's for this request is accepted (the refusals below are for their reason only)", async () => {
    expect(await direct({ "x-auth-assertion": await assertion() })).toMatchObject({ status: 200, body: { sub: "forged-sub", name: "Иванов Иван" } });
  });

  it.each([
    ["no assertion, only forged identity headers", async () => ({ "x-forwarded-user": "admin", "x-forwarded-email": "boss@example.ru" })],
    ["an assertion signed with another key under the gate's kid", async () => {
      const { privateKey } = await generateKeyPair("ES256", { extractable: true });
      return { "x-auth-assertion": await assertion({}, { ...(await exportJWK(privateKey)), kid: signingKey.kid! }) };
    }],
    ["an assertion for another origin (aud)", async () => ({ "x-auth-assertion": await assertion({ aud: "http://127.0.0.1:1" }) })],
    ["an assertion from another issuer", async () => ({ "x-auth-assertion": await assertion({ iss: "https://evil.example" }) })],
    ["an expired assertion", async () => ({ "x-auth-assertion": await assertion({ iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 540 }) })],
    ["an assertion made for another URL (replayed)", async () => ({ "x-auth-assertion": await assertion({ htu: `${origin}/whoami?q=other` }) })],
    ["an assertion made for another method", async () => ({ "x-auth-assertion": await assertion({ htm: "POST" }) })],
    ["an unsigned assertion (alg none)", async () => {
      const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
      const now = Math.floor(Date.now() / 1000);
      return { "x-auth-assertion": `${b64({ alg: "none", kid: signingKey.kid })}.${b64({ iss: stack.gate.url, aud: origin, sub: "x", iat: now, exp: now + 60, htm: "GET", htu: `${origin}${TARGET}` })}.` };
    }],
  ])("refuses %s with 401", async (_name, headers) => {
    const { status, body } = await direct(await headers());
    expect(status).toBe(401);
    expect(body.error).toBe("unauthenticated");
  });
});
