import { setTimeout as sleep } from "node:timers/promises";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import { chmod, chown, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { SignJWT, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeName, requireGateIdentity } from "../../examples/node/gate-identity.mjs";
import { freePort } from "../../tools/lib/listen.mjs";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { repoRoot } from "../../tools/lib/wrangler-files.mjs";

const run = promisify(execFile);
const EXAMPLES = join(repoRoot, "examples");
/** CI installs every kit's toolchain (.ci/run) and runs with CI=true: there a missing one is a failure. */
const IN_CI = !["", "0", "false"].includes(process.env.CI ?? "");

/** Whether a command runs here. */
async function available(command: string, args: string[]): Promise<boolean> {
  try {
    await run(command, args, { timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * The Python to run the kit with: `python3` from PATH when it has Flask and PyJWT with cryptography,
 * else Debian's own, where `apt-get install python3-flask python3-jwt python3-cryptography` puts
 * them (a pyenv or venv `python3` may come first on PATH without them).
 */
async function findPython(): Promise<string | undefined> {
  const probe = ["-c", "import flask, jwt.algorithms; raise SystemExit(0 if jwt.algorithms.has_crypto else 1)"];
  const candidates = ["python3", "/usr/bin/python3"];
  // Both probed at once (a pyenv shim alone takes seconds to start); the first that works wins.
  const works = await Promise.all(candidates.map((python) => available(python, probe)));
  return candidates.find((_, i) => works[i]);
}

interface Kit {
  /** For a kit in another language: what it needs, and whether this machine has it. */
  toolchain?: { needs: string; present: boolean };
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
      await sleep(200);
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

// Every toolchain probed at once: each probe starts a program (a Python importing Flask takes seconds).
const [python, goPresent, phpPresent] = await Promise.all([
  findPython(),
  Promise.all([available("go", ["version"]), available("gofmt", ["-l", join(EXAMPLES, "go")])]).then((found) => found.every(Boolean)),
  available("php", ["-r", "exit(function_exists('sodium_crypto_sign_verify_detached') && function_exists('openssl_verify') && function_exists('posix_geteuid') ? 0 : 1);"]),
]);
KITS.python = {
  toolchain: { needs: "python3 with Flask and PyJWT + cryptography (apt-get install python3-flask python3-jwt python3-cryptography)", present: python !== undefined },
  lint: async () => {
    await run(python ?? "python3", ["-c", "import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]", "app.py", "gate_identity.py"], { cwd: join(EXAMPLES, "python") });
  },
  start: (port, gateUrl) =>
    serve(python ?? "python3", ["app.py"], { cwd: join(EXAMPLES, "python"), port, env: { PORT: String(port), GATE_URL: gateUrl, ORIGIN_URL: `http://127.0.0.1:${port}`, PYTHONDONTWRITEBYTECODE: "1" } }),
};
KITS.go = {
  toolchain: { needs: "go and gofmt (apt-get install golang-go)", present: goPresent },
  lint: async () => {
    const { stdout } = await run("gofmt", ["-l", "."], { cwd: join(EXAMPLES, "go") });
    expect(stdout, "files gofmt would change").toBe("");
    await run("go", ["vet", "./..."], { cwd: join(EXAMPLES, "go"), timeout: 120_000 });
  },
  async start(port, gateUrl) {
    // Built, then run: `go run` would build too, and leave a child process behind its own.
    const dir = await mkdtemp(join(tmpdir(), "kontur-gate-go-"));
    try {
      await run("go", ["build", "-o", join(dir, "origin"), "."], { cwd: join(EXAMPLES, "go"), timeout: 120_000 });
      const stop = await serve(join(dir, "origin"), [], { cwd: join(EXAMPLES, "go"), port, env: { PORT: String(port), GATE_URL: gateUrl, ORIGIN_URL: `http://127.0.0.1:${port}` } });
      return async () => {
        await stop();
        await rm(dir, { recursive: true, force: true });
      };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  },
};
KITS.php = {
  toolchain: { needs: "php with openssl, sodium and posix (apt-get install php-cli)", present: phpPresent },
  lint: async () => {
    for (const file of ["GateIdentity.php", "index.php"]) await run("php", ["-l", file], { cwd: join(EXAMPLES, "php") });
  },
  async start(port, gateUrl) {
    // The kit keeps the gate's JWKS in a cache directory of its own, which it creates (0700).
    const parent = await mkdtemp(join(tmpdir(), "kontur-gate-php-"));
    const stop = await servePhp(port, { GATE_URL: gateUrl, JWKS_CACHE_DIR: join(parent, "jwks") });
    return async () => {
      await stop();
      await rm(parent, { recursive: true, force: true });
    };
  },
};

/** examples/php/index.php under `php -S` on `port`, as the origin `http://127.0.0.1:<port>`. */
function servePhp(port: number, env: Record<string, string>): Promise<() => Promise<void>> {
  return serve("php", ["-S", `127.0.0.1:${port}`, "index.php"], { cwd: join(EXAMPLES, "php"), port, env: { ORIGIN_URL: `http://127.0.0.1:${port}`, ...env } });
}

/** The kits whose toolchain is here (every one in CI, or the toolchain test below fails). */
const RUNNABLE = Object.keys(KITS).filter((name) => KITS[name]!.toolchain?.present !== false);

/** Signs `claims` (those set to undefined left out) as the gate would with `key`: ES256 for EC, EdDSA for Ed25519. */
async function sign(claims: Record<string, unknown>, key: JWK): Promise<string> {
  const alg = key.kty === "OKP" ? "EdDSA" : "ES256";
  const present = Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined));
  return new SignJWT(present).setProtectedHeader({ alg, kid: key.kid! }).sign(await importJWK(key, alg));
}

/** The public half of a private JWK, as /_auth/jwks.json lists it. */
function publicJwk({ d: _private, ...rest }: JWK): JWK {
  return rest;
}

describe("origin kits: the toolchain of each kit is on this machine", () => {
  it.each(Object.keys(KITS).filter((name) => KITS[name]!.toolchain !== undefined))("%s", (name) => {
    const { needs, present } = KITS[name]!.toolchain!;
    if (present) return;
    // Never a quiet skip in CI: a kit that is not run there is a kit that may be broken.
    if (IN_CI) throw new Error(`the ${name} origin kit cannot be tested: this machine lacks ${needs}`);
    console.warn(`the ${name} origin kit is NOT tested here: this machine lacks ${needs}`);
  });
});

const TARGET = "/whoami?q=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82&n=1";

/** A kit's origin on its port, behind a gate of its own. */
interface KitUnderTest {
  stack: Stack;
  origin: string;
  stop: () => Promise<void>;
  /** An Ed25519 key the gate publishes as its previous key: the kits must verify EdDSA too. */
  ed25519Key: JWK;
}

async function startKit(kit: Kit): Promise<KitUnderTest> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const ed25519Key = { ...(await exportJWK((await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true })).privateKey)), kid: "previous-ed25519" };
  const stack = await startStack({ vars: { ORIGIN_URL: origin, ASSERTION_PREVIOUS_PUBLIC_KEY: JSON.stringify(publicJwk(ed25519Key)) } });
  try {
    return { stack, origin, ed25519Key, stop: await kit.start(port, stack.gate.url) };
  } catch (error) {
    await stack.close();
    throw error;
  }
}

/**
 * Every kit's gate and origin, started side by side before the first kit's tests (each start
 * costs seconds: a gate, a Go build, a Python importing Flask). A kit that fails to start fails
 * its own tests only: its beforeAll awaits it.
 */
const started = new Map<string, Promise<KitUnderTest>>();
beforeAll(() => {
  for (const language of RUNNABLE) {
    const starting = startKit(KITS[language]!);
    // Handled here so that it is not an unhandled rejection before its kit's beforeAll awaits it.
    starting.catch(() => undefined);
    started.set(language, starting);
  }
});
afterAll(async () => {
  for (const starting of started.values()) {
    const kit = await starting.catch(() => undefined);
    await kit?.stop();
    await kit?.stack.close();
  }
});

describe.concurrent.each(RUNNABLE)("origin kit %s: verifies X-Auth-Assertion from the gate and reads the identity headers", (language) => {
  const kit = KITS[language]!;
  let stack: Stack;
  let origin: string;
  let signingKey: JWK;
  let ed25519Key: JWK;

  beforeAll(async () => {
    ({ stack, origin, ed25519Key } = await started.get(language)!);
    signingKey = JSON.parse(stack.secrets.ASSERTION_SIGNING_KEY) as JWK;
  }, 180_000);

  /**
   * An assertion made like the gate's (ASSERTION_MODE=request) for TARGET, with `changes` applied
   * (a claim set to undefined is left out), signed with `key` (the gate's by default).
   */
  async function assertion(changes: Record<string, unknown> = {}, key: JWK = signingKey): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: stack.gate.url, aud: origin, sub: "forged-sub", email: "forged@example.ru", name: "Иванов Иван", iat: now, exp: now + 60, jti: crypto.randomUUID(), htm: "GET", htu: `${origin}${TARGET}` };
    return sign({ ...claims, ...changes }, key);
  }
  /** ASSERTION_MODE=session: the same claims, but bound to no request (no htm, no htu). */
  const SESSION_MODE = { htm: undefined, htu: undefined };

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
    expect(await direct({ "x-auth-assertion": await assertion() })).toMatchObject({ status: 200, body: { sub: "forged-sub", email: "forged@example.ru", name: "Иванов Иван" } });
  });

  it("an assertion signed with the gate's Ed25519 key (EdDSA) is accepted", async () => {
    expect(await direct({ "x-auth-assertion": await assertion({}, ed25519Key) })).toMatchObject({ status: 200, body: { sub: "forged-sub" } });
  });

  it("an ASSERTION_MODE=session assertion (no htm, no htu) is accepted: htm and htu are checked only when present", async () => {
    expect(await direct({ "x-auth-assertion": await assertion(SESSION_MODE) })).toMatchObject({ status: 200, body: { sub: "forged-sub", email: "forged@example.ru" } });
  });

  it("an address marked email_verified: false is not handed on as the user's e-mail (the user still is)", async () => {
    const { status, body } = await direct({ "x-auth-assertion": await assertion({ email_verified: false }) });
    expect(status).toBe(200);
    expect(body.sub).toBe("forged-sub");
    // Absent, null or empty, as each language writes "none".
    expect(body.email || undefined).toBeUndefined();
    expect(await direct({ "x-auth-assertion": await assertion({ email_verified: true }) })).toMatchObject({ status: 200, body: { email: "forged@example.ru" } });
  });

  it.each([
    ["no assertion, only forged identity headers", async () => ({ "x-forwarded-user": "admin", "x-forwarded-email": "boss@example.ru" })],
    ["an assertion signed with another key under the gate's kid", async () => {
      const { privateKey } = await generateKeyPair("ES256", { extractable: true });
      return { "x-auth-assertion": await assertion({}, { ...(await exportJWK(privateKey)), kid: signingKey.kid! }) };
    }],
    ["an EdDSA assertion signed with another key under the gate's Ed25519 kid", async () => {
      const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
      return { "x-auth-assertion": await assertion({}, { ...(await exportJWK(privateKey)), kid: ed25519Key.kid! }) };
    }],
    ["an assertion for another origin (aud)", async () => ({ "x-auth-assertion": await assertion({ aud: "http://127.0.0.1:1" }) })],
    ["an assertion from another issuer", async () => ({ "x-auth-assertion": await assertion({ iss: "https://evil.example" }) })],
    ["an expired assertion", async () => ({ "x-auth-assertion": await assertion({ iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 540 }) })],
    ["an assertion made for another URL (replayed)", async () => ({ "x-auth-assertion": await assertion({ htu: `${origin}/whoami?q=other` }) })],
    ["an assertion made for another method", async () => ({ "x-auth-assertion": await assertion({ htm: "POST" }) })],
    ["an assertion with htu but no htm, made for another URL", async () => ({ "x-auth-assertion": await assertion({ htm: undefined, htu: `${origin}/whoami?q=other` }) })],
    ["an assertion with htm but no htu, made for another method", async () => ({ "x-auth-assertion": await assertion({ htm: "POST", htu: undefined }) })],
    ["an ASSERTION_MODE=session assertion for another origin (aud)", async () => ({ "x-auth-assertion": await assertion({ ...SESSION_MODE, aud: "http://127.0.0.1:1" }) })],
    ["an expired ASSERTION_MODE=session assertion", async () => ({ "x-auth-assertion": await assertion({ ...SESSION_MODE, iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 540 }) })],
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

// The PHP kit once cached the gate's JWKS in the shared temp directory, where anyone on the machine
// could plant a key set of their own and then sign in as anyone. Now the keys stay in memory, or in
// a cache directory the kit refuses unless it is this user's alone. Each case below is the attack:
// a JWKS holding the attacker's key (under the gate's kid and their own), then an assertion the
// attacker signed. A small JWKS server stands in for the gate: only the kit's cache is on trial.
describe.runIf(KITS.php!.toolchain!.present)("origin kit php: a planted JWKS cache is refused", () => {
  let gate: Server;
  let gateUrl: string;
  let gateKey: JWK;
  let attackerKey: JWK;
  let jwksFetches = 0;
  let scratch: string;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    gateKey = { ...(await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey)), kid: "gate-key" };
    attackerKey = { ...(await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey)), kid: "attacker-key" };
    gate = createServer((req, res) => {
      if (req.url !== "/_auth/jwks.json") return void res.writeHead(404).end();
      jwksFetches += 1;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: [publicJwk(gateKey)] }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => gate.listen(port, "127.0.0.1", resolve));
    gateUrl = `http://127.0.0.1:${port}`;
    scratch = await mkdtemp(join(tmpdir(), "kontur-gate-php-cache-"));
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    await new Promise<void>((resolve) => gate?.close(() => resolve()));
    await rm(scratch, { recursive: true, force: true });
  });

  /** The PHP kit as an origin with these settings; its URL. */
  async function startKit(env: Record<string, string>): Promise<string> {
    const port = await freePort();
    stops.push(await servePhp(port, { GATE_URL: gateUrl, ...env }));
    return `http://127.0.0.1:${port}`;
  }

  async function present(origin: string, key: JWK, kid = key.kid!): Promise<{ status: number; body: Record<string, unknown> }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await sign({ iss: gateUrl, aud: origin, sub: "admin", iat: now, exp: now + 60, jti: crypto.randomUUID(), htm: "GET", htu: `${origin}/whoami` }, { ...key, kid });
    const response = await fetch(`${origin}/whoami`, { headers: { "x-auth-assertion": token } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** The attacker's key set, under the gate's kid and their own, as the kit's cache file holds keys. */
  const plantedJwks = () => JSON.stringify({ [gateKey.kid!]: publicJwk(attackerKey), [attackerKey.kid!]: publicJwk(attackerKey) });
  const cacheName = () => `jwks-${createHash("md5").update(gateUrl).digest("hex")}.json`;

  it("without a cache directory the keys stay in memory: a JWKS planted in the shared temp directory is never read", async () => {
    const shared = join(scratch, "tmp");
    await mkdir(shared);
    await chmod(shared, 0o1777); // like /tmp: everyone may create files here
    // Where the kit used to cache the JWKS: sys_get_temp_dir() . '/kontur-gate-jwks-' . md5(issuer) . '.json'.
    await writeFile(join(shared, `kontur-gate-jwks-${createHash("md5").update(gateUrl).digest("hex")}.json`), plantedJwks());
    const origin = await startKit({ TMPDIR: shared });
    expect(await present(origin, attackerKey, gateKey.kid!)).toMatchObject({ status: 401, body: { error: "unauthenticated" } });
    expect(await present(origin, attackerKey)).toMatchObject({ status: 401, body: { error: "unauthenticated" } });
    expect(await present(origin, gateKey)).toMatchObject({ status: 200, body: { sub: "admin" } });
  });

  it("with a cache directory: created 0700 with a 0600 file, which is then trusted (no second fetch)", async () => {
    const dir = join(scratch, "own", "jwks");
    const origin = await startKit({ JWKS_CACHE_DIR: dir });
    const before = jwksFetches;
    expect(await present(origin, gateKey)).toMatchObject({ status: 200, body: { sub: "admin" } });
    expect(jwksFetches).toBe(before + 1);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, cacheName()))).mode & 0o777).toBe(0o600);
    // php -S starts every request afresh: this one can only have its keys from the file.
    expect(await present(origin, gateKey)).toMatchObject({ status: 200, body: { sub: "admin" } });
    expect(jwksFetches).toBe(before + 1);
    expect((await present(origin, attackerKey, gateKey.kid!)).status).toBe(401);
  });

  /** A cache directory `mode`, holding the attacker's JWKS as the cache file. */
  async function plantedCache(name: string, mode: number): Promise<{ dir: string; file: string }> {
    const dir = join(scratch, name);
    await mkdir(dir);
    await chmod(dir, mode);
    const file = join(dir, cacheName());
    await writeFile(file, plantedJwks());
    await chmod(file, 0o600);
    return { dir, file };
  }

  it.each([
    ["in a cache directory others can write (mode 1777, as /tmp)", async () => (await plantedCache("world", 0o1777)).dir],
    ["in a cache directory of mode 0755", async () => (await plantedCache("loose", 0o755)).dir],
    ["as a cache file group and others can write (0666)", async () => {
      const { dir, file } = await plantedCache("writable", 0o700);
      await chmod(file, 0o666);
      return dir;
    }],
    ["as a symlink in the cache directory to a file elsewhere", async () => {
      const { dir, file } = await plantedCache("linked", 0o700);
      const elsewhere = join(scratch, "elsewhere.json");
      await writeFile(elsewhere, plantedJwks(), { mode: 0o600 });
      await rm(file);
      await symlink(elsewhere, file);
      expect((await lstat(file)).isSymbolicLink()).toBe(true);
      return dir;
    }],
  ])("refuses a JWKS planted %s, and the assertion its author signed", async (_name, plant) => {
    const origin = await startKit({ JWKS_CACHE_DIR: await plant() });
    for (const kid of [gateKey.kid!, attackerKey.kid!]) {
      const { status, body } = await present(origin, attackerKey, kid);
      expect(status).toBe(401);
      expect(body.reason).toMatch(/JWKS cache/);
    }
  });

  it("refuses a JWKS planted as a cache file another user owns, and the assertion its author signed", async () => {
    // Only root can give a file away; CI runs as root, so there this case always runs.
    if (process.getuid?.() !== 0) {
      if (IN_CI) throw new Error("CI must run as root to plant a file owned by another user");
      console.warn("not root: a cache file owned by another user cannot be planted here; CI runs this case");
      return;
    }
    const { dir, file } = await plantedCache("foreign", 0o700);
    await chmod(file, 0o644);
    await chown(file, 65534, 65534); // nobody
    const origin = await startKit({ JWKS_CACHE_DIR: dir });
    const { status, body } = await present(origin, attackerKey, gateKey.kid!);
    expect(status).toBe(401);
    expect(body.reason).toMatch(/JWKS cache/);
  });
});

