/**
 * The adversarial stack: the gate (Miniflare, 127.0.0.1), a recording origin and the hostile
 * provider (test/fixtures/hostile-provider.mjs, localhost) whose answers each test bends. Plus what every
 * attack test asserts — the status, that no session cookie was set, that the origin saw nothing —
 * and a scan, at the end of each file, of every log line and page for the secrets the tests saw.
 */
import { afterAll, expect } from "vitest";
import { startHostileProvider, type Scenario } from "../fixtures/hostile-provider.mjs";
import { startOrigin } from "../../tools/demo-origin/origin.mjs";
import { generateSecrets, loopbackGateVars, startGate, type Gate, type TestSecrets } from "../helpers/gate.ts";
import { decisions } from "../helpers/gate-log.ts";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { NAVIGATE } from "../helpers/stack.ts";
import { rawRequest, type RawResponse } from "../helpers/raw-http.ts";
import { setsSession } from "../helpers/session-cookie.ts";

export { NAVIGATE };
export const CLIENT_ID = "kontur-gate-adversarial";

type HostileProvider = Awaited<ReturnType<typeof startHostileProvider>>;
type Origin = Awaited<ReturnType<typeof startOrigin>>;

/** Shorter than any real secret; values this short are not scanned for (they would match by chance). */
const MIN_SECRET_LENGTH = 12;
/** Anything shaped like a JWS or JWE: no log line may hold one, whoever issued it. */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.?/;

/**
 * Collects every secret value a test file sees (the client secret, session keys, codes and tokens
 * the provider issued, cookie values the gate set) and every log line and page, and fails the file
 * if any secret shows up in a log line or a page, or any log line holds something JWT-shaped.
 */
export class SecretScan {
  private readonly secrets = new Map<string, string>();
  private readonly logSources: { name: string; lines: string[] }[] = [];
  private readonly providers: Pick<HostileProvider, "secrets">[] = [];
  private readonly pages: { url: string; body: string }[] = [];

  add(label: string, value: string | undefined): void {
    if (value !== undefined && value.length >= MIN_SECRET_LENGTH) this.secrets.set(value, label);
  }

  /** A gate's log (scanned as it grows) and the secrets it was configured with. */
  addGate(name: string, logs: string[], secrets: TestSecrets): void {
    this.logSources.push({ name, lines: logs });
    this.add("OIDC_CLIENT_SECRET", secrets.OIDC_CLIENT_SECRET);
    for (const key of secrets.SESSION_SECRETS.split(",")) this.add("SESSION_SECRETS key", key.trim());
    this.add("ASSERTION_SIGNING_KEY d", (JSON.parse(secrets.ASSERTION_SIGNING_KEY) as { d: string }).d);
  }

  /** Everything the provider issues, now and later. */
  addProvider(provider: Pick<HostileProvider, "secrets">): void {
    this.providers.push(provider);
  }

  addPage(url: string, body: string): void {
    this.pages.push({ url, body });
  }

  /** Every leak found, as readable lines (empty when clean). */
  findings(): string[] {
    const secrets = new Map(this.secrets);
    for (const provider of this.providers) for (const value of provider.secrets()) if (value.length >= MIN_SECRET_LENGTH) secrets.set(value, "issued by the provider");
    const found: string[] = [];
    for (const { name, lines } of this.logSources) {
      for (const line of lines) {
        if (JWT_SHAPE.test(line)) found.push(`${name} log holds a JWT: ${line.slice(0, 200)}`);
        for (const [value, label] of secrets) if (line.includes(value)) found.push(`${name} log holds the ${label}: ${line.slice(0, 200)}`);
      }
    }
    for (const { url, body } of this.pages) {
      for (const [value, label] of secrets) if (body.includes(value)) found.push(`the answer to ${url} holds the ${label}`);
    }
    return found;
  }

  /** How much was scanned, so a test can see the scan was not empty. */
  get size(): { secrets: number; logLines: number; pages: number } {
    return {
      secrets: this.secrets.size + this.providers.reduce((n, p) => n + p.secrets().length, 0),
      logLines: this.logSources.reduce((n, source) => n + source.lines.length, 0),
      pages: this.pages.length,
    };
  }
}

