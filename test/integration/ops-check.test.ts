import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startProvider } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, type TestSecrets } from "../helpers/gate.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { repoRoot } from "../../tools/lib/wrangler-files.mjs";

interface Run {
  code: number;
  out: string;
}

/** Runs `npm run check` (node tools/check/check.mjs) with no settings from the environment. */
function check(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(OIDC_|SESSION_|ASSERTION_|ORIGIN_URL)/.test(name)));
    const child = spawn(process.execPath, [join(repoRoot, "tools/check/check.mjs"), ...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A deployment folder: wrangler.toml with `vars` (plus `extra` TOML) and .dev.vars with `secrets`. */
async function deployment(vars: Record<string, string>, secrets: Record<string, string>, extra = ""): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "kontur-gate-check-"));
  dirs.push(dir);
  const toml = [
    'name = "kontur-gate"',
    'main = "src/index.ts"',
    'routes = [{ pattern = "app.example.ru/*", zone_name = "example.ru" }]',
    "[[kv_namespaces]]",
    'binding = "SESSIONS"',
    'id = "0123456789abcdef0123456789abcdef"',
    "[vars]",
    ...Object.entries(vars).map(([name, value]) => `${name} = ${JSON.stringify(value)}`),
    "[observability]",
    "enabled = true",
    extra,
  ].join("\n");
  await writeFile(join(dir, "wrangler.toml"), toml);
  await writeFile(join(dir, ".dev.vars"), Object.entries(secrets).map(([name, value]) => `${name}='${value}'`).join("\n"));
  return dir;
}

describe("npm run check, offline: every problem at once, by setting name", () => {
  it("lists each wrong setting, warns about unknown names, echoes no secret, exits 1", async () => {
    const dir = await deployment(
      { OIDC_ISSUER: "http://identity.example", SESSION_TTL: "forever", OIDC_SCOPE: "openid", OIDC_CLIENT_SECRET: "leaked-in-vars" },
      { SESSION_SECRETS: "too-short-secret", ASSERTION_SIGNING_KEY: "{}" },
    );
    const run = await check(["--dir", dir, "--offline"]);
    expect(run.code).toBe(1);
    for (const expected of [
      "FAIL  OIDC_ISSUER: uses http://; use https://, or set OIDC_ALLOW_HTTP=true",
      "FAIL  SESSION_TTL: must be whole seconds",
      "FAIL  OIDC_CLIENT_ID: is required",
      "FAIL  SESSION_SECRETS: key #1 decodes to",
      "FAIL  ASSERTION_SIGNING_KEY: must be an EC P-256",
      "FAIL  OIDC_CLIENT_SECRET: is a secret but is in wrangler.toml [vars]",
      "warn  OIDC_SCOPE: is not a setting of kontur-gate and is ignored (did you mean OIDC_SCOPES?)",
    ]) {
      expect(run.out).toContain(expected);
    }
    expect(run.out).toContain("problems to fix.");
    expect(run.out).not.toContain("too-short-secret");
    expect(run.out).not.toContain("leaked-in-vars");
  });

  it("a complete configuration passes offline (exit 0) and lists the redirect URI to register", async () => {
    const secrets = await generateSecrets();
    const dir = await deployment(
      { OIDC_ISSUER: "https://identity.testkontur.ru", OIDC_CLIENT_ID: "my-site" },
      { OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET, SESSION_SECRETS: secrets.SESSION_SECRETS, ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY },
    );
    const run = await check(["--dir", dir, "--offline"]);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("ok    settings: every setting is valid");
    expect(run.out).toContain("https://app.example.ru/_auth/callback");
  });

  it("warns about the placeholder KV id and a missing [observability]", async () => {
    const secrets = await generateSecrets();
    const dir = await deployment(
      { OIDC_CLIENT_ID: "my-site" },
      { OIDC_CLIENT_SECRET: "x", SESSION_SECRETS: secrets.SESSION_SECRETS, ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY },
    );
    const toml = join(dir, "wrangler.toml");
    const { readFile } = await import("node:fs/promises");
    await writeFile(toml, (await readFile(toml, "utf8")).replace("0123456789abcdef0123456789abcdef", "00000000000000000000000000000000").replace("[observability]\nenabled = true", ""));
    const run = await check(["--dir", dir, "--offline"]);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("warn  SESSIONS: the KV namespace id is the placeholder");
    expect(run.out).toContain("warn  wrangler.toml: [observability] enabled = true is missing");
  });
});

