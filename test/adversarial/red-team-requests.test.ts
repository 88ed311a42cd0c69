/**
 * Findings of the red-team review (issue 12) that are a single request: what an anonymous
 * attacker sends with curl to a gate in front of an origin that runs the same code for every
 * method (the recording origin answers every method and path alike, like a plain PHP page).
 */
import { WebSocket } from "ws";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startWsOrigin, type WsOrigin } from "../helpers/ws-origin.ts";
import {
  authorizeAt,
  NAVIGATE,
  rawExchange,
  scanForSecrets,
  signIn,
  startHostileStack,
  WatchedClient,
  type HostileStack,
} from "./harness.ts";
import { setsSession } from "../helpers/session-cookie.ts";

scanForSecrets();

const APP = "https://app.example";
const EVIL = "https://evil.example";

function sessionCookie(client: WatchedClient): string {
  return `kg_session=${client.jar.get("127.0.0.1", "kg_session")!}`;
}

/** `curl -X OPTIONS <target> -H 'Origin: …' -H 'Access-Control-Request-Method: DELETE' [-H 'Cookie: …']` */
function preflight(stack: HostileStack, target: string, origin: string, cookie?: string) {
  return rawExchange(stack, {
    method: "OPTIONS",
    target,
    headers: {
      origin,
      "access-control-request-method": "DELETE",
      "access-control-request-headers": "content-type, x-csrf-token",
      "content-type": "application/x-www-form-urlencoded",
      ...(cookie === undefined ? {} : { cookie }),
    },
    body: "id=7&action=delete",
  });
}

describe("finding 1: a CORS preflight never carries a request to the origin", () => {
  let stack: HostileStack;
  let cookie: string;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: { CORS_ORIGINS: APP } });
    cookie = sessionCookie(await signIn(stack));
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  it("curl -X OPTIONS '/wiki?id=7&action=delete' from an unlisted origin: 403, no body, the origin sees nothing", async () => {
    const answer = await preflight(stack, "/wiki?id=7&action=delete", EVIL, cookie);
    expect(answer.status).toBe(403);
    expect(answer.body).toBe("");
    expect(answer.headers["vary"]).toMatch(/\borigin\b/i);
    expect(Object.keys(answer.headers).filter((name) => name.startsWith("access-control-allow-"))).toEqual([]);
    expect(stack.origin.requests).toEqual([]);
  });

  it("from a listed origin the gate answers itself: 204, the request echoed for that origin only, the origin sees nothing", async () => {
    const answer = await preflight(stack, "/wiki?id=7&action=delete", APP);
    expect(answer.status).toBe(204);
    expect(answer.body).toBe("");
    expect(answer.headers["access-control-allow-origin"]).toBe(APP);
    expect(answer.headers["access-control-allow-credentials"]).toBe("true");
    expect(answer.headers["access-control-allow-methods"]).toBe("DELETE");
    expect(answer.headers["access-control-allow-headers"]).toBe("content-type, x-csrf-token");
    expect(answer.headers["vary"]).toMatch(/\borigin\b/i);
    expect(stack.origin.requests).toEqual([]);
  });

  it("with CORS_PREFLIGHT=origin the origin gets a bare OPTIONS (no query, cookie or body) and only CORS headers come back", async () => {
    const forwarding = await startHostileStack({ vars: { CORS_PREFLIGHT: "origin" } });
    try {
      const victim = sessionCookie(await signIn(forwarding));
      forwarding.reset();
      const answer = await preflight(forwarding, "/wiki?id=7&action=delete", EVIL, `${victim}; wiki_session=abc`);
      expect(forwarding.origin.requests.map((r) => [r.method, r.url, r.body, r.headers.cookie])).toEqual([["OPTIONS", "/wiki", "", undefined]]);
      expect(forwarding.origin.requests[0]!.headers["access-control-request-method"]).toBe("DELETE");
      // The recording origin answers OPTIONS with its whole HTML page: none of it comes back.
      expect(answer.body).toBe("");
      expect(answer.headers["content-type"]).toBeUndefined();
      expect(answer.setCookie).toEqual([]);
    } finally {
      await forwarding.close();
    }
  });
});

