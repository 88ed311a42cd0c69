import { spawn } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { loginThroughProvider, startProvider } from "../../tools/dev-provider/provider.mjs";
import { startGate } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { NAVIGATE } from "../helpers/stack.ts";
import { readDotenv, readWranglerToml, repoRoot, wranglerFacts } from "../../tools/lib/wrangler-files.mjs";

interface Run {
  code: number;
  out: string;
}

/**
 * Runs `npm run setup` (node tools/setup/setup.mjs) in `dir`. `answers` are typed one by one, each when
 * setup shows its next question (as a person at a terminal would); without them, stdin is closed.
 */
function setup(args: string[], answers?: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, "tools/setup/setup.mjs"), ...args], {
      cwd: repoRoot,
      env: { ...process.env, OIDC_CLIENT_SECRET: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    const pending = [...(answers ?? [])];
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      if (answers !== undefined && out.endsWith(": ") && pending.length > 0) child.stdin.write(`${pending.shift()}\n`);
    });
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    if (answers === undefined) child.stdin.end();
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

async function readSetup(dir: string) {
  const sections = await readWranglerToml(join(dir, "wrangler.toml"));
  if (sections === undefined) throw new Error(`no wrangler.toml in ${dir}`);
  return { facts: wranglerFacts(sections), secrets: await readDotenv(join(dir, ".dev.vars")), toml: await readFile(join(dir, "wrangler.toml"), "utf8") };
}

/** A scratch copy of the repository's wrangler.toml: the tests never touch the real one. */
async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "kontur-gate-setup-"));
  await copyFile(join(repoRoot, "wrangler.toml"), join(dir, "wrangler.toml"));
  return dir;
}

