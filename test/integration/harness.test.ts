import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type RequestListener, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateSecrets, startGate } from "../helpers/gate.ts";
import { until } from "../helpers/gate-log.ts";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../../tools/lib/listen.mjs";

// Checks the test helpers themselves, so a failing product test never means a broken harness.

const servers: Server[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const server of servers) server.close();
  for (const cleanup of cleanups) await cleanup();
});

/** A loopback server reachable as http://<host>:<port>. */
async function serve(host: "127.0.0.1" | "localhost", handler: RequestListener): Promise<string> {
  const port = await freePort();
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return `http://${host}:${port}`;
}

describe("HttpClient", () => {
  it("keeps cookies per host and path, deletes on Max-Age=0, and walks redirects", async () => {
    const cookiesSeen = new Map<string, string | undefined>();
    const provider = await serve("localhost", (req, res) => {
      cookiesSeen.set(`provider ${req.url}`, req.headers.cookie);
      res.writeHead(302, { location: `${gate}/back`, "set-cookie": "op=1; Path=/" }).end();
    });
    const gate = await serve("127.0.0.1", (req, res) => {
      cookiesSeen.set(`gate ${req.method} ${req.url}`, req.headers.cookie);
      if (req.url === "/login") {
        res.writeHead(303, { location: `${provider}/authorize`, "set-cookie": ["tx=a; Path=/_auth", "old=1; Path=/"] });
      } else if (req.url === "/back") {
        res.writeHead(302, { location: "/done", "set-cookie": ["old=; Path=/; Max-Age=0", "s=b; Path=/; Max-Age=60"] });
      } else res.writeHead(200);
      res.end(req.url);
    });

    const client = new HttpClient();
    const hops = await client.follow(`${gate}/login`, { init: { method: "POST", body: "x=1" } });
    expect(hops.map((h) => `${h.method} ${h.status} ${new URL(h.url).pathname}`)).toEqual([
      "POST 303 /login",
      "GET 302 /authorize",
      "GET 302 /back",
      "GET 200 /done",
    ]);
    expect(await hops.at(-1)?.response.text()).toBe("/done");
    expect(cookiesSeen.get("provider /authorize")).toBeUndefined(); // other host
    expect(cookiesSeen.get("gate GET /back")).toBe("old=1"); // tx is only for /_auth
    expect(cookiesSeen.get("gate GET /done")).toBe("s=b"); // old was deleted
    expect(client.jar.header(new URL(`${gate}/_auth/callback`))).toBe("tx=a; s=b");
    expect(client.jar.get("localhost", "op")).toBe("1");
    await expect(client.follow(`${gate}/login`, { maxHops: 1 })).rejects.toThrow(/more than 1 redirects/);
  });
});

describe("startGate", () => {
  it("serves a Worker on the given port, shares KV with the test and captures its logs", async () => {
    // A stand-in Worker, so this checks the helper whatever state src/ is in.
    const dir = await mkdtemp(join(tmpdir(), "gate-harness-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const scriptPath = join(dir, "worker.mjs");
    await writeFile(
      scriptPath,
      `export default { async fetch(request, env) {
        console.log("path", new URL(request.url).pathname, { n: 1 });
        console.error("secret length", env.OIDC_CLIENT_SECRET.length);
        await env.SESSIONS.put("seen", "yes");
        return Response.json({ seeded: await env.SESSIONS.get("seed"), issuer: env.OIDC_ISSUER });
      } };`,
    );
    const secrets = await generateSecrets();
    expect(JSON.parse(secrets.ASSERTION_SIGNING_KEY)).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
    expect(Buffer.from(secrets.SESSION_SECRETS, "base64url")).toHaveLength(32);

    const port = await freePort();
    const gate = await startGate(
      { OIDC_ISSUER: "http://localhost:1", OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET },
      { port, scriptPath },
    );
    cleanups.push(() => gate.close());
    expect(gate.url).toBe(`http://127.0.0.1:${port}`);

    await gate.kv.put("seed", "from-test");
    const response = await fetch(`${gate.url}/hello`);
    expect(await response.json()).toEqual({ seeded: "from-test", issuer: "http://localhost:1" });
    expect(await gate.kv.get("seen")).toBe("yes");
    // workerd hands log lines over asynchronously.
    await until(() => gate.logs.some((line) => line.startsWith("error: secret length")));
    expect(gate.logs).toContain("log: path /hello { n: 1 }");
    expect(gate.logs).toContain(`error: secret length ${secrets.OIDC_CLIENT_SECRET.length}`);
    expect(gate.logs.join("\n")).not.toContain(secrets.OIDC_CLIENT_SECRET);
  });
});