describe("npm run check against the development provider: what it supports against the settings", () => {
  let secrets: TestSecrets;
  let provider: Awaited<ReturnType<typeof startProvider>>;
  let oldProvider: Awaited<ReturnType<typeof startProvider>>;
  const client = (secret: string) => ({ client_id: "my-site", client_secret: secret, redirect_uris: ["https://app.example.ru/_auth/callback"] });

  beforeAll(async () => {
    secrets = await generateSecrets();
    provider = await startProvider({ clients: [client(secrets.OIDC_CLIENT_SECRET)] });
    // An old IdentityServer: no PKCE advertised, no end-session endpoint.
    oldProvider = await startProvider({ clients: [client(secrets.OIDC_CLIENT_SECRET)], pkce: "reject", endSession: false });
  });
  afterAll(async () => {
    await provider?.close();
    await oldProvider?.close();
  });

  async function configured(issuer: string, vars: Record<string, string> = {}, secret = secrets.OIDC_CLIENT_SECRET): Promise<string> {
    return deployment(
      { OIDC_ISSUER: issuer, OIDC_ALLOW_HTTP: "true", OIDC_CLIENT_ID: "my-site", ...vars },
      { OIDC_CLIENT_SECRET: secret, SESSION_SECRETS: secrets.SESSION_SECRETS, ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY },
    );
  }

  it("reports discovery, PKCE, end-session, client authentication, scopes and accepted credentials", async () => {
    const run = await check(["--dir", await configured(provider.issuer, { LOGOUT_AT_PROVIDER: "true", OIDC_CLIENT_AUTH: "client_secret_basic" })]);
    expect(run.code, run.out).toBe(0);
    for (const expected of [
      `ok    provider: discovery at ${provider.issuer}/ is valid`,
      "id_token RS256",
      "ok    PKCE: S256 advertised; OIDC_PKCE=auto → sent",
      `ok    end-session: ${provider.issuer}/connect/endsession (used: LOGOUT_AT_PROVIDER=true)`,
      "ok    client authentication: client_secret_basic supported",
      "ok    scopes: openid profile email all advertised",
      "ok    client credentials: accepted by the token endpoint (client_secret_basic)",
    ]) {
      expect(run.out).toContain(expected);
    }
  });

  it("a wrong client secret is a problem (invalid_client), and the secret is not echoed", async () => {
    const run = await check(["--dir", await configured(provider.issuer, {}, "wrong-secret-value-0123456789")]);
    expect(run.code).toBe(1);
    expect(run.out).toContain("FAIL  OIDC_CLIENT_SECRET: the provider refused the client credentials (invalid_client)");
    expect(run.out).not.toContain("wrong-secret-value-0123456789");
  });

  it("an old provider: LOGOUT_AT_PROVIDER without end-session is a problem; OIDC_PKCE=on without S256 a warning", async () => {
    const run = await check(["--dir", await configured(oldProvider.issuer, { LOGOUT_AT_PROVIDER: "true", OIDC_PKCE: "on" })]);
    expect(run.code).toBe(1);
    expect(run.out).toContain("FAIL  LOGOUT_AT_PROVIDER: is true but the provider advertises no end_session_endpoint");
    expect(run.out).toContain("warn  OIDC_PKCE: is \"on\" but the provider does not advertise S256");
    const auto = await check(["--dir", await configured(oldProvider.issuer)]);
    expect(auto.code, auto.out).toBe(0);
    expect(auto.out).toContain("ok    PKCE: not advertised; OIDC_PKCE=auto → not sent");
  });

  it("a product scope the provider does not advertise is a warning to check the grant", async () => {
    const run = await check(["--dir", await configured(provider.issuer, { OIDC_SCOPES: "openid profile extern.api" })]);
    expect(run.code, run.out).toBe(0);
    expect(run.out).toContain("warn  OIDC_SCOPES: extern.api not advertised; make sure Контур.Интегратор granted them");
  });

  it("with only the secrets missing, the provider is still checked", async () => {
    const dir = await deployment({ OIDC_ISSUER: provider.issuer, OIDC_ALLOW_HTTP: "true", OIDC_CLIENT_ID: "my-site" }, {});
    const run = await check(["--dir", dir]);
    expect(run.code).toBe(1);
    expect(run.out).toContain("FAIL  SESSION_SECRETS: is required");
    expect(run.out).toContain("ok    PKCE: S256 advertised");
    expect(run.out).not.toContain("client credentials");
  });

  it("an unreachable provider is a problem naming OIDC_ISSUER; --json gives the same result to scripts", async () => {
    const run = await check(["--dir", await configured(`http://localhost:${await freePort()}`), "--json"]);
    expect(run.code).toBe(1);
    const result = JSON.parse(run.out) as { provider: string; problems: string[] };
    expect(result.provider).toBe("unreachable");
    expect(result.problems).toEqual([expect.stringMatching(/^OIDC_ISSUER: the provider's discovery at http:\/\/localhost:\d+\/ failed/)]);
  });
});