/**
 * The scan for this test file, checked after all its tests: call once at the top of the file.
 * Asserts the scan saw something, so a broken wiring cannot pass silently.
 */
export function scanForSecrets(): SecretScan {
  const scan = new SecretScan();
  current = scan;
  afterAll(() => {
    expect(scan.findings()).toEqual([]);
    expect(scan.size.secrets).toBeGreaterThan(0);
    expect(scan.size.logLines).toBeGreaterThan(0);
  });
  return scan;
}

let current: SecretScan | undefined;

function activeScan(): SecretScan {
  if (current === undefined) throw new Error("call scanForSecrets() at the top of the test file first");
  return current;
}

function isGateCookie(name: string): boolean {
  return /^(__Host-)?kg_/.test(name);
}

/**
 * An HttpClient whose every answer is read whole and handed to the secret scan (bodies), and whose
 * gate cookies are added to the scan's secrets. Bodies come back as buffered Responses.
 */
export class WatchedClient extends HttpClient {
  override async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const response = await super.request(url, init);
    const scan = activeScan();
    for (const setCookie of response.headers.getSetCookie()) {
      const [name = "", value = ""] = (setCookie.split(";", 1)[0] ?? "").split(/=(.*)/s, 2);
      if (isGateCookie(name.trim())) scan.add(`${name.trim()} cookie`, value.trim());
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    scan.addPage(String(url), new TextDecoder().decode(bytes));
    const bodyless = response.status === 204 || response.status === 304 || (init.method ?? "GET").toUpperCase() === "HEAD";
    return new Response(bodyless ? null : bytes, { status: response.status, headers: response.headers });
  }
}

/** A request written byte for byte (see test/helpers/raw-http.ts): for what no HTTP client sends. */
export interface RawExchange {
  method?: string;
  /** Any bytes but CR, LF and space. */
  target: string | Buffer;
  /** Sent as given, each spelling its own line; `Host` only when named here. */
  headers?: Record<string, string>;
  body?: string;
}

/** rawRequest to the gate, with the answer handed to the secret scan like WatchedClient's. */
export async function rawExchange(stack: HostileStack, { method = "GET", target, headers = {}, body = "" }: RawExchange): Promise<RawResponse> {
  const answer = await rawRequest(stack.gate.url, target, headers, method, body);
  const scan = activeScan();
  for (const setCookie of answer.setCookie) {
    const [name = "", value = ""] = (setCookie.split(";", 1)[0] ?? "").split(/=(.*)/s, 2);
    if (isGateCookie(name.trim())) scan.add(`${name.trim()} cookie`, value.trim());
  }
  scan.addPage(`raw ${method} ${String(target).slice(0, 100)}`, answer.body);
  return answer;
}

export interface HostileStack {
  gate: Gate;
  provider: HostileProvider;
  origin: Origin;
  secrets: TestSecrets;
  vars: Record<string, string>;
  /** Forget what the origin and provider recorded, and make the provider behave again. */
  reset(): void;
  close(): Promise<void>;
}

export interface HostileStackOptions {
  vars?: Record<string, string>;
  scenario?: Scenario;
}

/** The gate in front of the recording origin, logging in against the hostile provider. */
export async function startHostileStack(options: HostileStackOptions = {}): Promise<HostileStack> {
  const scan = activeScan();
  const port = await freePort();
  const gateUrl = `http://127.0.0.1:${port}`;
  const secrets = await generateSecrets();
  const provider = await startHostileProvider({
    clientId: CLIENT_ID,
    clientSecret: secrets.OIDC_CLIENT_SECRET,
    redirectUris: [`${gateUrl}/_auth/callback`],
  });
  if (options.scenario !== undefined) provider.set(options.scenario);
  const origin = await startOrigin({ gateUrl });
  const vars = loopbackGateVars({ issuer: provider.issuer, clientId: CLIENT_ID, secrets, originUrl: origin.url }, options.vars);
  const gate = await startGate(vars, { port }).catch(async (error: unknown) => {
    await Promise.all([origin.close(), provider.close()]);
    throw error;
  });
  scan.addGate(`gate ${gateUrl}`, gate.logs, secrets);
  scan.addProvider(provider);
  return {
    gate,
    provider,
    origin,
    secrets,
    vars,
    reset() {
      origin.requests.length = 0;
      provider.reset();
    },
    async close() {
      await gate.close();
      await origin.close();
      await provider.close();
    },
  };
}

