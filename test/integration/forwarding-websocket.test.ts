import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startStack, type Stack } from "../helpers/stack.ts";
import { startWsOrigin, type WsOrigin } from "../helpers/ws-origin.ts";
import { setsSession } from "../helpers/session-cookie.ts";


interface Opened {
  socket: WebSocket;
  /** The origin's first message: the identity it saw. */
  hello: { user: string | null; email: string | null };
  /** Set-Cookie headers of the 101 response. */
  setCookie: string[];
}

interface Refused {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Opens a WebSocket through the gate; resolves with the socket, or with the HTTP refusal. */
function openSocket(url: string, headers: Record<string, string>): Promise<Opened | Refused> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    let setCookie: string[] = [];
    socket.once("upgrade", (response) => {
      setCookie = response.headers["set-cookie"] ?? [];
    });
    socket.once("message", (data) => resolve({ socket, hello: JSON.parse(String(data)).hello, setCookie }));
    socket.once("unexpected-response", (_request, response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    socket.once("error", reject);
  });
}

function echo(socket: WebSocket, message: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once("message", (data) => resolve(String(data)));
    socket.send(message);
  });
}

function close(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    socket.once("close", () => resolve());
    socket.close();
  });
}

describe("WebSockets: proxied for signed-in users, 401 for everyone else", () => {
  let wsOrigin: WsOrigin;
  let stack: Stack;
  let wsUrl: string;
  beforeAll(async () => {
    wsOrigin = await startWsOrigin();
    stack = await startStack({
      vars: { ORIGIN_URL: wsOrigin.url, SESSION_CHECK_INTERVAL: "1", ALLOWED_EMAILS: "demo@example.kontur.ru", PUBLIC_PATHS: "/public/*" },
    });
    wsUrl = stack.gate.url.replace(/^http/, "ws");
  });
  afterAll(async () => {
    await stack.close();
    await wsOrigin.close();
  });

  it("a signed-in user's socket reaches the origin with identity headers and echoes both ways", async () => {
    const { client } = await stack.signIn("/");
    const cookie = client.jar.header(new URL(stack.gate.url))!;
    const opened = await openSocket(`${wsUrl}/live/updates?room=7`, { cookie, "x-forwarded-user": "admin" });
    expect("socket" in opened).toBe(true);
    const { socket, hello } = opened as Opened;
    expect(hello.email).toBe("demo@example.kontur.ru");
    expect(hello.user).toMatch(/^[0-9a-f-]{36}$/);
    expect(await echo(socket, "привет")).toBe("привет");
    expect(await echo(socket, "x".repeat(100_000))).toBe("x".repeat(100_000));
    await close(socket);
    const [upgrade] = wsOrigin.upgrades.filter((u) => u.url === "/live/updates?room=7");
    expect(upgrade!.headers["x-forwarded-user"]).toBe(hello.user);
    expect(upgrade!.headers["x-auth-assertion"]).toEqual(expect.any(String));
    expect(upgrade!.headers.cookie ?? "").not.toContain("kg_session");
  });

  it("a session re-checked during the handshake gets its re-issued cookie on the 101", async () => {
    const { client } = await stack.signIn("/");
    const cookie = client.jar.header(new URL(stack.gate.url))!;
    await sleep(1100); // SESSION_CHECK_INTERVAL is 1 s here: the upgrade triggers a check
    const opened = await openSocket(`${wsUrl}/live`, { cookie });
    expect("socket" in opened).toBe(true);
    const { socket, setCookie, hello } = opened as Opened;
    expect(hello.email).toBe("demo@example.kontur.ru");
    expect(setsSession(setCookie)).toBe(true);
    expect(await echo(socket, "still open")).toBe("still open");
    await close(socket);
  });

  it("a signed-in user the allow-lists refuse gets 403 on the upgrade; the origin sees nothing", async () => {
    const { client } = await stack.signIn("/", "petrov");
    const before = wsOrigin.upgrades.length;
    const refused = await openSocket(`${wsUrl}/live`, { cookie: client.jar.header(new URL(stack.gate.url))! });
    expect("status" in refused && refused.status).toBe(403);
    expect(wsOrigin.upgrades.length).toBe(before);
  });

  it("an anonymous socket on a public path is proxied without identity, forged headers stripped", async () => {
    const opened = await openSocket(`${wsUrl}/public/ticker`, { "x-forwarded-user": "admin", "x-forwarded-email": "admin@evil.example" });
    expect("socket" in opened).toBe(true);
    const { socket, hello } = opened as Opened;
    expect(hello).toEqual({ user: null, email: null });
    expect(await echo(socket, "tick")).toBe("tick");
    await close(socket);
  });

  it("an unauthenticated upgrade gets 401 JSON with where to log in, and the origin sees nothing", async () => {
    const before = wsOrigin.upgrades.length;
    const refused = await openSocket(`${wsUrl}/live/updates`, { "x-forwarded-user": "admin", accept: "text/html", "sec-fetch-mode": "websocket" });
    expect("status" in refused).toBe(true);
    const { status, headers, body } = refused as Refused;
    expect(status).toBe(401);
    expect(headers["www-authenticate"]).toMatch(/^Bearer /);
    expect(headers["x-login-url"]).toBe("/_auth/login?rd=%2Flive%2Fupdates");
    expect(JSON.parse(body)).toMatchObject({ error: "unauthenticated", login_url: "/_auth/login?rd=%2Flive%2Fupdates" });
    expect(wsOrigin.upgrades.length).toBe(before);
  });
});
