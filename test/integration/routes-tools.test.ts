/**
 * The command-line side of ROUTES: `npm run setup -- --add-service NAME` (a secret shown once, only
 * its hash stored) and `npm run check -- --explain URL` (which route decides, and what a user,
 * service or visitor gets), run as a person would run them.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDotenv, repoRoot } from "../../tools/lib/wrangler-files.mjs";


interface Run {
  code: number;
  out: string;
}

function node(script: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, script), ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

const SESSION_KEY = randomBytes(32).toString("base64url");
/** As a site owner writes it in wrangler.toml: a TOML array of tables under [vars]. */
const ROUTES_TOML = `ROUTES = [
  { name = "admin", path = "/admin/*", emails = ["boss@example.ru"], max_age = "15m" },
  { name = "hooks", path = "/hooks/*", methods = ["POST"], access = "api", services = ["ci"] },
  { name = "debug", path = "/debug/*", access = "deny" },
]`;

describe("npm run setup -- --add-service, then npm run check -- --explain", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kontur-gate-routes-"));
    await writeFile(join(dir, ".dev.vars"), `OIDC_CLIENT_SECRET='kept-client-secret'\nSESSION_SECRETS='${SESSION_KEY}'\n`);
    await writeFile(join(dir, "wrangler.toml"), `name = "kontur-gate"\n\n[vars]\nOIDC_CLIENT_ID = "site"\n${ROUTES_TOML}\nALLOWED_EMAIL_DOMAINS = "example.ru"\n`);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("--add-service prints a strong secret once and stores only its SHA-256, keeping the other secrets", async () => {
    const run = await node("tools/setup/setup.mjs", ["--add-service", "ci", "--dir", dir]);
    expect(run.code).toBe(0);
    const secret = /^ {2}([A-Za-z0-9_-]{43})$/m.exec(run.out)?.[1];
    expect(secret).toBeDefined();
    expect(run.out.split(secret!)).toHaveLength(2);
    expect(run.out).toContain("X-Gate-Client-Id: ci");
    const stored = await readDotenv(join(dir, ".dev.vars"));
    expect(stored).toMatchObject({ OIDC_CLIENT_SECRET: "kept-client-secret", SESSION_SECRETS: SESSION_KEY });
    expect(stored.SERVICE_TOKENS).toBe(`ci=${createHash("sha256").update(secret!).digest("base64url")}`);
    expect(await readFile(join(dir, ".dev.vars"), "utf8")).not.toContain(secret);

    // Again: a new secret replaces the old one; another name is added beside it.
    const again = await node("tools/setup/setup.mjs", ["--add-service", "ci", "--dir", dir]);
    expect(again.out).toContain('Replaced the service "ci"');
    await node("tools/setup/setup.mjs", ["--add-service", "deploy-bot", "--dir", dir]);
    const entries = (await readDotenv(join(dir, ".dev.vars"))).SERVICE_TOKENS!.split(",");
    expect(entries.map((entry: string) => entry.split("=")[0])).toEqual(["ci", "deploy-bot"]);
    expect(entries[0]).not.toBe(stored.SERVICE_TOKENS);
    expect((await node("tools/setup/setup.mjs", ["--add-service", "bad name", "--dir", dir])).code).toBe(1);
  });

  it.each([
    [["https://site.example.ru/admin/x", "--email", "boss@example.ru"], 'route 0 "admin"', 'forwarded to https://site.example.ru (the request\'s own URL) as this user, with X-Auth-Assertion (route "admin")', "max_age=900"],
    [["https://site.example.ru/admin/x", "--email", "clerk@example.ru"], 'route 0 "admin"', "refused: 403 forbidden", "the lists do not admit this user"],
    [["https://site.example.ru/hooks/build", "--method", "post", "--service", "ci"], 'route 1 "hooks"', "as service:ci (no cookie)", 'the route lists the service "ci"'],
    [["https://site.example.ru/other", "--service", "ci"], "the global settings (no route matches)", "refused: 401 service_refused", "service tokens are admitted only on routes that list them"],
    [["https://site.example.ru/debug/"], 'route 2 "debug"', "refused: 403 for everyone", "access is deny"],
    [["https://site.example.ru/page", "--sub", "s-1"], "the global settings (no route matches)", "refused: 403 forbidden", "the global lists admit @example.ru"],
  ])("--explain %j", async (args, decidedBy, outcome, reason) => {
    const run = await node("tools/check/check.mjs", ["--dir", dir, "--explain", ...args]);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain(`decided by  ${decidedBy}`);
    expect(run.out).toContain(outcome);
    expect(run.out).toContain(reason);
  });

  it("--explain reads ROUTES written as [[vars.ROUTES]] tables too", async () => {
    const tables = await mkdtemp(join(tmpdir(), "kontur-gate-routes-"));
    try {
      const toml = `name = "kontur-gate"\n\n[vars]\nOIDC_CLIENT_ID = "site"\n\n[[vars.ROUTES]]\nname = "docs"\npath = "/docs/*"\naccess = "public"\n\n[[vars.ROUTES]]\nname = "closed"\naccess = "deny"\n`;
      await writeFile(join(tables, "wrangler.toml"), toml);
      const docs = await node("tools/check/check.mjs", ["--dir", tables, "--explain", "https://site.example.ru/docs/a"]);
      expect(docs.out).toContain('decided by  route 0 "docs"');
      const closed = await node("tools/check/check.mjs", ["--dir", tables, "--explain", "https://site.example.ru/other"]);
      expect(closed.out).toContain('decided by  route 1 "closed"');
    } finally {
      await rm(tables, { recursive: true, force: true });
    }
  });

  it("--explain with bad ROUTES lists the problems and exits 1", async () => {
    const run = await node("tools/check/check.mjs", ["--dir", dir, "--explain", "https://site.example.ru/"], { ROUTES: '[{"path": "admin"}]' });
    expect(run.code).toBe(1);
    expect(run.out).toContain('ROUTES: route 0, "path": pattern "admin" must start with /');
  });
});
