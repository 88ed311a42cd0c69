/**
 * The whole gate inside workerd, without a network: `app.request()` on the real Hono app, with an
 * in-process provider (discovery, JWKS, token endpoint with one-time refresh tokens and PKCE,
 * userinfo refusing expired tokens and disabled accounts, as strict as Kontur's) and a recording origin, both answering the gate's `fetch`, and a clock the
 * test moves instead of sleeping. What only a real provider, origin or browser can prove stays in
 * the integration and browser suites.
 */
import { env } from "cloudflare:workers";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey as JoseKey, type JWK } from "jose";
import { vi } from "vitest";
import type { Settings } from "../../src/config";
import { buildApp } from "../../src/edge/app";
import type { Bindings } from "../../src/edge/context";
import { createRuntime } from "../../src/edge/runtime";
import { randomSecret, validSettings } from "./fixtures";
import { NAVIGATE } from "../../tools/lib/browser.mjs";

export const ISSUER = "https://identity.test";
/** Where a login redirect sends the browser: the provider's authorize endpoint. */
export const AUTHORIZE = /^https:\/\/identity\.test\/connect\/authorize\?/;
export const ORIGIN = "https://origin.test";
export const SITE = "https://site.test";
const CLIENT_ID = "site-client";

/** The gate's session cookie on an https site. */
export const SESSION_COOKIE = "__Host-kg_session";

function sessionCookies(response: Response): string[] {
  return response.headers.getAll("set-cookie").filter((cookie: string) => cookie.startsWith(`${SESSION_COOKIE}=`));
}

/** The response issues (or re-issues) a session cookie. */
export const setsSession = (response: Response): boolean => sessionCookies(response).some((cookie) => !/max-age=0/i.test(cookie));

/** The response clears the session cookie. */
export const clearsSession = (response: Response): boolean => sessionCookies(response).some((cookie) => /max-age=0/i.test(cookie));

/** What a browser sends when the user opens a page from the address bar. */
export { NAVIGATE };

export interface Account {
  sub: string;
  claims: Record<string, unknown>;
}

export const IVANOV: Account = {
  sub: "6f1c2a9e-4b7d-4e0a-9c1f-2d3b4a5c6e7f",
  claims: { email: "ivanov@example.ru", email_verified: true, name: "Иванов Иван Иванович" },
};

/** A canned failure the token endpoint answers with instead of doing its job. */
export type TokenFault = { status: number; body: string; contentType?: string } | "network";

/**
 * Bends one of the provider's own JSON answers (discovery, JWKS, a successful token response): the
 * answer rewritten, another Response in its place, or "network" (the connection is lost).
 */
export type Bend = (answer: Record<string, unknown>) => Record<string, unknown> | Response | "network" | Promise<Record<string, unknown> | Response | "network">;
export type BentEndpoint = "discovery" | "jwks" | "token";

/** A canned failure of userinfo; `hang` answers only by failing when the gate aborts the call (its OIDC_TIMEOUT). */
export type UserinfoFault = TokenFault | "hang";

interface Grant {
  sub: string;
  nonce: string;
  challenge: string | undefined;
  redirectUri: string;
  scope: string;
}

/** The provider: codes and refresh tokens are single-use, as Kontur's are. */
export class FakeProvider {
  readonly stats = { token: 0, refresh: 0, refreshReuse: 0, userinfo: 0 };
  tokenFault: TokenFault | undefined;
  /** Answers bent from now on; a token bend applies to successful answers only. */
  readonly bend: Partial<Record<BentEndpoint, Bend>> = {};
  /** Requests each endpoint received (bent or not). */
  readonly hits: Record<BentEndpoint | "authorize", number> = { discovery: 0, jwks: 0, token: 0, authorize: 0 };
  /** Every code and token it handed out: no log line or page may hold one. */
  readonly issued: string[] = [];
  userinfoFault: UserinfoFault | undefined;
  accessTokenTtl = 3600;
  /**
   * false: IdentityServer's default id_token of the code flow (Kontur's): protocol claims only, the
   * profile comes from userinfo. true: the friendlier shape with the profile in the id_token too.
   */
  claimsInIdToken = true;
  /** true: a refresh token only when `offline_access` was asked for (Kontur's rule); false: always. */
  refreshTokenNeedsOfflineAccess = false;
  /** true: id_tokens carry a provider session id (`sid`), as Kontur's do, for back-channel logout. */
  issueSid = false;
  private readonly disabled = new Set<string>();
  private readonly offline = new Set<string>();
  private readonly codes = new Map<string, Grant>();
  private readonly refreshTokens = new Map<string, string>();
  private readonly used = new Set<string>();
  /** Access token → its subject and expiry (epoch ms on `now`). */
  private readonly accessTokens = new Map<string, { sub: string; expiresAt: number }>();
  /** The provider's clock for access-token expiry: the gate's, once startApp hands it over. */
  now: () => number = Date.now;
  private readonly accounts = new Map<string, Account>();
  private key!: { privateKey: JoseKey; jwk: JWK };

