// The troubleshooting list of docs/operations.md, symptom by symptom: each misconfiguration is made
// on purpose and the test checks that what the operator sees is what that list says.
import { afterEach, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { decisions, until, type Line } from "../helpers/gate-log.ts";
import { HttpClient } from "../helpers/http.ts";
import { CLIENT_ID, NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

const stacks: Stack[] = [];
async function stack(options: Parameters<typeof startStack>[0]): Promise<Stack> {
  const started = await startStack(options);
  stacks.push(started);
  return started;
}
afterEach(async () => {
  for (const started of stacks.splice(0)) await started.close();
});

/** The gate's JSON lines with this event, once workerd has handed them over. */
async function logged(s: Stack, event: string): Promise<Line[]> {
  const lines = () => decisions(s.gate.logs).filter((line) => line.event === event);
  await until(() => lines().length > 0);
  return lines();
}

/** A visitor walks to the provider's form and logs in; returns the gate's answer to the callback. */
async function loginAndCallback(s: Stack): Promise<Response> {
  const client = new HttpClient();
  const first = await client.get(`${s.gate.url}/`, { ...NAVIGATE, "accept-language": "en" });
  const callbackUrl = await loginThroughProvider(first.headers.get("location")!, {});
  return client.get(callbackUrl, { ...NAVIGATE, "accept-language": "en" });
}

describe("docs/operations.md troubleshooting: each symptom as documented", () => {
  it("1. redirect URI not registered: the provider shows its own error page and never comes back", async () => {
    const s = await stack({});
    await s.provider.addClient({ client_id: CLIENT_ID, client_secret: s.secrets.OIDC_CLIENT_SECRET, redirect_uris: ["https://other.example/_auth/callback"] });
    const first = await new HttpClient().get(`${s.gate.url}/`, NAVIGATE);
    const atProvider = await fetch(first.headers.get("location")!, { redirect: "manual" });
    expect(atProvider.status).toBe(400);
    expect(atProvider.headers.get("location")).toBeNull();
    expect(await atProvider.text()).toContain("redirect_uri");
  });

  it("2. wrong client secret: the login works, the callback is 'Sign-in failed' (401), logged with invalid_client", async () => {
    const s = await stack({ vars: { OIDC_CLIENT_SECRET: "not-the-api-key-0123456789" } });
    const callback = await loginAndCallback(s);
    expect(callback.status).toBe(401);
    expect(await callback.text()).toContain("Sign-in failed");
    const [line] = await logged(s, "login_failed");
    expect(line).toMatchObject({ code: "login_rejected" });
    expect(String(line!.reason)).toContain("invalid_client");
  });

  it("3. wrong client id: the provider's error page about the client, before any login form", async () => {
    const s = await stack({ vars: { OIDC_CLIENT_ID: "no-such-client" } });
    const first = await new HttpClient().get(`${s.gate.url}/`, NAVIGATE);
    const atProvider = await fetch(first.headers.get("location")!, { redirect: "manual" });
    expect(atProvider.status).toBe(400);
    expect(await atProvider.text()).toMatch(/client/i);
  });

  it("4. offline_access not requested or not granted: login_ok says refresh_token false", async () => {
    const s = await stack({ vars: { OIDC_SCOPES: "openid profile email" } });
    expect((await loginAndCallback(s)).status).toBe(302);
    expect(await logged(s, "login_ok")).toEqual([expect.objectContaining({ refresh_token: false })]);
  });

  it("5. PKCE rejected by the provider: every callback fails with login_rejected / invalid_grant", async () => {
    const s = await stack({ vars: { OIDC_PKCE: "on" }, provider: { pkce: "reject" } });
    const callback = await loginAndCallback(s);
    expect(callback.status).toBe(401);
    const [line] = await logged(s, "login_failed");
    expect(line).toMatchObject({ code: "login_rejected" });
    expect(String(line!.reason)).toContain("invalid_grant");
    // …and OIDC_PKCE=auto (the default) does not send it to such a provider at all.
    const fixed = await stack({ provider: { pkce: "reject" } });
    expect((await loginAndCallback(fixed)).status).toBe(302);
  });

  it("7. plain http on a real hostname: 'HTTPS required' (400, insecure_transport)", async () => {
    const s = await stack({});
    const response = await new HttpClient().get(`${s.gate.url}/`, { ...NAVIGATE, host: "site.example", "accept-language": "en" });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain("HTTPS required");
    expect(await logged(s, "request_refused")).toEqual([expect.objectContaining({ code: "insecure_transport" })]);
  });

  it("8. the callback without its pending-login cookie (another hostname or browser): 'Sign-in not completed'", async () => {
    const s = await stack({});
    const first = await new HttpClient().get(`${s.gate.url}/`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(first.headers.get("location")!, {});
    const elsewhere = await new HttpClient().get(callbackUrl, { ...NAVIGATE, "accept-language": "en" });
    expect(elsewhere.status).toBe(400);
    expect(await elsewhere.text()).toContain("Sign-in not completed");
    expect(await logged(s, "login_failed")).toEqual([expect.objectContaining({ code: "login_expired" })]);
  });
});
