/**
 * `npm run sessions` against a running local gate: a real `wrangler dev` (the repo's wrangler.toml,
 * started as `npm start` starts it) with its KV persisted in a temporary directory, the dev
 * provider and the demo origin. The command runs as an operator would run it, through wrangler's
 * own KV commands on that directory. Each of those is a wrangler start (seconds): the listing and
 * the two kinds of revoke run once each here; how a listing is filtered and shown, and the refusal
 * of a bad command line, are tested without wrangler in ops-sessions-tool.test.ts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { DEMO_USERS, loginThroughProvider, startProvider } from "../../tools/dev-provider/provider.mjs";
import { freePort } from "../../tools/lib/listen.mjs";
import { QUIET_WRANGLER_ENV, wranglerDevArgs } from "../../tools/lib/wrangler-dev.mjs";
import { repoRoot, writeDotenv } from "../../tools/lib/wrangler-files.mjs";
import { listKeys, userHash } from "../../tools/sessions/sessions.mjs";
import { generateSecrets } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE } from "../helpers/stack.ts";

const run = promisify(execFile);
const CLIENT_ID = "kontur-gate-sessions-test";
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
    env: { ...process.env, ...QUIET_WRANGLER_ENV },
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

/**
 * Requests `path` as `client` until the gate refuses its session (a login redirect), or 10 s have
 * passed; the status it got last. A revoked session is refused at its next check, and a check
 * comes once SESSION_CHECK_INTERVAL (1 s here) has passed since the last.
 */
async function untilRefused(client: HttpClient, path: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const response = await client.get(`${gateUrl}${path}`, NAVIGATE);
    if (response.status === 302 || Date.now() > deadline) return response.status;
    await sleep(200);
  }
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
  const { OIDC_CLIENT_SECRET, SESSION_SECRETS, ASSERTION_SIGNING_KEY } = secrets;
  await writeDotenv(envFile, { OIDC_CLIENT_SECRET, SESSION_SECRETS, ASSERTION_SIGNING_KEY }, "The gate's secrets for this test.");
  const vars = {
    OIDC_ISSUER: provider.issuer,
    OIDC_ALLOW_HTTP: "true",
    OIDC_CLIENT_ID: CLIENT_ID,
    ORIGIN_URL: origin.url,
    SESSION_CHECK_INTERVAL: "1",
  };
  // Another wrangler may be running (the default inspector port taken): a free port of its own.
  const args = wranglerDevArgs({ port, persistTo: join(dir, "state"), envFile, vars, inspectorPort: await freePort() });
  // Its own process group: wrangler and its workerd are stopped together in afterAll.
  wrangler = spawn(process.execPath, args, { cwd: repoRoot, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...QUIET_WRANGLER_ENV } });
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
  it("lists every session without tokens; revokes by e-mail (in any case), then all: the gate refuses each at its next check", async () => {
    const [demo, petrov] = await Promise.all([signIn("demo"), signIn("petrov")]);
    const host = new URL(gateUrl).host;

    const all = await sessions("list", "--all");
    expect(all).toMatch(/^user +session +host +started +last check +expires$/m);
    expect(all).toContain("2 session(s)");
    // One row per user, named by the hash the tool computes from a sub (what --sub selects by): the
    // gate indexes each session under that hash.
    for (const login of ["demo", "petrov"]) expect(all).toMatch(new RegExp(`^${userHash(userOf(login).sub)} +\\S{8} +${host.replaceAll(".", "\\.")} `, "m"));
    // Never a token or a record: only hashes, an id prefix, host and times.
    expect(all).not.toMatch(/eyJ|1\.[A-Za-z0-9_-]{20,}/);

    // The address as the operator may type it: the gate indexed it lowercased.
    expect(await sessions("revoke", "--email", userOf("demo").email.toUpperCase())).toContain("Ended 1 session(s)");
    expect(await untilRefused(demo, "/after")).toBe(302);
    // Signed in before three wrangler starts (seconds each): this request is checked against KV too.
    expect((await petrov.get(`${gateUrl}/after`, NAVIGATE)).status).toBe(200);

    expect(await sessions("revoke", "--all")).toContain("Ended 1 session(s)");
    expect(await untilRefused(petrov, "/after-all")).toBe(302);

    // Each revoke wrote its sessions' tombstones through wrangler, expiring as the gate's own do: a
    // check that was refreshing one of them meanwhile undoes its write instead of reviving it.
    const listing = await listKeys({ remote: false, persistTo: join(dir, "state"), cwd: repoRoot });
    const marks = listing.filter((key) => key.name.startsWith("tombstone:"));
    expect(marks).toHaveLength(2);
    for (const mark of marks) {
      expect(mark.expiration).toBeGreaterThan(Date.now() / 1000);
      expect(mark.expiration).toBeLessThanOrEqual(Date.now() / 1000 + 300);
    }
    // Each wrangler start takes seconds (~12 s on a busy two-core machine): six of them here.
  }, 300_000);
});
