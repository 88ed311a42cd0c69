/**
 * Step-up (`max_age` on a route) against the development provider, which honours `max_age` like
 * Kontur, and against one that ignores it: the gate must then refuse, not loop or let the old
 * sign-in through.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { importJWK, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { CookieJar } from "../../tools/lib/cookie-jar.mjs";
import { logged } from "../helpers/gate-log.ts";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

/** Seconds: short, so the test waits only a little longer for a sign-in to become too old. */
const MAX_AGE = 2;
const ROUTES = JSON.stringify([{ name: "admin", path: "/admin/*", max_age: MAX_AGE }]);

/** A browser with its own provider session (single sign-on), signed in at the gate through `path`. */
async function browserSignedIn(stack: Stack, path: string) {
  const client = new HttpClient();
  const providerJar = new CookieJar();
  const first = await client.get(`${stack.gate.url}${path}`, NAVIGATE);
  expect(first.status).toBe(302);
  const authorizeUrl = new URL(first.headers.get("location")!);
  const callback = await client.get(await loginThroughProvider(authorizeUrl, { cookieJar: providerJar }), NAVIGATE);
  return { client, providerJar, authorizeUrl, callback };
}

async function assertionClaims(stack: Stack, path: string) {
  const seen = stack.originRequests(path).at(-1);
  const key = await importJWK(stack.secrets.assertionPublicJwk, "ES256");
  return (await jwtVerify(seen!.headers["x-auth-assertion"] as string, key, { issuer: stack.gate.url, audience: stack.origin.url })).payload;
}

describe("step-up with a provider that honours max_age", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { ROUTES } });
  });
  afterAll(() => stack?.close());

  it("a fresh login asks for max_age already, and the route is open right after it", async () => {
    const { client, authorizeUrl, callback } = await browserSignedIn(stack, "/admin/first");
    expect(authorizeUrl.searchParams.get("max_age")).toBe(String(MAX_AGE));
    expect(callback.status).toBe(302);
    expect((await client.get(`${stack.gate.url}/admin/first`, NAVIGATE)).status).toBe(200);
    const claims = await assertionClaims(stack, "/admin/first");
    expect(claims).toMatchObject({ route: "admin" });
    expect(typeof claims.auth_time).toBe("number");
  });

  it("an older sign-in goes back through the provider, which asks for the password again; other paths are not affected", async () => {
    const { client, providerJar } = await browserSignedIn(stack, "/");
    const before = stack.provider.stats.logins;
    await sleep((MAX_AGE + 1) * 1000);
    // Off the route nothing changes.
    expect((await client.get(`${stack.gate.url}/elsewhere`, NAVIGATE)).status).toBe(200);
    // A script is told where to send the user; that login asks for max_age too.
    const script = await client.get(`${stack.gate.url}/admin/data`, { accept: "application/json", "sec-fetch-mode": "cors" });
    expect(script.status).toBe(401);
    const { login_url: loginUrl } = (await script.json()) as { login_url: string };
    expect(loginUrl).toBe("/_auth/login?rd=%2Fadmin%2Fdata");
    const viaLoginUrl = await client.get(`${stack.gate.url}${loginUrl}`, NAVIGATE);
    expect(new URL(viaLoginUrl.headers.get("location")!).searchParams.get("max_age")).toBe(String(MAX_AGE));

    const stepUp = await client.get(`${stack.gate.url}/admin/page`, NAVIGATE);
    expect(stepUp.status).toBe(302);
    const authorizeUrl = new URL(stepUp.headers.get("location")!);
    expect(authorizeUrl.searchParams.get("max_age")).toBe(String(MAX_AGE));
    expect(stack.originRequests("/admin/page")).toEqual([]);
    // The provider session is older than max_age: the login form again, not single sign-on.
    const callback = await client.get(await loginThroughProvider(authorizeUrl, { cookieJar: providerJar }), NAVIGATE);
    expect(stack.provider.stats.logins).toBe(before + 1);
    expect(callback.status).toBe(302);
    expect(callback.headers.get("location")).toBe("/admin/page");
    expect((await client.get(`${stack.gate.url}/admin/page`, NAVIGATE)).status).toBe(200);
    const claims = await assertionClaims(stack, "/admin/page");
    expect(Math.floor(Date.now() / 1000) - (claims.auth_time as number)).toBeLessThanOrEqual(MAX_AGE);
  });
});

describe("step-up with a provider that ignores max_age", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { ROUTES }, provider: { ignoreMaxAge: true } });
  });
  afterAll(() => stack?.close());

  it("fails closed with a clear page: the old sign-in does not reach the route, and there is no loop", async () => {
    const { client, providerJar } = await browserSignedIn(stack, "/");
    await sleep((MAX_AGE + 1) * 1000);
    const stepUp = await client.get(`${stack.gate.url}/admin/page`, NAVIGATE);
    expect(stepUp.status).toBe(302);
    // Single sign-on at the provider: no form, straight back with the old auth_time.
    const callback = await client.get(await loginThroughProvider(new URL(stepUp.headers.get("location")!), { cookieJar: providerJar }), {
      ...NAVIGATE,
      "accept-language": "en",
    });
    expect(callback.status).toBe(401);
    const page = await callback.text();
    expect(page).toContain("Sign-in not confirmed");
    expect(page).toContain("needs a recent sign-in");
    expect(page).toContain('href="/_auth/login?rd=%2Fadmin%2Fpage"');
    expect(stack.originRequests("/admin")).toEqual([]);
    expect(await logged(stack.gate.logs, (line) => line.code === "step_up_failed")).toBeDefined();
    // The earlier session goes on elsewhere.
    expect((await client.get(`${stack.gate.url}/elsewhere`, NAVIGATE)).status).toBe(200);
  });
});