  static async create(): Promise<FakeProvider> {
    const provider = new FakeProvider();
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    provider.key = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: "fake-1", alg: "ES256", use: "sig" } };
    return provider;
  }

  /** The user approves the authorization request at the provider: its code, for the callback. */
  approve(authorizeUrl: URL, account: Account): string {
    const params = authorizeUrl.searchParams;
    const code = randomSecret(16);
    this.hits.authorize += 1;
    this.issued.push(code);
    this.accounts.set(account.sub, account);
    this.codes.set(code, {
      sub: account.sub,
      nonce: params.get("nonce") ?? "",
      challenge: params.get("code_challenge") ?? undefined,
      redirectUri: params.get("redirect_uri") ?? "",
      scope: params.get("scope") ?? "",
    });
    return code;
  }

  /** An id_token with these claims, signed like the provider's own (a test re-signs changed claims). */
  sign(claims: Record<string, unknown>): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "fake-1" }).sign(this.key.privateKey);
  }

  /**
   * The account disabled (or enabled again) at the provider: IdentityServer then answers userinfo
   * with 401 invalid_token and a refresh with invalid_grant, as for a revoked grant.
   */
  setDisabled(sub: string, disabled: boolean): void {
    if (disabled) this.disabled.add(sub);
    else this.disabled.delete(sub);
  }

  /** The account's profile changed at the provider (`undefined` removes a claim). */
  updateAccount(sub: string, claims: Record<string, unknown>): void {
    const account = this.accounts.get(sub);
    if (account === undefined) throw new Error(`no account ${sub}`);
    const merged = { ...account.claims, ...claims };
    for (const [name, value] of Object.entries(claims)) if (value === undefined) delete merged[name];
    this.accounts.set(sub, { sub, claims: merged });
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const endpoint = ({ "/.well-known/openid-configuration": "discovery", "/.well-known/openid-configuration/jwks": "jwks", "/connect/token": "token" } as const)[url.pathname];
    if (endpoint === undefined) return this.answer(request, url);
    this.hits[endpoint] += 1;
    const answer = await this.answer(request, url);
    const bend = this.bend[endpoint];
    if (bend === undefined || answer.status !== 200) return answer;
    const bent = await bend((await answer.json()) as Record<string, unknown>);
    if (bent === "network") throw new Error("Network connection lost.");
    return bent instanceof Response ? bent : Response.json(bent);
  }

  private async answer(request: Request, url: URL): Promise<Response> {
    switch (url.pathname) {
      case "/.well-known/openid-configuration":
        return Response.json({
          issuer: ISSUER,
          authorization_endpoint: `${ISSUER}/connect/authorize`,
          token_endpoint: `${ISSUER}/connect/token`,
          userinfo_endpoint: `${ISSUER}/connect/userinfo`,
          jwks_uri: `${ISSUER}/.well-known/openid-configuration/jwks`,
          id_token_signing_alg_values_supported: ["ES256"],
          code_challenge_methods_supported: ["S256"],
          response_types_supported: ["code"],
        });
      case "/.well-known/openid-configuration/jwks":
        return Response.json({ keys: [this.key.jwk] });
      case "/connect/token":
        return this.token(await request.formData());
      case "/connect/userinfo": {
        this.stats.userinfo += 1;
        const fault = this.userinfoFault;
        if (fault === "network") throw new Error("Network connection lost.");
        if (fault === "hang") return hangUntilAborted(request.signal);
        if (fault !== undefined) return new Response(fault.body, { status: fault.status, headers: { "content-type": fault.contentType ?? "application/json" } });
        const token = this.accessTokens.get((request.headers.get("authorization") ?? "").replace(/^Bearer /, ""));
        const sub = token !== undefined && token.expiresAt > this.now() ? token.sub : undefined;
        if (sub === undefined || this.disabled.has(sub)) return new Response(null, { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } });
        return Response.json({ sub, ...this.accounts.get(sub)?.claims });
      }
      default:
        return new Response("not found", { status: 404 });
    }
  }

  private async token(form: FormData): Promise<Response> {
    this.stats.token += 1;
    if (this.tokenFault === "network") throw new Error("Network connection lost.");
    if (this.tokenFault !== undefined) {
      return new Response(this.tokenFault.body, { status: this.tokenFault.status, headers: { "content-type": this.tokenFault.contentType ?? "application/json" } });
    }
    if (form.get("client_id") !== CLIENT_ID) return invalid("invalid_client");
    if (form.get("grant_type") === "refresh_token") {
      this.stats.refresh += 1;
      const token = String(form.get("refresh_token"));
      const sub = this.refreshTokens.get(token);
      if (sub === undefined || this.used.has(token) || this.disabled.has(sub)) {
        if (this.used.has(token)) this.stats.refreshReuse += 1;
        return invalid("invalid_grant");
      }
      this.used.add(token);
      return this.issue(sub, undefined, this.offline.has(token));
    }
    const code = String(form.get("code"));
    const grant = this.codes.get(code);
    this.codes.delete(code);
    if (grant === undefined || grant.redirectUri !== form.get("redirect_uri")) return invalid("invalid_grant");
    const verifier = form.get("code_verifier");
    if (grant.challenge !== undefined && (typeof verifier !== "string" || (await s256(verifier)) !== grant.challenge)) return invalid("invalid_grant");
    return this.issue(grant.sub, grant.nonce, grant.scope.split(" ").includes("offline_access"));
  }

  private async issue(sub: string, nonce: string | undefined, offlineAccess: boolean): Promise<Response> {
    const refreshToken = this.refreshTokenNeedsOfflineAccess && !offlineAccess ? undefined : randomSecret(24);
    const accessToken = randomSecret(24);
    this.issued.push(accessToken, ...(refreshToken === undefined ? [] : [refreshToken]));
    if (refreshToken !== undefined) this.refreshTokens.set(refreshToken, sub);
    if (refreshToken !== undefined && offlineAccess) this.offline.add(refreshToken);
    this.accessTokens.set(accessToken, { sub, expiresAt: this.now() + this.accessTokenTtl * 1000 });
    // Real time, not the gate's clock: oauth4webapi checks `iat`/`exp` against Date.now().
    const claims = {
      ...(this.claimsInIdToken ? this.accounts.get(sub)?.claims : {}),
      ...(nonce === undefined ? {} : { nonce }),
      ...(this.issueSid ? { sid: `ps-${sub}` } : {}),
      auth_time: Math.floor(Date.now() / 1000),
    };
    const idToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: "fake-1" })
      .setIssuer(ISSUER)
      .setAudience(CLIENT_ID)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(this.key.privateKey);
    this.issued.push(idToken);
    return Response.json({
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: this.accessTokenTtl,
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      id_token: idToken,
    });
  }
}

