/**
 * `npm run sessions` against a running local gate: a real `wrangler dev` (the repo's wrangler.toml)
 * with its KV persisted in a temporary directory, the dev provider and the demo origin. The command
 * runs as an operator would run it, through wrangler's own KV commands on that directory.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { DEMO_USERS, loginThroughProvider, startProvider } from "../../tools/dev-provider/provider.mjs";
import { freePort } from "../../tools/lib/listen.mjs";
import { repoRoot } from "../../tools/lib/wrangler-files.mjs";
import { generateSecrets } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE } from "../helpers/stack.ts";

const run = promisify(execFile);
const CLIENT_ID = "kontur-gate-sessions-test";
const QUIET = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };
const userOf = (login: string) => DEMO_USERS.find((user: { login: string }) => user.login === login)!.claims as { sub: string; email: string };

let dir: string;
let wrangler: ChildProcess | undefined;
let gateUrl: string;
let provider: Awaited<ReturnType<typeof startProvider>>;
let origin: Awaited<ReturnType<typeof startOrigin>>;
const wranglerOutput: string[] = [];

/** `npm run sessions -- …args` on the test's state directory; returns what it printed. */
async function sessions(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ["tools/sessions/sessions.mjs", ...args, "--persist-to", join(dir, "state")], {
    cwd: repoRoot,
    env: { ...process.env, ...QUIET },
    timeout: 90_000,
    killSignal: "SIGKILL",
  });
  return stdout;
}

async function signIn(login: string): Promise<HttpClient> {
  const client = new HttpClient();
  const first = await client.get(`${gateUrl}/`, NAVIGATE);
  expect(first.status).toBe(302);
  const callback = await loginThroughProvider(new URL(first.headers.get("location")!), { login, password: login });
  expect((await client.get(callback, NAVIGATE)).status).toBe(302);
  return client;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kontur-gate-ops-sessions-"));
  const port = await freePort();
  gateUrl = `http://127.0.0.1:${port}`;
  const secrets = await generateSecrets();
  provider = await startProvider({
    clients: [{ client_id: CLIENT_ID, client_secret: secrets.OIDC_CLIENT_SECRET, redirect_uris: [`${gateUrl}/_auth/callback`] }],
  });
  origin = await startOrigin({ gateUrl });
  const envFile = join(dir, "gate.env");
  await writeFile(
    envFile,
    `OIDC_CLIENT_SECRET='${secrets.OIDC_CLIENT_SECRET}'\nSESSION_SECRETS='${secrets.SESSION_SECRETS}'\nASSERTION_SIGNING_KEY='${secrets.ASSERTION_SIGNING_KEY}'\n`,
  );
  const vars = {
    OIDC_ISSUER: provider.issuer,
    OIDC_ALLOW_HTTP: "true",
    OIDC_CLIENT_ID: CLIENT_ID,
    ORIGIN_URL: origin.url,
    SESSION_CHECK_INTERVAL: "1",
  };
  const args = [
    join(repoRoot, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(await freePort()),
    "--persist-to", join(dir, "state"),
    "--show-interactive-dev-session=false",
    "--env-file", envFile,
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  // Its own process group: wrangler and its workerd are stopped together in afterAll.
  wrangler = spawn(process.execPath, args, { cwd: repoRoot, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...QUIET } });
  wrangler.stdout!.setEncoding("utf8").on("data", (chunk: string) => wranglerOutput.push(chunk));
  wrangler.stderr!.setEncoding("utf8").on("data", (chunk: string) => wranglerOutput.push(chunk));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (wrangler.exitCode !== null) throw new Error(`wrangler dev exited:\n${wranglerOutput.join("")}`);
    const up = await fetch(`${gateUrl}/_auth/health`).then((r) => r.status, () => 0);
    if (up === 200) break;
    if (Date.now() > deadline) throw new Error(`wrangler dev did not answer within 90 s:\n${wranglerOutput.join("")}`);
    await sleep(300);
  }
}, 120_000);

afterAll(async () => {
  if (wrangler?.pid !== undefined && wrangler.exitCode === null) {
    const exited = new Promise((resolve) => wrangler!.once("exit", resolve));
    process.kill(-wrangler.pid, "SIGTERM");
    await Promise.race([exited, sleep(5000)]);
    if (wrangler.exitCode === null) process.kill(-wrangler.pid, "SIGKILL");
  }
  await origin?.close();
  await provider?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("npm run sessions against wrangler dev's local state", () => {
  it("lists sessions by sub, by e-mail and all, without tokens; revokes by e-mail, then all", async () => {
    const demo = await signIn("demo");
    const petrov = await signIn("petrov");
    const host = new URL(gateUrl).host;

    const bySub = await sessions("list", "--sub", userOf("demo").sub);
    expect(bySub).toContain("1 session(s)");
    expect(bySub).toContain(host);
    expect(bySub).toMatch(/^user +session +host +started +last check +expires$/m);
    const byEmail = await sessions("list", "--email", userOf("petrov").email.toUpperCase());
    expect(byEmail).toContain("1 session(s)");
    const all = await sessions("list", "--all");
    expect(all).toContain("2 session(s)");
    // Never a token or a record: only hashes, an id prefix, host and times.
    expect(all).not.toMatch(/eyJ|1\.[A-Za-z0-9_-]{20,}/);

    expect(await sessions("revoke", "--email", userOf("demo").email)).toContain("Ended 1 session(s)");
    await sleep(1100);
    expect((await demo.get(`${gateUrl}/after`, NAVIGATE)).status).toBe(302);
    expect((await petrov.get(`${gateUrl}/after`, NAVIGATE)).status).toBe(200);

    expect(await sessions("revoke", "--all")).toContain("Ended 1 session(s)");
    await sleep(1100);
    expect((await petrov.get(`${gateUrl}/after-all`, NAVIGATE)).status).toBe(302);
    // Each wrangler start takes seconds (~12 s on a busy two-core machine): seven of them here.
  }, 300_000);

  it("refuses a command without exactly one selector", async () => {
    const refused = await sessions("revoke").then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(refused?.code).toBe(2);
    expect(refused?.stderr).toContain("exactly one of --email, --sub, --all");
  });
});
