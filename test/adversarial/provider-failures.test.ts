/**
 * A provider whose token endpoint, discovery document or refresh answers are wrong, broken, slow or
 * absent: the visitor gets a clean refusal (401 when the provider refused, 503 with Retry-After when
 * it is broken or unreachable), never a session, never a hang, and the origin sees nothing.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateRsaKey, raw, signNone, signWith, type Scenario } from "../fixtures/hostile-provider.mjs";
import {
  attemptLogin,
  expectRefused,
  expectSignedOut,
  NAVIGATE,
  scanForSecrets,
  signIn,
  startHostileStack,
  WatchedClient,
  type HostileStack,
} from "./harness.ts";
import { clearedSession, setsSession } from "../helpers/session-cookie.ts";

scanForSecrets();


/** The gate waits this long for the provider (OIDC_TIMEOUT); hanging cases end after it. */
const TIMEOUT_VARS = { OIDC_TIMEOUT: "2" };

const tokenCases: { name: string; status: number; scenario: Scenario }[] = [
  { name: "400 invalid_grant (a code the provider no longer honours)", status: 401, scenario: { token: () => raw(400, '{"error":"invalid_grant"}', { "content-type": "application/json" }) } },
  { name: "401 invalid_client (the client secret was rotated at the provider)", status: 401, scenario: { token: () => raw(401, '{"error":"invalid_client"}', { "content-type": "application/json" }) } },
  { name: "400 unauthorized_client", status: 401, scenario: { token: () => raw(400, '{"error":"unauthorized_client"}', { "content-type": "application/json" }) } },
  { name: "500 with an OAuth error body", status: 503, scenario: { token: () => raw(500, '{"error":"server_error"}', { "content-type": "application/json" }) } },
  { name: "502 with a proxy's HTML page", status: 503, scenario: { token: () => raw(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", { "content-type": "text/html" }) } },
  { name: "200 with an HTML page instead of JSON", status: 503, scenario: { token: () => raw(200, "<!doctype html><title>Вход</title><form></form>", { "content-type": "text/html" }) } },
  {
    name: "200 with malformed JSON (cut off after the access token)",
    status: 503,
    scenario: { token: (body) => raw(200, `{"access_token":"${String(body.access_token)}","token_type":"Bearer","id_tok`, { "content-type": "application/json" }) },
  },
  { name: "200 with a JSON array", status: 401, scenario: { token: () => raw(200, "[]", { "content-type": "application/json" }) } },
  { name: "200 without an id_token", status: 401, scenario: { token: ({ id_token: _dropped, ...rest }) => rest } },
  { name: "200 without an access_token", status: 401, scenario: { token: ({ access_token: _dropped, ...rest }) => rest } },
  { name: "200 with a token_type the gate does not know (MAC)", status: 401, scenario: { token: (body) => ({ ...body, token_type: "MAC" }) } },
  { name: "200 with expires_in that is not a number", status: 401, scenario: { token: (body) => ({ ...body, expires_in: "forever" }) } },
  { name: "a redirect instead of an answer", status: 401, scenario: { token: () => raw(302, "", { location: "https://evil.example/token" }) } },
  { name: "the connection dropped without an answer", status: 503, scenario: { drop: ["token"] } },
  { name: "no answer at all (hanging): refused once OIDC_TIMEOUT has passed", status: 503, scenario: { hang: ["token"] } },
];

describe("token endpoint: a broken or refusing answer never signs anyone in", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: TIMEOUT_VARS });
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  it.each(tokenCases)("$name → $status, no session, the origin sees nothing", async ({ status, scenario }) => {
    stack.provider.set(scenario);
    const { client, callback } = await attemptLogin(stack);
    expectRefused(stack, callback, status);
    expect(stack.provider.requestsTo("token")).toHaveLength(1);
    if (status === 503) expect(callback.headers.get("retry-after")).toMatch(/^\d+$/);
    stack.provider.reset();
    await expectSignedOut(stack, client);
  });

  it("a slow token endpoint (1 s, within OIDC_TIMEOUT) still signs the visitor in", async () => {
    stack.provider.set({ delayMs: { token: 1000 } });
    const { callback } = await attemptLogin(stack);
    expect(callback.status).toBe(302);
    expect(setsSession(callback)).toBe(true);
  });

  it("rp-id_token-sig-none on the token endpoint of a provider whose discovery also lists `none`", async () => {
    // The gate pins RS256 from that list; an unsigned id_token is still refused.
    const listsNone = await startHostileStack({
      scenario: {
        discovery: (doc) => ({ ...doc, id_token_signing_alg_values_supported: ["none", "RS256"] }),
        sign: (header, claims) => signNone(header, claims),
      },
    });
    try {
      const { client, callback } = await attemptLogin(listsNone);
      expectRefused(listsNone, callback, 401);
      await expectSignedOut(listsNone, client);
    } finally {
      await listsNone.close();
    }
  });
});

