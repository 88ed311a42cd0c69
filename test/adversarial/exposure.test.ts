/**
 * What a signed-in attacker could try next: claims crafted to slip through the allow-lists
 * (oauth2-proxy GHSA-c5c4-8r6x-56w3: `a@evil.com@company.com`), and the gate's own endpoints as a
 * source of tokens or keys (Pomerium GHSA-rrqr-7w59-637v: the user-info page held the tokens).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NAVIGATE, scanForSecrets, signIn, startHostileStack, WatchedClient, type HostileStack } from "./harness.ts";

scanForSecrets();

describe("allow-lists: crafted e-mail addresses and subjects do not pass", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack({
      vars: { ALLOWED_EMAIL_DOMAINS: "kontur.ru", ALLOWED_EMAILS: "boss@example.ru", ALLOWED_SUBJECTS: "subject-allowed" },
    });
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  /** Signs in as a user with these claims and opens a protected page. */
  async function pageAs(claims: Record<string, unknown>): Promise<Response> {
    stack.provider.set({ claims: (c) => ({ ...c, email: undefined, ...claims }) });
    const client = await signIn(stack, new WatchedClient(), "/");
    stack.reset();
    return client.get(`${stack.gate.url}/private`, NAVIGATE);
  }

  const refused: { name: string; claims: Record<string, unknown> }[] = [
    { name: "two @ signs, the allowed domain last (a@evil.example@kontur.ru)", claims: { email: "a@evil.example@kontur.ru" } },
    { name: "the allowed domain as a suffix of another (a@evil-kontur.ru)", claims: { email: "a@evil-kontur.ru" } },
    { name: "the allowed domain as a prefix of another (a@kontur.ru.evil.example)", claims: { email: "a@kontur.ru.evil.example" } },
    { name: "a subdomain of the allowed domain (exact domains only)", claims: { email: "a@mail.kontur.ru" } },
    { name: "the allowed domain with a trailing space", claims: { email: "a@kontur.ru " } },
    { name: "an allowed address as a prefix (boss@example.ru.evil.example)", claims: { email: "boss@example.ru.evil.example" } },
    { name: "an allowed address in the name claim, no e-mail (a phone-only account)", claims: { name: "boss@example.ru" } },
    { name: "an allowed subject with a trailing space", claims: { sub: "subject-allowed " } },
    { name: "an allowed subject in another case", claims: { sub: "SUBJECT-ALLOWED" } },
  ];

  it.each(refused)("$name → 403, the origin sees nothing", async ({ claims }) => {
    const page = await pageAs(claims);
    expect(page.status).toBe(403);
    expect(stack.origin.requests).toEqual([]);
  });

  it.each([
    { name: "an address in the allowed domain, in capitals", claims: { email: "IVANOV@KONTUR.RU" } },
    { name: "the allowed address", claims: { email: "boss@example.ru" } },
    { name: "the allowed subject", claims: { sub: "subject-allowed" } },
  ])("control: $name gets through", async ({ claims }) => {
    const page = await pageAs(claims);
    expect(page.status).toBe(200);
    expect(stack.origin.requests).toHaveLength(1);
  });
});

describe("the gate's endpoints hand out no token and no key", () => {
  let stack: HostileStack;
  let client: WatchedClient;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: { PASS_ACCESS_TOKEN: "true", OIDC_SCOPES: "openid profile email offline_access" } });
    client = await signIn(stack);
  });
  afterAll(() => stack.close());

  it("/_auth/me names the user but holds no access, refresh or id token (even with PASS_ACCESS_TOKEN)", async () => {
    const response = await client.get(`${stack.gate.url}/_auth/me`, { accept: "application/json" });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toMatchObject({ sub: "hostile-user-1" });
    for (const token of [...stack.provider.issued.accessTokens, ...stack.provider.issued.refreshTokens, ...stack.provider.issued.idTokens]) {
      expect(text).not.toContain(token);
    }
    expect(text).not.toMatch(/eyJ|"at"|token/i);
  });

  it("/_auth/jwks.json publishes public keys only", async () => {
    const response = await client.get(`${stack.gate.url}/_auth/jwks.json`, { accept: "application/json" });
    const { keys } = (await response.json()) as { keys: Record<string, unknown>[] };
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) for (const part of ["d", "p", "q", "dp", "dq", "qi", "k"]) expect(key).not.toHaveProperty(part);
  });

  it("/_auth/health says ok and nothing else", async () => {
    const response = await client.get(`${stack.gate.url}/_auth/health`, { accept: "application/json" });
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("the sealed session cookie shows no provider token, not even the access token PASS_ACCESS_TOKEN puts in it", async () => {
    const cookie = client.jar.get("127.0.0.1", "kg_session")!;
    for (const token of [...stack.provider.issued.refreshTokens, ...stack.provider.issued.idTokens, ...stack.provider.issued.accessTokens]) {
      expect(cookie).not.toContain(token);
    }
    // A JWT is header.payload.signature; ciphertext alone can contain "eyJ" by chance (1 in ~260k per position).
    expect(cookie).not.toMatch(/eyJ[\w-]+\.eyJ/);
  });
});