describe("finding 3: forwarded metadata is the gate's, not the client's", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: { PUBLIC_PATHS: "/static/*" } });
  });
  afterAll(() => stack.close());

  const SPOOFED: Record<string, string> = {
    forwarded: "for=10.0.0.1;host=admin.internal;proto=https",
    "x-forwarded-uri": "/admin",
    "x-forwarded-port": "8443",
    "x-forwarded-server": "admin.internal",
    "x-forwarded-scheme": "https",
    "x-forwarded-ssl": "on",
    "x-host": "admin.internal",
    "x-original-host": "admin.internal",
    "x-envoy-original-path": "/admin",
    "remote-user": "admin",
    "x-remote-user": "admin",
    "x-auth-request-user": "admin",
    "x-auth-request-email": "admin@example.kontur.ru",
    "x-auth-request-groups": "admins",
    "x-forwarded-groups": "admins",
    "x-forwarded-preferred-username": "admin",
    "x-real-ip": "10.0.0.1",
    "x-forwarded-for": "10.0.0.1",
  };

  it("every spoofed routing or identity header is removed; X-Forwarded-For and X-Real-IP come from CF-Connecting-IP", async () => {
    const answer = await rawExchange(stack, { target: "/static/app.css", headers: { ...SPOOFED, "cf-connecting-ip": "203.0.113.7" } });
    expect(answer.status).toBe(200);
    const seen = stack.origin.requests[0]!.headers;
    for (const name of Object.keys(SPOOFED).filter((n) => n !== "x-forwarded-for" && n !== "x-real-ip")) expect(seen[name], name).toBeUndefined();
    expect(seen["x-forwarded-for"]).toBe("203.0.113.7");
    expect(seen["x-real-ip"]).toBe("203.0.113.7");
  });
});

describe("finding 5: the gate's cookie never reaches the origin, whatever the framing", () => {
  let stack: HostileStack;
  let cookie: string;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: { PUBLIC_PATHS: "/static/*" } });
    cookie = sessionCookie(await signIn(stack));
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  it.each([
    ["joined with a comma", (c: string) => ({ cookie: `theme=dark, ${c}` })],
    ["in a second Cookie header (joined with a comma on the way)", (c: string) => ({ cookie: "theme=dark", Cookie: c })],
  ])("the session cookie %s on a public path does not reach the origin", async (_, headers) => {
    await rawExchange(stack, { target: "/static/app.css", headers: headers(cookie) });
    const seen = String(stack.origin.requests[0]!.headers.cookie ?? "");
    expect(seen).not.toContain("kg_session");
    expect(seen).not.toContain(cookie.split("=")[1]!.slice(0, 40));
  });
});

describe("finding 6: a WebSocket upgrade from another site is refused", () => {
  let stack: HostileStack;
  let ws: WsOrigin;
  let cookie: string;
  beforeAll(async () => {
    ws = await startWsOrigin();
    stack = await startHostileStack({ vars: { ORIGIN_URL: ws.url, CORS_ORIGINS: APP } });
    cookie = sessionCookie(await signIn(stack, new WatchedClient(), "/ws-login"));
  });
  afterAll(async () => {
    await stack.close();
    await ws.close();
  });

  /** The status the gate answers an upgrade with (101 when the socket opened). */
  function upgrade(origin: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${stack.gate.url.replace(/^http/, "ws")}/live`, { headers: { cookie }, origin });
      socket.once("open", () => {
        socket.terminate();
        resolve(101);
      });
      socket.once("unexpected-response", (_request, response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      socket.once("error", reject);
    });
  }

  it("a page on another site opening a socket with the visitor's cookie: 403, the origin sees nothing", async () => {
    const before = ws.upgrades.length;
    expect(await upgrade(EVIL)).toBe(403);
    expect(ws.upgrades.length).toBe(before);
  });

  it.each([["the site itself", ""], ["a CORS_ORIGINS origin", APP]])("from %s the socket opens", async (_, origin) => {
    expect(await upgrade(origin === "" ? stack.gate.url : origin)).toBe(101);
  });
});

describe("finding 10: a login link with a long non-ASCII rd still logs in", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack();
  });
  afterAll(() => stack.close());

  it("the pending-login cookie stays under 4,096 bytes and the login completes", async () => {
    const client = new WatchedClient();
    const rd = `/${"я".repeat(1500)}`;
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=${encodeURIComponent(rd)}`, NAVIGATE);
    expect(start.status).toBe(302);
    const pending = start.headers.getSetCookie().filter((c) => c.startsWith("kg_login_"));
    expect(pending).toHaveLength(1);
    expect(pending[0]!.split(";", 1)[0]!.length).toBeLessThan(4096);
    const callback = await client.get(await authorizeAt(new URL(start.headers.get("location")!)), NAVIGATE);
    expect(callback.status).toBe(302);
    expect(setsSession(callback)).toBe(true);
  });
});