/**
 * What every refused attack asserts: this status, no session cookie stored, and not one request
 * reached the origin (since the last reset).
 */
export function expectRefused(stack: HostileStack, response: Response, status: number): void {
  expect(response.status).toBe(status);
  expect(setsSession(response)).toBe(false);
  expect(stack.origin.requests).toEqual([]);
}

/** The visitor is still signed out: a protected page sends them to the provider; the origin saw nothing. */
export async function expectSignedOut(stack: HostileStack, client: HttpClient): Promise<void> {
  const again = await client.get(`${stack.gate.url}/private`, NAVIGATE);
  expect(again.status).toBe(302);
  expect(again.headers.get("location")).toMatch(new RegExp(`^${stack.provider.issuer}/connect/authorize\\?`));
  expect(stack.origin.requests).toEqual([]);
}

/**
 * Waits until the gate has logged, after line `since`, a refusal with `code` whose reason contains
 * `reason`. Miniflare hands log lines over asynchronously, so a line of an earlier test may still
 * arrive after `since`: only a line that matches both counts.
 */
export async function expectLoggedRefusal(stack: HostileStack, since: number, code: string, reason: string): Promise<void> {
  // The matching line once it is there; until then every refusal logged, which a failure shows.
  const found = () => {
    const refusals = decisions(stack.gate.logs.slice(since)).filter((line) => line.code !== undefined);
    return refusals.find((line) => line.code === code && String(line.reason).includes(reason)) ?? refusals;
  };
  await expect.poll(found).toMatchObject({ code, reason: expect.stringContaining(reason) });
}

export interface LoginAttempt {
  client: WatchedClient;
  /** The gate's redirect to the provider. */
  authorizeUrl: URL;
  /** Where the provider sent the browser back to. */
  callbackUrl: URL;
  /** The gate's answer at the callback. */
  callback: Response;
}

/** A visitor opens `path`, the gate sends them to the provider, which sends them straight back. */
export async function startLogin(stack: HostileStack, client = new WatchedClient(), path = "/private"): Promise<{ client: WatchedClient; authorizeUrl: URL }> {
  const start = await client.get(`${stack.gate.url}${path}`, NAVIGATE);
  expect(start.status).toBe(302);
  return { client, authorizeUrl: new URL(start.headers.get("location")!) };
}

/** The provider's answer to an authorization request: the callback URL it redirects to. */
export async function authorizeAt(authorizeUrl: URL): Promise<URL> {
  const answer = await new HttpClient().get(authorizeUrl);
  if (answer.status !== 302) throw new Error(`the provider refused the authorization request: ${answer.status} ${await answer.text()}`);
  return new URL(answer.headers.get("location")!);
}

/** The whole round trip: navigation → provider → callback at the gate. */
export async function attemptLogin(stack: HostileStack, client = new WatchedClient(), path = "/private"): Promise<LoginAttempt> {
  const { authorizeUrl } = await startLogin(stack, client, path);
  const callbackUrl = await authorizeAt(authorizeUrl);
  const callback = await client.get(callbackUrl, NAVIGATE);
  return { client, authorizeUrl, callbackUrl, callback };
}

/** A login that must succeed: lands on `path` signed in. */
export async function signIn(stack: HostileStack, client = new WatchedClient(), path = "/private"): Promise<WatchedClient> {
  const { callback } = await attemptLogin(stack, client, path);
  if (callback.status !== 302 || !setsSession(callback)) {
    throw new Error(`expected a successful login, got ${callback.status}: ${await callback.text()}\n${stack.gate.logs.slice(-3).join("\n")}`);
  }
  return client;
}
