import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { HttpClient } from "../helpers/http.ts";
import { CLIENT_ID, NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { setsSession } from "../helpers/session-cookie.ts";

function cookieNames(response: Response): string[] {
  return response.headers.getSetCookie().map((cookie) => cookie.split("=", 1)[0]!);
}

/**
 * Both shapes of the provider: IdentityServer's (the default: the profile only from userinfo) and
 * the friendlier one whose id_token carries the claims too.
 */
const SHAPES = [
  { shape: "IdentityServer's (profile from userinfo)", claimsInIdToken: false },
  { shape: "friendly (profile in the id_token too)", claimsInIdToken: true },
];

describe.each(SHAPES)("login with the provider in the $shape shape: an unauthenticated visitor is sent to the provider", ({ claimsInIdToken }) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ provider: { claimsInIdToken } });
  });
  afterAll(() => stack.close());

  it("a navigation to a protected page gets one 302 to the authorization endpoint with state, nonce and PKCE", async () => {
    const client = new HttpClient();
    const response = await client.get(`${stack.gate.url}/reports?year=2026`, NAVIGATE);
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get("location")!);
    expect(`${location.origin}${location.pathname}`).toBe(`${stack.provider.issuer}/connect/authorize`);
    const params = Object.fromEntries(location.searchParams);
    expect(params).toMatchObject({
      client_id: CLIENT_ID,
      response_type: "code",
      redirect_uri: `${stack.gate.url}/_auth/callback`,
      scope: "openid profile email phone offline_access",
      code_challenge_method: "S256",
    });
    expect(params.state!.length).toBeGreaterThanOrEqual(32);
    expect(params.nonce!.length).toBeGreaterThanOrEqual(32);
    expect(params.code_challenge!.length).toBe(43);
    expect(cookieNames(response)).toEqual([expect.stringMatching(/^kg_login_/)]);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(stack.originRequests()).toEqual([]);
  });

  it("the pending login cookie reveals neither state, nonce nor verifier", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/`, NAVIGATE);
    const location = new URL(response.headers.get("location")!);
    const cookie = response.headers.getSetCookie()[0]!;
    for (const name of ["state", "nonce"]) expect(cookie).not.toContain(location.searchParams.get(name));
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
  });

  it("the whole flow lands on the page first asked for, signed in, and the origin sees who it is", async () => {
    const { client, callback } = await stack.signIn("/reports?year=2026");
    expect(callback.status).toBe(302);
    expect(callback.headers.get("location")).toBe("/reports?year=2026");
    expect(setsSession(callback)).toBe(true);
    // The pending login is spent.
    expect(callback.headers.getSetCookie().find((c) => c.startsWith("kg_login_"))).toMatch(/Max-Age=0/);
    expect(stack.originRequests()).toEqual([]);

    const page = await client.get(`${stack.gate.url}/reports?year=2026`, NAVIGATE);
    expect(page.status).toBe(200);
    const [seen] = stack.originRequests("/reports");
    expect(seen!.headers["x-forwarded-user"]).toEqual(expect.any(String));
    expect(seen!.headers["x-forwarded-email"]).toBe("demo@example.kontur.ru");
    expect(decodeURIComponent(seen!.headers["x-forwarded-name"] as string)).toBe("Иванов Иван Иванович");
  });

  it("GET /_auth/login?rd= starts a login explicitly and returns to rd", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=${encodeURIComponent("/inbox?folder=2")}`, NAVIGATE);
    expect(start.status).toBe(302);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    const callback = await client.get(callbackUrl, NAVIGATE);
    expect(callback.headers.get("location")).toBe("/inbox?folder=2");
  });

  it("a hostile rd ends on the site", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=${encodeURIComponent("//evil.example/x")}`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    const callback = await client.get(callbackUrl, NAVIGATE);
    expect(callback.headers.get("location")).toBe("/");
  });

  it("logins started in two tabs both complete", async () => {
    const client = new HttpClient();
    const tab1 = await client.get(`${stack.gate.url}/one`, NAVIGATE);
    const tab2 = await client.get(`${stack.gate.url}/two`, NAVIGATE);
    const back2 = await loginThroughProvider(tab2.headers.get("location")!, {});
    const back1 = await loginThroughProvider(tab1.headers.get("location")!, {});
    const done2 = await client.get(back2, NAVIGATE);
    const done1 = await client.get(back1, NAVIGATE);
    expect([done1.status, done1.headers.get("location")]).toEqual([302, "/one"]);
    expect([done2.status, done2.headers.get("location")]).toEqual([302, "/two"]);
  });
});

describe("login works with PKCE on and off and with both client authentication methods", () => {
  const cases: { name: string; vars: Record<string, string>; provider: { pkce: "optional" | "required" | "reject" }; clientAuth: "client_secret_post" | "client_secret_basic"; pkce: boolean }[] = [
    { name: "PKCE auto (advertised) + client_secret_post", vars: {}, provider: { pkce: "optional" }, clientAuth: "client_secret_post", pkce: true },
    { name: "PKCE on + a provider that requires it", vars: { OIDC_PKCE: "on" }, provider: { pkce: "required" }, clientAuth: "client_secret_post", pkce: true },
    { name: "PKCE auto + an old IdentityServer that rejects it", vars: {}, provider: { pkce: "reject" }, clientAuth: "client_secret_post", pkce: false },
    { name: "PKCE off + client_secret_basic", vars: { OIDC_PKCE: "off" }, provider: { pkce: "optional" }, clientAuth: "client_secret_basic", pkce: false },
    { name: "PKCE auto + client_secret_basic", vars: {}, provider: { pkce: "optional" }, clientAuth: "client_secret_basic", pkce: true },
  ];

  it.each(cases)("$name", async ({ vars, provider, clientAuth, pkce }) => {
    const stack = await startStack({ vars, provider, clientAuth });
    try {
      const { client, callback, authorizeUrl } = await stack.signIn("/pkce");
      expect(authorizeUrl.searchParams.has("code_challenge")).toBe(pkce);
      expect(callback.status).toBe(302);
      const page = await client.get(`${stack.gate.url}/pkce`, NAVIGATE);
      expect(page.status).toBe(200);
      expect(stack.originRequests("/pkce")[0]!.headers["x-forwarded-email"]).toBe("demo@example.kontur.ru");
      expect(stack.provider.stats.tokenRequests.authorization_code).toBe(1);
    } finally {
      await stack.close();
    }
  });
});

describe("callback failures: a clean page, no session, nothing forwarded", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  function expectRefused(response: Response, status: number) {
    expect(response.status).toBe(status);
    expect(setsSession(response)).toBe(false);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(stack.originRequests()).toEqual([]);
  }

  it("the user declines at the provider (access_denied): a friendly page with a try-again link", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/private`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, { deny: true });
    expect(new URL(callbackUrl).searchParams.get("error")).toBe("access_denied");
    const response = await client.get(callbackUrl, { ...NAVIGATE, "accept-language": "en" });
    expectRefused(response, 403);
    const page = await response.text();
    expect(page).toContain("Sign-in cancelled");
    expect(page).toContain('href="/_auth/login?rd=%2Fprivate"');
  });

  it("a callback with a forged state and no pending login is refused with 400", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/callback?code=abc&state=${"x".repeat(43)}`, NAVIGATE);
    expectRefused(response, 400);
    expect(await response.text()).toContain("Вход не завершён");
  });

  it("a callback opened in another browser (login CSRF: the attacker's code in the victim's browser) is refused", async () => {
    const attacker = new HttpClient();
    const start = await attacker.get(`${stack.gate.url}/`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, { login: "petrov", password: "petrov" });
    const victim = new HttpClient();
    expectRefused(await victim.get(callbackUrl, NAVIGATE), 400);
  });

  it("a code replayed with the same pending-login cookie is refused by the provider", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/replay`, NAVIGATE);
    const pendingCookie = client.jar.header(new URL(stack.gate.url))!;
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    expect((await client.get(callbackUrl, NAVIGATE)).status).toBe(302);
    const replay = await new HttpClient().get(callbackUrl, { ...NAVIGATE, cookie: pendingCookie });
    expect(replay.status).toBe(401);
    expect(setsSession(replay)).toBe(false);
    expect(stack.originRequests()).toEqual([]);
  });

  it("a callback whose state does not match the pending login's is refused", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/`, NAVIGATE);
    const callbackUrl = new URL(await loginThroughProvider(start.headers.get("location")!, {}));
    callbackUrl.searchParams.set("state", callbackUrl.searchParams.get("state")!.slice(0, 16) + "A".repeat(27));
    expectRefused(await client.get(callbackUrl, NAVIGATE), 400);
  });

  it("a callback with a wrong iss parameter (mix-up attack) is refused", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/`, NAVIGATE);
    const callbackUrl = new URL(await loginThroughProvider(start.headers.get("location")!, {}));
    callbackUrl.searchParams.set("iss", "https://evil.example");
    expectRefused(await client.get(callbackUrl, NAVIGATE), 400);
  });

  it("a callback with duplicated parameters is refused", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/`, NAVIGATE);
    const callbackUrl = new URL(await loginThroughProvider(start.headers.get("location")!, {}));
    callbackUrl.searchParams.append("code", "other");
    expectRefused(await client.get(callbackUrl, NAVIGATE), 400);
  });

  it("a script calling the callback gets JSON, not HTML", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/callback?code=a&state=${"y".repeat(43)}`, { accept: "application/json" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "login_expired", reference: expect.any(String) });
  });

  it("a replayed callback while signed in goes home instead of an error", async () => {
    const { client } = await stack.signIn("/x");
    const response = await client.get(`${stack.gate.url}/_auth/callback?code=a&state=${"z".repeat(43)}`, NAVIGATE);
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/");
  });
});