/** A call that never answers: it fails only when the caller aborts it. */
function hangUntilAborted(signal: AbortSignal): Promise<Response> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

function invalid(error: string): Response {
  return Response.json({ error }, { status: 400 });
}

async function s256(verifier: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  return digest.toBase64({ alphabet: "base64url", omitPadding: true });
}

/** What the origin received. */
export interface OriginRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
}

/** A cookie jar for one browser on the site. */
export class Browser {
  readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  take(response: Response): void {
    for (const line of response.headers.getAll("set-cookie")) {
      const [pair = ""] = line.split(";");
      const index = pair.indexOf("=");
      const name = pair.slice(0, index);
      if (/max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(index + 1));
    }
  }
}

export interface AppHarness {
  provider: FakeProvider;
  /** The settings the gate runs with (valid ones, and the test's on top). */
  settings: Settings;
  /** Requests the origin received, in order. */
  origin: OriginRequest[];
  /** Epoch milliseconds, as the gate sees them. */
  clock: { now: number; advance(seconds: number): void };
  /** One request to the gate, as `browser` (its cookies are sent and kept). */
  request(path: string, init?: RequestInit, browser?: Browser): Promise<Response>;
  /** A fresh browser signed in as `account` through the whole code flow; lands on `path`. */
  signIn(account?: Account, path?: string): Promise<Browser>;
  /** Work the gate left running after its responses (`waitUntil`). */
  settle(): Promise<void>;
  /**
   * A new isolate of the same gate: same settings and KV, nothing cached (discovery, JWKS, the
   * cookies it opened). The cookies issued so far stay valid.
   */
  restart(): Promise<void>;
  /** Another isolate beside this one (same settings and KV, its own caches): requests to it. */
  isolate(): Promise<AppHarness["request"]>;
  restore(): void;
}

