/**
 * The whole product on loopback for one test file: the dev provider (a real oidc-provider process
 * on `localhost`), the recording origin and the gate in workerd (on `127.0.0.1`), wired together
 * with fresh secrets, plus helpers that sign a visitor in over plain HTTP.
 */
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { loginThroughProvider, startProvider } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, loopbackGateVars, startGate, type Gate, type GateOptions, type TestSecrets } from "./gate.ts";
import { HttpClient } from "./http.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { NAVIGATE } from "../../tools/lib/browser.mjs";

export const CLIENT_ID = "kontur-gate-test";

/** What a browser sends when the user opens a page from the address bar or a link. */
export { NAVIGATE };

export interface StackOptions {
  /** Extra or overriding gate settings. */
  vars?: Record<string, string>;
  /** Options for the dev provider (pkce, accessTokenTTL, endSession, …). */
  provider?: Parameters<typeof startProvider>[0];
  clientAuth?: "client_secret_post" | "client_secret_basic";
  /** Register the gate's back-channel logout URL at the provider (its id_tokens then carry `sid`). */
  backchannel?: boolean;
  /** Options for the gate (shared KV persistence, an outbound proxy). */
  gate?: Omit<GateOptions, "port">;
}

type Provider = Awaited<ReturnType<typeof startProvider>>;
type Origin = Awaited<ReturnType<typeof startOrigin>>;

export interface Stack {
  gate: Gate;
  provider: Provider;
  origin: Origin;
  secrets: TestSecrets;
  vars: Record<string, string>;
  /** The origin's recorded requests whose path starts with `prefix` (all by default). */
  originRequests(prefix?: string): Origin["requests"];
  /**
   * Signs a new visitor in: a navigation to `path` → provider login form (demo/demo) → callback.
   * Returns the client (with the session cookie) and the callback's response.
   */
  signIn(path?: string, login?: string): Promise<{ client: HttpClient; callback: Response; authorizeUrl: URL }>;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const port = await freePort();
  const gateUrl = `http://127.0.0.1:${port}`;
  const secrets = await generateSecrets();
  const clientAuth = options.clientAuth ?? "client_secret_post";
  const provider = await startProvider({
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: secrets.OIDC_CLIENT_SECRET,
        redirect_uris: [`${gateUrl}/_auth/callback`],
        post_logout_redirect_uris: [`${gateUrl}/_auth/signed-out`],
        token_endpoint_auth_method: clientAuth,
        ...(options.backchannel === true ? { backchannel_logout_uri: `${gateUrl}/_auth/backchannel-logout` } : {}),
      },
    ],
    ...options.provider,
  });
  const origin = await startOrigin({ gateUrl });
  const vars = loopbackGateVars(
    { issuer: provider.issuer, clientId: CLIENT_ID, secrets, originUrl: origin.url },
    { OIDC_CLIENT_AUTH: clientAuth, OIDC_SCOPES: "openid profile email phone offline_access", ...options.vars },
  );
  const gate = await startGate(vars, { ...options.gate, port });

  async function signIn(path = "/", login = "demo") {
    const client = new HttpClient();
    const first = await client.get(`${gate.url}${path}`, NAVIGATE);
    if (first.status !== 302) throw new Error(`expected a login redirect for ${path}, got ${first.status}: ${await first.text()}`);
    const authorizeUrl = new URL(first.headers.get("location")!);
    const callbackUrl = await loginThroughProvider(authorizeUrl, { login, password: login });
    const callback = await client.get(callbackUrl, NAVIGATE);
    return { client, callback, authorizeUrl };
  }

  return {
    gate,
    provider,
    origin,
    secrets,
    vars,
    originRequests: (prefix = "/") => origin.requests.filter((request: { url: string }) => request.url.startsWith(prefix)),
    signIn,
    async close() {
      await gate.close();
      await origin.close();
      await provider.close();
    },
  };
}