const dirs: string[] = [];
async function newDir(): Promise<string> {
  const dir = await scratch();
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const FLAGS = [
  "--yes",
  "--no-run",
  "--issuer",
  "test",
  "--client-id",
  "my-site",
  "--client-secret",
  "api-key-from-integrator",
  "--host",
  "app.example.ru",
  "--host",
  "reports.example.ru",
  "--origin-url",
  "https://origin.example.ru",
  "--public-paths",
  "/static/*, /favicon.ico",
  "--api-paths",
  "/api/*",
];

describe("npm run setup, non-interactive (every answer as a flag, for CI)", () => {
  it("writes wrangler.toml (vars, KV binding, routes) and .dev.vars (secrets), and prints the redirect URIs and steps", async () => {
    const dir = await newDir();
    const run = await setup(["--dir", dir, ...FLAGS]);
    expect(run.code, run.out).toBe(0);
    const { facts, secrets, toml } = await readSetup(dir);
    expect(facts.vars).toEqual({
      OIDC_ISSUER: "https://identity.testkontur.ru",
      OIDC_CLIENT_ID: "my-site",
      ORIGIN_URL: "https://origin.example.ru",
      PUBLIC_PATHS: "/static/*, /favicon.ico",
      API_PATHS: "/api/*",
    });
    expect(facts.routes).toEqual([
      { pattern: "app.example.ru/*", zone: "example.ru" },
      { pattern: "reports.example.ru/*", zone: "example.ru" },
    ]);
    expect(facts.kvId).toBe("00000000000000000000000000000000");
    expect(facts.observability).toBe(true);
    // What the Worker needs is kept from the repository's file.
    expect(toml).toMatch(/^main = "src\/index.ts"$/m);
    expect(toml).toMatch(/^compatibility_flags = \["nodejs_als"\]$/m);
    // No secret in wrangler.toml; all three in .dev.vars, which only its owner can read.
    expect(toml).not.toContain("api-key-from-integrator");
    expect(toml).not.toMatch(/^\s*(OIDC_CLIENT_SECRET|SESSION_SECRETS|ASSERTION_SIGNING_KEY)\s*=/m);
    expect(secrets.OIDC_CLIENT_SECRET).toBe("api-key-from-integrator");
    expect(Buffer.from(secrets.SESSION_SECRETS!, "base64url")).toHaveLength(32);
    expect(JSON.parse(secrets.ASSERTION_SIGNING_KEY!)).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", kid: expect.any(String), d: expect.any(String) });
    expect((await stat(join(dir, ".dev.vars"))).mode & 0o777).toBe(0o600);

    expect(run.out).toContain("redirect URI            https://app.example.ru/_auth/callback");
    expect(run.out).toContain("redirect URI            https://reports.example.ru/_auth/callback");
    expect(run.out).toContain("npx wrangler kv namespace create SESSIONS");
    expect(run.out).toContain("npx wrangler deploy --secrets-file .dev.vars");
    expect(run.out).toContain("The settings pass `npm run check` offline");
    expect(run.out).not.toContain("api-key-from-integrator");
    expect(run.out).not.toContain(secrets.SESSION_SECRETS);
  });

  it("re-running keeps the secrets and the answers it is not given", async () => {
    const dir = await newDir();
    expect((await setup(["--dir", dir, ...FLAGS])).code).toBe(0);
    const first = await readSetup(dir);
    const again = await setup(["--dir", dir, "--yes", "--no-run", "--public-paths", "/assets/*"]);
    expect(again.code, again.out).toBe(0);
    const second = await readSetup(dir);
    expect(second.secrets).toEqual(first.secrets);
    expect(second.facts.vars).toEqual({ ...first.facts.vars, PUBLIC_PATHS: "/assets/*" });
    expect(second.facts.routes).toEqual(first.facts.routes);
    expect(again.out).toContain("kept SESSION_SECRETS; kept ASSERTION_SIGNING_KEY");
  });

  it("keeps what it does not manage: other vars, other bindings and tables, the KV id", async () => {
    const dir = await newDir();
    expect((await setup(["--dir", dir, ...FLAGS, "--kv-id", "0123456789abcdef0123456789abcdef"])).code).toBe(0);
    const toml = await readFile(join(dir, "wrangler.toml"), "utf8");
    await writeFile(
      join(dir, "wrangler.toml"),
      toml.replace("[vars]\n", '[vars]\nALLOWED_EMAIL_DOMAINS = "example.ru"\n') + '\n[[kv_namespaces]]\nbinding = "OTHER"\nid = "ffff"\n\n[env.staging]\nname = "gate-staging"\n',
    );
    expect((await setup(["--dir", dir, "--yes", "--no-run"])).code).toBe(0);
    const { facts, toml: after } = await readSetup(dir);
    expect(facts.vars.ALLOWED_EMAIL_DOMAINS).toBe("example.ru");
    expect(facts.kvId).toBe("0123456789abcdef0123456789abcdef");
    expect(after).toContain('[[kv_namespaces]]\nbinding = "OTHER"\nid = "ffff"');
    expect(after).toContain('[env.staging]\nname = "gate-staging"');
    expect(after.match(/binding = "SESSIONS"/g)).toHaveLength(1);
  });

  it("--rotate follows the rotation procedures: a new session key first, the old one kept; a new assertion key, the old public key still published; --prune-keys drops the old ones", async () => {
    const dir = await newDir();
    expect((await setup(["--dir", dir, ...FLAGS])).code).toBe(0);
    const before = (await readSetup(dir)).secrets;
    const rotated = await setup(["--dir", dir, "--yes", "--no-run", "--rotate"]);
    expect(rotated.code, rotated.out).toBe(0);
    const after = (await readSetup(dir)).secrets;
    const keys = after.SESSION_SECRETS!.split(",");
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(before.SESSION_SECRETS);
    expect(keys[0]).not.toBe(before.SESSION_SECRETS);
    const oldKey = JSON.parse(before.ASSERTION_SIGNING_KEY!) as Record<string, string>;
    expect(JSON.parse(after.ASSERTION_SIGNING_KEY!).kid).not.toBe(oldKey.kid);
    expect(after.OIDC_CLIENT_SECRET).toBe(before.OIDC_CLIENT_SECRET);
    expect(rotated.out).toContain("rotated SESSION_SECRETS");
    // The old public key stays published (a var: public only) while origins may still see its assertions.
    const { d, ...oldPublic } = oldKey;
    expect(d).toEqual(expect.any(String));
    const { facts } = await readSetup(dir);
    expect(JSON.parse(facts.vars.ASSERTION_PREVIOUS_PUBLIC_KEY!)).toEqual({ keys: [oldPublic] });

    const pruned = await setup(["--dir", dir, "--yes", "--no-run", "--prune-keys"]);
    expect(pruned.code, pruned.out).toBe(0);
    const afterPrune = await readSetup(dir);
    expect(afterPrune.secrets.SESSION_SECRETS).toBe(keys[0]);
    expect(afterPrune.facts.vars.ASSERTION_PREVIOUS_PUBLIC_KEY).toBeUndefined();
  });

  it("a setting the gate would refuse makes setup fail, naming it", async () => {
    const dir = await newDir();
    const run = await setup(["--dir", dir, ...FLAGS, "--public-paths", "static/*"]);
    expect(run.code).toBe(1);
    expect(run.out).toContain('PUBLIC_PATHS: pattern "static/*" must start with /');
  });
});

describe("npm run setup, interactive", () => {
  it("asks each question in turn, with the current value as the default", async () => {
    const dir = await newDir();
    // issuer, client id, secret, hostnames, zone (Enter = the guess), origin, public paths, API paths
    const run = await setup(["--dir", dir, "--no-run"], ["production", "typed-client", "typed-secret", "gate.example.com", "", "none", "none", "/api/*"]);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("Cloudflare zone of these hostnames [example.com]: ");
    const { facts, secrets } = await readSetup(dir);
    expect(facts.vars).toEqual({ OIDC_ISSUER: "https://identity.kontur.ru", OIDC_CLIENT_ID: "typed-client", API_PATHS: "/api/*" });
    expect(facts.routes).toEqual([{ pattern: "gate.example.com/*", zone: "example.com" }]);
    expect(secrets.OIDC_CLIENT_SECRET).toBe("typed-secret");

    // Second run: pressing Enter everywhere keeps everything.
    const again = await setup(["--dir", dir, "--no-run"], ["", "", "", "", "", "", "", ""]);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain("Client id from Контур.Интегратор [typed-client]: ");
    expect(again.out).toContain("[keep the current one]");
    expect(again.out).not.toContain("typed-secret");
    expect((await readSetup(dir)).secrets).toEqual(secrets);
  });
});

describe("npm run setup runs the wrangler steps only when wrangler is logged in", () => {
  /** A stand-in for the wrangler CLI that records each call; `loggedIn` decides what whoami says. */
  async function fakeWrangler(dir: string, loggedIn: boolean): Promise<{ command: string; calls: () => Promise<string[][]> }> {
    const script = join(dir, "fake-wrangler.mjs");
    const record = join(dir, "calls.jsonl");
    await writeFile(
      script,
      `import { appendFileSync, readFileSync } from "node:fs";
const args = process.argv.slice(2);
appendFileSync(${JSON.stringify(record)}, JSON.stringify(args) + "\\n");
if (args[0] === "whoami") { console.log(${JSON.stringify(loggedIn ? "You are logged in with an OAuth Token, associated with the email ops@example.ru." : "You are not authenticated. Please run `wrangler login`.")}); process.exit(${loggedIn ? 0 : 1}); }
if (args[0] === "kv") { console.log('[[kv_namespaces]]\\nbinding = "SESSIONS"\\nid = "5f3c0ffee5f3c0ffee5f3c0ffee5f3c0"'); process.exit(0); }
if (args[0] === "deploy") { const file = args[args.indexOf("--secrets-file") + 1]; const text = readFileSync(file, "utf8"); if (!/^SESSION_SECRETS=/m.test(text)) process.exit(3); console.log("Deployed"); process.exit(0); }
process.exit(2);
`,
    );
    return {
      command: `${process.execPath} ${script}`,
      calls: async () =>
        (await readFile(record, "utf8").catch(() => ""))
          .split("\n")
          .filter(Boolean)
          .map((line) => JSON.parse(line) as string[]),
    };
  }

  it("logged in: creates the KV namespace, writes its id, deploys with the secrets", async () => {
    const dir = await newDir();
    const wrangler = await fakeWrangler(dir, true);
    const run = await setup(["--dir", dir, ...FLAGS.filter((flag) => flag !== "--no-run"), "--wrangler", wrangler.command]);
    expect(run.code, run.out).toBe(0);
    expect(await wrangler.calls()).toEqual([["whoami"], ["kv", "namespace", "create", "SESSIONS"], ["deploy", "--secrets-file", ".dev.vars"]]);
    expect((await readSetup(dir)).facts.kvId).toBe("5f3c0ffee5f3c0ffee5f3c0ffee5f3c0");
  });

  it("not logged in: only prints the steps", async () => {
    const dir = await newDir();
    const wrangler = await fakeWrangler(dir, false);
    const run = await setup(["--dir", dir, ...FLAGS.filter((flag) => flag !== "--no-run"), "--wrangler", wrangler.command]);
    expect(run.code, run.out).toBe(0);
    expect(await wrangler.calls()).toEqual([["whoami"]]);
    expect(run.out).toContain("wrangler is not logged in: run the steps above yourself.");
  });
});

describe("what setup writes is a working gate", () => {
  let provider: Awaited<ReturnType<typeof startProvider>>;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  beforeAll(async () => {
    provider = await startProvider({ clients: [] });
  });
  afterAll(async () => {
    await origin?.close();
    await provider?.close();
  });

  it("a gate started with setup's wrangler.toml vars and .dev.vars signs a visitor in against the provider", async () => {
    const dir = await newDir();
    const port = await freePort();
    const gateUrl = `http://127.0.0.1:${port}`;
    origin = await startOrigin({ gateUrl });
    await provider.addClient({ client_id: "from-setup", client_secret: "secret-from-setup-0123456789", redirect_uris: [`${gateUrl}/_auth/callback`] });
    const run = await setup([
      "--dir", dir, "--yes", "--no-run",
      "--issuer", provider.issuer,
      "--client-id", "from-setup",
      "--client-secret", "secret-from-setup-0123456789",
      "--host", "site.example",
      "--origin-url", origin.url,
    ]);
    expect(run.code, run.out).toBe(0);
    const { facts, secrets } = await readSetup(dir);
    expect(facts.vars.OIDC_ALLOW_HTTP).toBe("true"); // a loopback development issuer
    const gate = await startGate({ ...facts.vars, ...secrets }, { port });
    try {
      const client = new HttpClient();
      const first = await client.get(`${gate.url}/hello`, NAVIGATE);
      expect(first.status).toBe(302);
      const callback = await client.get(await loginThroughProvider(first.headers.get("location")!, {}), NAVIGATE);
      expect(callback.status).toBe(302);
      const page = await client.get(`${gate.url}/hello`, NAVIGATE);
      expect(page.status).toBe(200);
      expect(origin.requests.at(-1)?.headers["x-forwarded-email"]).toBe("demo@example.kontur.ru");
    } finally {
      await gate.close();
    }
  });
});