const discoveryCases: { name: string; scenario: Scenario }[] = [
  {
    name: "rp-discovery-issuer-not-matching-config / oidcc-client-test-discovery-issuer-mismatch: another issuer",
    scenario: { discovery: (doc) => ({ ...doc, issuer: "https://identity.evil.example" }) },
  },
  { name: "only `none` among the id_token algorithms", scenario: { discovery: (doc) => ({ ...doc, id_token_signing_alg_values_supported: ["none"] }) } },
  { name: "only HS256 among the id_token algorithms", scenario: { discovery: (doc) => ({ ...doc, id_token_signing_alg_values_supported: ["HS256"] }) } },
  { name: "no token endpoint", scenario: { discovery: ({ token_endpoint: _dropped, ...doc }) => doc } },
  { name: "no JWKS", scenario: { discovery: ({ jwks_uri: _dropped, ...doc }) => doc } },
  { name: "a 500", scenario: { discovery: () => raw(500, "Internal Server Error") } },
  { name: "an HTML page", scenario: { discovery: () => raw(200, "<html>maintenance</html>", { "content-type": "text/html" }) } },
  { name: "malformed JSON", scenario: { discovery: () => raw(200, '{"issuer": "http://', { "content-type": "application/json" }) } },
  { name: "no answer at all (hanging)", scenario: { hang: ["discovery"] } },
];

describe("discovery: a provider whose configuration cannot be trusted is not used at all", () => {
  it.each(discoveryCases)("$name → 503 instead of a login redirect; health says 503", async ({ scenario }) => {
    const stack = await startHostileStack({ vars: TIMEOUT_VARS, scenario });
    try {
      const client = new WatchedClient();
      const page = await client.get(`${stack.gate.url}/private`, NAVIGATE);
      expectRefused(stack, page, 503);
      expect(page.headers.get("retry-after")).toMatch(/^\d+$/);
      // No pending login was started for a provider the gate cannot use.
      expect(page.headers.getSetCookie().filter((c) => c.startsWith("kg_login_"))).toEqual([]);
      expect(stack.provider.requestsTo("authorize")).toEqual([]);
      const health = await client.get(`${stack.gate.url}/_auth/health`, { accept: "application/json" });
      expect(health.status).toBe(503);
    } finally {
      await stack.close();
    }
  });
});

describe("refresh: a provider that swaps the user or the issuer on refresh ends the session", () => {
  // Access tokens due at once and a check on every request after a second: each request refreshes.
  const vars = { SESSION_CHECK_INTERVAL: "1", OIDC_SCOPES: "openid profile email offline_access" };
  const shortAccessTokens: Scenario = { token: (body) => ({ ...body, expires_in: 1 }) };

  async function signedInWithRefresh(): Promise<{ stack: HostileStack; client: WatchedClient }> {
    const stack = await startHostileStack({ vars, scenario: shortAccessTokens });
    const client = await signIn(stack);
    expect(stack.provider.issued.refreshTokens).toHaveLength(1);
    stack.reset();
    await sleep(1100);
    return { stack, client };
  }

  const cases: { name: string; scenario: Scenario }[] = [
    { name: "oidcc-client-test-refresh-token-invalid-sub: the refreshed id_token names another user", scenario: { claims: (c) => ({ ...c, sub: "someone-else" }) } },
    { name: "oidcc-client-test-refresh-token-invalid-issuer: the refreshed id_token names another issuer", scenario: { claims: (c) => ({ ...c, iss: "https://identity.evil.example" }) } },
    {
      name: "oidcc-client-test-refresh-token (bad signature): the refreshed id_token is signed with another key",
      scenario: { sign: async (header, claims) => signWith((await generateRsaKey()).privateKey, header, claims) },
    },
    { name: "oidcc-client-test-refresh-token (alg none): the refreshed id_token is unsigned", scenario: { sign: (header, claims) => signNone(header, claims) } },
    { name: "oidcc-client-test-refresh-token (expired): the refreshed id_token has already expired", scenario: { claims: (c) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 3600 }) } },
  ];

  it.each(cases)("$name → the next request goes to login, the origin sees nothing", async ({ scenario }) => {
    const { stack, client } = await signedInWithRefresh();
    try {
      stack.provider.set({ ...shortAccessTokens, ...scenario });
      const page = await client.get(`${stack.gate.url}/private`, NAVIGATE);
      expect(stack.provider.requestsTo("token").map((r) => r.form.grant_type)).toEqual(["refresh_token"]);
      expect(page.status).toBe(302);
      expect(page.headers.get("location")).toMatch(new RegExp(`^${stack.provider.issuer}/connect/authorize\\?`));
      expect(clearedSession(page)).toBe(true);
      expect(stack.origin.requests).toEqual([]);
    } finally {
      await stack.close();
    }
  });

  it("control: an honest refresh keeps the session and the origin sees the same user", async () => {
    const { stack, client } = await signedInWithRefresh();
    try {
      stack.provider.set(shortAccessTokens);
      const page = await client.get(`${stack.gate.url}/private`, NAVIGATE);
      expect(page.status).toBe(200);
      expect(stack.provider.requestsTo("token").map((r) => r.form.grant_type)).toEqual(["refresh_token"]);
      expect(stack.origin.requests.map((r) => r.headers["x-forwarded-user"])).toEqual(["hostile-user-1"]);
    } finally {
      await stack.close();
    }
  });
});