/**
 * The gate with `settings` on top of valid ones, against the fake provider and origin. With
 * `previous`, the gate redeployed: a new isolate on the same KV, provider, origin and clock, with
 * `previous`'s settings and `settings` on top (`previous` is stopped).
 */
export async function startApp(settings: Settings = {}, previous?: AppHarness): Promise<AppHarness> {
  previous?.restore();
  const provider = previous?.provider ?? (await FakeProvider.create());
  const origin: OriginRequest[] = previous?.origin ?? [];
  const clock = previous?.clock ?? {
    now: Date.now(),
    advance(seconds: number) {
      clock.now += seconds * 1000;
    },
  };
  provider.now = () => clock.now;
  const bindings: Bindings = {
    ...(previous === undefined ? await validSettings({ OIDC_ISSUER: ISSUER, OIDC_CLIENT_ID: CLIENT_ID, ORIGIN_URL: ORIGIN, ...settings }) : { ...previous.settings, ...settings }),
    SESSIONS: (env as unknown as { SESSIONS: KVNamespace }).SESSIONS,
  };
  let app = buildApp(await createRuntime(bindings, { clock: () => clock.now }));
  const pending: Promise<unknown>[] = [];
  const executionCtx = {
    waitUntil: (promise: Promise<unknown>) => void pending.push(promise),
    passThroughOnException: () => undefined,
    props: {},
  } as unknown as ExecutionContext;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (request.url.startsWith(`${ISSUER}/`)) return provider.fetch(request);
    if (request.url.startsWith(`${ORIGIN}/`)) {
      origin.push({ method: request.method, url: request.url, headers: Object.fromEntries(request.headers) });
      return new Response(`origin: ${request.method} ${new URL(request.url).pathname}`, { headers: { "content-type": "text/plain" } });
    }
    throw new Error(`unexpected fetch to ${request.url}`);
  });

  const requestTo =
    (isolate: () => typeof app): AppHarness["request"] =>
    async (path, init = {}, browser) => {
      const headers = new Headers(init.headers);
      if (browser !== undefined && browser.cookies.size > 0) headers.set("cookie", browser.header());
      const response = await isolate().request(`${SITE}${path}`, { ...init, headers }, bindings, executionCtx);
      browser?.take(response);
      return response;
    };

  const { SESSIONS: _kv, ...effective } = bindings;
  const harness: AppHarness = {
    provider,
    settings: effective,
    origin,
    clock,
    request: requestTo(() => app),
    async signIn(account = IVANOV, path = "/") {
      const browser = new Browser();
      const start = await harness.request(path, { headers: NAVIGATE }, browser);
      const authorize = new URL(start.headers.get("location") ?? "");
      if (start.status !== 302 || !authorize.href.startsWith(`${ISSUER}/connect/authorize`)) {
        throw new Error(`expected a redirect to the provider, got ${start.status} ${authorize.href}`);
      }
      const code = provider.approve(authorize, account);
      const state = authorize.searchParams.get("state") ?? "";
      const callback = await harness.request(`/_auth/callback?code=${code}&state=${state}&iss=${encodeURIComponent(ISSUER)}`, { headers: NAVIGATE }, browser);
      if (callback.status !== 302) throw new Error(`the callback answered ${callback.status}: ${await callback.text()}`);
      return browser;
    },
    async settle() {
      await Promise.allSettled(pending.splice(0));
    },
    async restart() {
      app = buildApp(await createRuntime(bindings, { clock: () => clock.now }));
    },
    async isolate() {
      const other = buildApp(await createRuntime(bindings, { clock: () => clock.now }));
      return requestTo(() => other);
    },
    restore() {
      spy.mockRestore();
    },
  };
  return harness;
}