// wrangler dev's workerd keeps a connection open after its response, whatever the request asks
// (HTTP/1.0, Connection: close). PHP's HTTP stream reads to the end of the connection unless told
// the length: the kit fetching the JWKS from a local gate waited out its whole 5 s timeout.
describe.runIf(KITS.php!.toolchain!.present)("origin kit php: a gate that keeps the connection open after the JWKS", () => {
  const sockets = new Set<Socket>();
  let gate: TcpServer | undefined;
  let stop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await stop?.();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => (gate === undefined ? resolve() : gate.close(() => resolve())));
  });

  it("is read by its Content-Length: the assertion is verified without waiting for the connection to close", async () => {
    const key: JWK = { ...(await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey)), kid: "gate-key" };
    const body = JSON.stringify({ keys: [publicJwk(key)] });
    gate = createTcpServer((socket) => {
      sockets.add(socket);
      socket.once("data", () => socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
    });
    const gatePort = await freePort();
    await new Promise<void>((resolve) => gate!.listen(gatePort, "127.0.0.1", resolve));
    const gateUrl = `http://127.0.0.1:${gatePort}`;
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    stop = await servePhp(port, { GATE_URL: gateUrl });

    const now = Math.floor(Date.now() / 1000);
    const token = await sign({ iss: gateUrl, aud: origin, sub: "demo", iat: now, exp: now + 60, jti: crypto.randomUUID(), htm: "GET", htu: `${origin}/whoami` }, key);
    const started = Date.now();
    const response = await fetch(`${origin}/whoami`, { headers: { "x-auth-assertion": token } });
    expect({ status: response.status, body: await response.json() }).toMatchObject({ status: 200, body: { sub: "demo" } });
    // Waiting for the close would take the kit's whole timeout (5 s); reading the body takes milliseconds.
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
