/**
 * The Workers `npm run bench` measures must be what the benchmark says they are: a pass-through that
 * forwards, a peer (@hono/oidc-auth) that really protects the origin, and a gate build whose KV
 * counter sees the hot path. Behaviour only; the benchmark itself reports the timings.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserLogin, rawRequest } from "../../tools/bench/http.mjs";
import { bundleWorkers } from "../../tools/bench/workers.mjs";
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { DEMO_USERS, startProvider } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, loopbackGateVars, randomSecret, startGate, type Gate } from "../helpers/gate.ts";
import { freePort } from "../../tools/lib/listen.mjs";

type Bundles = Awaited<ReturnType<typeof bundleWorkers>>;
type Provider = Awaited<ReturnType<typeof startProvider>>;
type Origin = Awaited<ReturnType<typeof startOrigin>>;
interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

const CLIENT_ID = "bench-smoke";
const DEMO_SUB = DEMO_USERS[0]!.claims.sub;

describe("the benchmark's Workers", () => {
  let bundles: Bundles;
  let provider: Provider;
  let origin: Origin;
  let clientSecret: string;
  const gates: Gate[] = [];
  const redirectUris: string[] = [];

  /** Starts one of the bench Workers in Miniflare, its redirect URI registered at the provider. */
  async function start(script: string, vars: (url: string) => Record<string, string>, callbackPath: string): Promise<Gate> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    redirectUris.push(`${url}${callbackPath}`);
    await provider.addClient({ client_id: CLIENT_ID, client_secret: clientSecret, redirect_uris: redirectUris });
    const gate = await startGate(vars(url), { port, scriptPath: script });
    gates.push(gate);
    return gate;
  }

  beforeAll(async () => {
    bundles = await bundleWorkers();
    clientSecret = randomSecret(32);
    provider = await startProvider({ clients: [] });
    origin = await startOrigin({});
  });
  afterAll(async () => {
    for (const gate of gates) await gate.close();
    await origin?.close();
    await provider?.close();
    await bundles?.close();
  });

  it("the bare pass-through forwards method, path, query, headers and body, and returns the answer as is", async () => {
    const passthrough = await start(bundles.scripts.passthrough!, () => ({ ORIGIN_URL: origin.url }), "/unused");
    const response = await rawRequest(`${passthrough.url}/echo/a?x=1`, {
      method: "POST",
      headers: { "content-type": "text/plain", "x-site-header": "kept" },
      body: "привет",
    });
    expect(response.status).toBe(200);
    const echo = (await response.json()) as Echo;
    expect(echo).toMatchObject({ method: "POST", url: "/echo/a?x=1", body: "привет" });
    expect(echo.headers["x-site-header"]).toBe("kept");
    expect((await rawRequest(`${passthrough.url}/status/418`)).status).toBe(418);
  });

  it("the contract-alone Worker sends the headers it is given instead of the cookie, bypasses the cache and marks the answer private", async () => {
    const added = { "x-forwarded-user": "someone", "x-auth-assertion": "a.b.c" };
    const contract = await start(bundles.scripts.contract!, () => ({ ORIGIN_URL: origin.url, CONTRACT_HEADERS: JSON.stringify(added) }), "/unused");
    const response = await rawRequest(`${contract.url}/echo/a?x=1`, { headers: { cookie: "kg_session=sealed", "x-site-header": "kept" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("private");
    const echo = (await response.json()) as Echo;
    expect(echo).toMatchObject({ method: "GET", url: "/echo/a?x=1" });
    expect(echo.headers).toMatchObject({ ...added, "x-site-header": "kept", "cache-control": "no-cache" });
    expect(echo.headers.cookie).toBeUndefined();
  });

  it("the peer sends a visitor without a session to the provider, and forwards a signed-in one with the user", async () => {
    const peer = await start(
      bundles.scripts.peer!,
      () => ({
        OIDC_ISSUER: provider.issuer,
        OIDC_CLIENT_ID: CLIENT_ID,
        OIDC_CLIENT_SECRET: clientSecret,
        OIDC_AUTH_SECRET: randomSecret(32),
        OIDC_SCOPES: "openid profile email offline_access",
        ORIGIN_URL: origin.url,
      }),
      "/callback",
    );
    const seenBefore = origin.requests.length;
    const anonymous = await rawRequest(`${peer.url}/echo`);
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get("location")).toMatch(new RegExp(`^${provider.issuer}/connect/authorize\\?`));
    expect(origin.requests.length).toBe(seenBefore);

    const login = await browserLogin(`${peer.url}/echo`);
    const response = await rawRequest(`${peer.url}/echo`, { headers: { cookie: login.cookie } });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Echo).headers["x-forwarded-user"]).toBe(DEMO_SUB);
  });

  it("the gate build counts KV calls: a login writes its record and its user-index entry, signed-in requests between checks touch none", async () => {
    const secrets = await generateSecrets();
    const gate = await start(
      bundles.scripts.gate!,
      () => loopbackGateVars({ issuer: provider.issuer, clientId: CLIENT_ID, secrets: { ...secrets, OIDC_CLIENT_SECRET: clientSecret }, originUrl: origin.url }),
      "/_auth/callback",
    );
    const stats = async () => (await (await rawRequest(`${gate.url}/__bench/stats`)).json()) as { kv: Record<string, number>; requests: number };

    const login = await browserLogin(`${gate.url}/echo`);
    // The sealed record, and the index entry that lets "sign out everywhere" find it (this
    // provider's id_tokens carry no `sid`, so no provider-sid entry).
    expect((await stats()).kv.put).toBe(2);
    expect((await rawRequest(`${gate.url}/__bench/reset`, { method: "POST" })).status).toBe(204);
    for (let i = 0; i < 5; i += 1) {
      const response = await rawRequest(`${gate.url}/echo`, { headers: { cookie: login.cookie } });
      expect(((await response.json()) as Echo).headers["x-forwarded-user"]).toBe(DEMO_SUB);
    }
    expect(await stats()).toMatchObject({ requests: 5, kv: { get: 0, put: 0, delete: 0, list: 0 } });
  });
});
