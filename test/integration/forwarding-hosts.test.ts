import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { loginThroughProvider, startProvider } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, loopbackGateVars, startGate, type Gate } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { CLIENT_ID, NAVIGATE } from "../helpers/stack.ts";
import { setsSession } from "../helpers/session-cookie.ts";

type Seen = { url: string; headers: Record<string, string | string[] | undefined> };

/**
 * One deployment in front of two hostnames. On loopback, `127.0.0.1:<port>` and
 * `localhost:<port>` reach the same gate, as two Worker routes would in production: to a browser
 * (and the test client's cookie jar) they are different hosts.
 */
describe("multiple hostnames: one gate, a cookie and a callback per host", () => {
  let gate: Gate;
  let provider: Awaited<ReturnType<typeof startProvider>>;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let hosts: { ip: string; name: string };

  beforeAll(async () => {
    const port = await freePort();
    hosts = { ip: `http://127.0.0.1:${port}`, name: `http://localhost:${port}` };
    const secrets = await generateSecrets();
    provider = await startProvider({
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: secrets.OIDC_CLIENT_SECRET,
          // What the README tells site owners to register: every host's own callback.
          redirect_uris: [`${hosts.ip}/_auth/callback`, `${hosts.name}/_auth/callback`],
          post_logout_redirect_uris: [`${hosts.ip}/_auth/signed-out`, `${hosts.name}/_auth/signed-out`],
          token_endpoint_auth_method: "client_secret_post",
        },
      ],
    });
    origin = await startOrigin({ gateUrl: hosts.ip });
    gate = await startGate(loopbackGateVars({ issuer: provider.issuer, clientId: CLIENT_ID, secrets, originUrl: origin.url }), { port });
  });
  afterAll(async () => {
    await gate.close();
    await origin.close();
    await provider.close();
  });

  /** A full login on `host` in `client`; returns the authorization request's redirect_uri. */
  async function signIn(client: HttpClient, host: string, path: string): Promise<{ redirectUri: string; setCookies: string[] }> {
    const start = await client.get(`${host}${path}`, NAVIGATE);
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get("location")!);
    const callbackUrl = await loginThroughProvider(authorize, {});
    expect(new URL(callbackUrl).origin).toBe(host);
    const callback = await client.get(callbackUrl, NAVIGATE);
    expect([callback.status, callback.headers.get("location")]).toEqual([302, path]);
    return { redirectUri: authorize.searchParams.get("redirect_uri")!, setCookies: [...start.headers.getSetCookie(), ...callback.headers.getSetCookie()] };
  }

  it.each(["ip", "name"] as const)("on the %s host the redirect_uri, the cookies and the assertion all follow the host", async (which) => {
    const host = hosts[which];
    const client = new HttpClient();
    const { redirectUri, setCookies } = await signIn(client, host, `/on-${which}`);
    expect(redirectUri).toBe(`${host}/_auth/callback`);
    // Host-only cookies: no Domain attribute, so a browser never sends them to another host.
    expect(setCookies.length).toBeGreaterThanOrEqual(3);
    for (const cookie of setCookies) expect(cookie).not.toMatch(/;\s*domain=/i);
    const page = await client.get(`${host}/on-${which}`, NAVIGATE);
    expect(page.status).toBe(200);
    const seen = (origin.requests as Seen[]).filter((r) => r.url === `/on-${which}`).at(-1)!;
    expect(seen.headers["x-forwarded-host"]).toBe(new URL(host).host);
    expect(decodeJwt(seen.headers["x-auth-assertion"] as string).iss).toBe(host);
  });

  it("a session on one host does not sign the browser in on the other", async () => {
    const browser = new HttpClient();
    await signIn(browser, hosts.ip, "/first");
    expect((await browser.get(`${hosts.ip}/first`, NAVIGATE)).status).toBe(200);
    const other = await browser.get(`${hosts.name}/first`, NAVIGATE);
    expect(other.status).toBe(302);
    expect(new URL(other.headers.get("location")!).searchParams.get("redirect_uri")).toBe(`${hosts.name}/_auth/callback`);
  });

  it("logging out on one host leaves the browser signed in on the other", async () => {
    const browser = new HttpClient();
    await signIn(browser, hosts.ip, "/both");
    await signIn(browser, hosts.name, "/both");
    const logout = await browser.request(`${hosts.ip}/_auth/logout`, { method: "POST", headers: { ...NAVIGATE, "sec-fetch-site": "same-origin" } });
    expect(logout.status).toBe(303);
    expect((await browser.get(`${hosts.ip}/both`, NAVIGATE)).status).toBe(302);
    expect((await browser.get(`${hosts.name}/both`, NAVIGATE)).status).toBe(200);
  });

  it("a login started on one host cannot be completed on the other", async () => {
    const browser = new HttpClient();
    const start = await browser.get(`${hosts.ip}/cross`, NAVIGATE);
    const callbackUrl = new URL(await loginThroughProvider(start.headers.get("location")!, {}));
    const elsewhere = new URL(`${callbackUrl.pathname}${callbackUrl.search}`, hosts.name);
    const response = await browser.get(elsewhere, NAVIGATE);
    expect(response.status).toBe(400);
    expect(setsSession(response)).toBe(false);
    expect((origin.requests as Seen[]).filter((r) => r.url === "/cross")).toEqual([]);
  });
});
