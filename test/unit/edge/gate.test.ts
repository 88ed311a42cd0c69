import { env } from "cloudflare:workers";
import { AsyncLocalStorage } from "node:async_hooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Settings } from "../../../src/config";
import { buildApp } from "../../../src/edge/app";
import type { Bindings } from "../../../src/edge/context";
import { createRuntime, type Runtime } from "../../../src/edge/runtime";
import { decodeJwt } from "jose";
import { sealSessionCookie } from "../../../src/session/cookie";
import { randomId } from "../../../src/session/seal";
import { validSettings } from "../fixtures";

const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
const ORIGIN = "https://origin.example";
const SITE = "https://site.example";
const NAVIGATION = { accept: "text/html", "sec-fetch-mode": "navigate" };
const executionCtx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} } as unknown as ExecutionContext;

afterEach(() => vi.restoreAllMocks());

/** The gate's app with its own keys, an origin that answers 200 and records what it received. */
async function gate(settings: Settings = {}) {
  const bindings = { ...(await validSettings({ ORIGIN_URL: ORIGIN, PUBLIC_PATHS: "/static/*", ...settings })), SESSIONS } as Bindings;
  const runtime = await createRuntime(bindings);
  const app = buildApp(runtime);
  const received: Request[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    received.push(new Request(input, init));
    return new Response("from the origin");
  });
  const request = (path: string, headers: Record<string, string> = {}, method = "GET") =>
    app.request(`${SITE}${path}`, { method, headers: { ...NAVIGATION, ...headers } }, bindings, executionCtx);
  return { runtime, request, received };
}

/** A session cookie as a login leaves it (checked now), for the runtime's keyring. */
async function signedIn(runtime: Runtime, age = 0): Promise<string> {
  const now = Math.floor(Date.now() / 1000) - age;
  const sealed = await sealSessionCookie(runtime.keyring, {
    v: 1,
    sid: randomId(),
    user: { sub: "guid-7", email: "demo@example.kontur.ru", name: "Демо" },
    iat: now,
    exp: now + 3600,
    chk: now,
    seen: now,
  }, new URL(SITE).hostname);
  return `__Host-kg_session=${sealed}`;
}

describe("the gate's hot path: work only where a decision needs it", () => {
  it("a signed-in user on a protected path is forwarded without canonicalising the path", async () => {
    const { runtime, request, received } = await gate();
    const cookie = await signedIn(runtime);
    const decode = vi.spyOn(globalThis, "decodeURIComponent");
    const response = await request("/reports/2026", { cookie });
    expect(response.status).toBe(200);
    expect(received[0]?.headers.get("x-forwarded-user")).toBe("guid-7");
    expect(decode.mock.calls.filter(([text]) => text === "/reports/2026")).toEqual([]);
  });

  it("an anonymous request still has its path canonicalised: a public path is served, an ambiguous one is not", async () => {
    const { request, received } = await gate();
    const decode = vi.spyOn(globalThis, "decodeURIComponent");
    expect((await request("/static/app.css")).status).toBe(200);
    expect(decode.mock.calls.some(([text]) => text === "/static/app.css")).toBe(true);
    expect((await request("/static/..%2Fadmin", {}, "POST")).status).toBe(401);
    expect(received).toHaveLength(1);
  });
});

describe("the request-log context: entered only where the gate can log", () => {
  it("a signed-in request with nothing due enters none", async () => {
    const { runtime, request } = await gate();
    const cookie = await signedIn(runtime);
    const entered = vi.spyOn(AsyncLocalStorage.prototype, "run");
    expect((await request("/reports", { cookie })).status).toBe(200);
    expect(entered).not.toHaveBeenCalled();
  });

  it("an ending session and its error answer are logged under one reference, the one the visitor sees", async () => {
    const { runtime, request } = await gate();
    const cookie = await signedIn(runtime, 7200); // its SESSION_TTL ended an hour ago
    const lines: Record<string, unknown>[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(JSON.parse(line)));
    const response = await request("/api/items", { cookie, "sec-fetch-mode": "cors", accept: "application/json" });
    expect(response.status).toBe(401);
    const { reference } = (await response.json()) as { reference: string };
    expect(lines.map((line) => [line.event, line.ray, line.path])).toEqual([
      ["session_expired", reference, "/api/items"],
      ["request_refused", reference, "/api/items"],
    ]);
  });
});

describe("ASSERTION_MODE", () => {
  it("request (default): every request gets its own assertion, bound to its method and URL", async () => {
    const { runtime, request, received } = await gate();
    const cookie = await signedIn(runtime);
    await request("/a?x=1", { cookie });
    await request("/b", { cookie }, "POST");
    const [a, b] = received.map((r) => decodeJwt(r.headers.get("x-auth-assertion")!));
    expect([a?.htm, a?.htu, b?.htm, b?.htu]).toEqual(["GET", `${ORIGIN}/a?x=1`, "POST", `${ORIGIN}/b`]);
    expect(a?.jti).not.toBe(b?.jti);
  });

  it("session: the session's requests share one assertion without htm/htu, valid 60 s like any other", async () => {
    const { runtime, request, received } = await gate({ ASSERTION_MODE: "session" });
    const cookie = await signedIn(runtime);
    await request("/a", { cookie });
    await request("/b", { cookie }, "POST");
    const [a, b] = received.map((r) => r.headers.get("x-auth-assertion"));
    expect(b).toBe(a);
    const claims = decodeJwt(a!);
    expect(claims).not.toHaveProperty("htm");
    expect(claims).not.toHaveProperty("htu");
    expect([claims.sub, claims.aud, claims.exp! - claims.iat!]).toEqual(["guid-7", ORIGIN, 60]);
    const other = await signedIn(runtime);
    await request("/a", { cookie: other });
    expect(received[2]?.headers.get("x-auth-assertion")).not.toBe(a);
  });
});
