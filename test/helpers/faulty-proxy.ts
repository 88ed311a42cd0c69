/**
 * The gate's only way out to the network in fault tests: an HTTP proxy on 127.0.0.1 that receives
 * every outbound request of the Worker (Miniflare's outbound service, `outboundProxy` in gate.ts)
 * and forwards it where it was going — the provider, the origin — unless the test told it to make
 * one of the provider's endpoints misbehave: down, slow, 5xx, HTML, malformed JSON, a rewritten
 * answer, or requests held back until several arrive together (a race).
 *
 * The provider keeps its own issuer URL (its tokens name it), so nothing about it is faked except
 * what the test switches on.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ROUTES } from "../../tools/dev-provider/provider.mjs";

export type Endpoint = "discovery" | "jwks" | "token" | "userinfo" | "revocation";

export type Fault =
  /** The connection is closed without an answer (provider down, connection refused or reset). */
  | { kind: "down" }
  /** No answer for `ms`; then the request is forwarded, if the gate is still waiting for it. */
  | { kind: "slow"; ms: number }
  /** An answer with this status and a JSON body (an OAuth error, a 500 from the provider itself). */
  | { kind: "json"; status: number; body: unknown }
  /** An HTML page with this status (a load balancer or proxy answering in the provider's place). */
  | { kind: "html"; status: number }
  /** 200 with `Content-Type: application/json` and a truncated body. */
  | { kind: "malformed" }
  /** Forwarded; the provider's JSON answer is replaced by what `rewrite` returns. */
  | { kind: "rewrite"; rewrite: (body: Record<string, unknown>) => Promise<Record<string, unknown>> }
  /**
   * Held until `count` requests wait, then forwarded one after the other, each once the previous
   * one was answered; the fault then clears itself. Two gates refreshing one session this way have
   * both read its record before either got an answer: a race the provider settles in order.
   * `settle`, when given, is awaited after each answer before the next request goes on (e.g. until
   * the winner's write has landed in KV, so a loaded machine cannot stretch the race past the
   * loser's bounded wait for it).
   */
  | { kind: "race"; count: number; settle?: () => Promise<void> };

export interface FaultyProxy {
  /** `host:port` for `startGate(…, { outboundProxy })`. */
  readonly address: string;
  /** Requests that reached each provider endpoint (faulty or not). */
  readonly hits: Record<Endpoint, number>;
  /** The provider whose endpoints faults apply to (its issuer URL). */
  watch(issuer: string): void;
  /** Makes an endpoint misbehave from now on; `undefined` makes it behave again. */
  set(endpoint: Endpoint, fault: Fault | undefined): void;
  /** Every endpoint behaves again. */
  clear(): void;
  close(): Promise<void>;
}

const PATHS: Record<Endpoint, string> = {
  discovery: "/.well-known/openid-configuration",
  jwks: ROUTES.jwks,
  token: ROUTES.token,
  userinfo: ROUTES.userinfo,
  revocation: ROUTES.revocation,
};

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"]);

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function forwardHeaders(headers: IncomingMessage["headers"]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/** Sends the request on to `Host`, as it was; resolves with the upstream response. */
function upstream(req: IncomingMessage, body: Buffer): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(`http://${req.headers.host}${req.url}`, { method: req.method, headers: forwardHeaders(req.headers) }, resolve);
    out.on("error", reject);
    out.end(body);
  });
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export async function startFaultyProxy(): Promise<FaultyProxy> {
  const faults = new Map<Endpoint, Fault>();
  const hits: Record<Endpoint, number> = { discovery: 0, jwks: 0, token: 0, userinfo: 0, revocation: 0 };
  /** Requests waiting for a race: each is let go (`release`) once the one before it is answered. */
  let held: Array<{ release: (previous: Promise<void>) => void; answered: Promise<void> }> = [];
  let providerHost: string | undefined;

  function endpointOf(req: IncomingMessage): Endpoint | undefined {
    if (req.headers.host !== providerHost) return undefined;
    const path = new URL(req.url ?? "/", "http://x").pathname;
    return (Object.keys(PATHS) as Endpoint[]).find((endpoint) => PATHS[endpoint] === path);
  }

  async function pass(req: IncomingMessage, res: ServerResponse, body: Buffer, rewrite?: Extract<Fault, { kind: "rewrite" }>["rewrite"]) {
    let answer: IncomingMessage;
    try {
      answer = await upstream(req, body);
    } catch {
      req.socket.destroy();
      return;
    }
    if (rewrite === undefined) {
      res.writeHead(answer.statusCode ?? 502, forwardHeaders(answer.headers));
      answer.pipe(res);
      return;
    }
    const text = (await readBody(answer)).toString("utf8");
    const rewritten = answer.statusCode === 200 ? JSON.stringify(await rewrite(JSON.parse(text) as Record<string, unknown>)) : text;
    send(res, answer.statusCode ?? 502, answer.headers["content-type"] ?? "application/json", rewritten);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const endpoint = endpointOf(req);
    if (endpoint !== undefined) hits[endpoint] += 1;
    const fault = endpoint === undefined ? undefined : faults.get(endpoint);
    switch (fault?.kind) {
      case undefined:
        return pass(req, res, body);
      case "down":
        req.socket.destroy();
        return;
      case "slow": {
        let gone = false;
        res.on("close", () => {
          gone = true;
        });
        await sleep(fault.ms);
        if (!gone) await pass(req, res, body);
        return;
      }
      case "json":
        return send(res, fault.status, "application/json", JSON.stringify(fault.body));
      case "html":
        return send(res, fault.status, "text/html; charset=utf-8", `<!doctype html><html><body><h1>${fault.status}</h1><p>Service temporarily unavailable</p></body></html>`);
      case "malformed":
        return send(res, 200, "application/json", '{"access_token":"abc","token_type":"Bearer","expires_in":');
      case "rewrite":
        return pass(req, res, body, fault.rewrite);
      case "race": {
        const answered = new Promise<void>((resolve) => res.once("close", () => resolve()));
        const turn = new Promise<void>((release) => held.push({ release, answered }));
        if (held.length >= fault.count) {
          faults.delete(endpoint!);
          let previous = Promise.resolve();
          const { settle } = fault;
          for (const request of held) {
            request.release(previous);
            previous = settle === undefined ? request.answered : request.answered.then(settle).catch(() => undefined);
          }
          held = [];
        }
        await turn;
        return pass(req, res, body);
      }
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    address: `127.0.0.1:${port}`,
    hits,
    watch(issuer) {
      providerHost = new URL(issuer).host;
    },
    set(endpoint, fault) {
      if (fault === undefined) faults.delete(endpoint);
      else faults.set(endpoint, fault);
    },
    clear() {
      faults.clear();
    },
    close() {
      for (const request of held) request.release(Promise.resolve());
      held = [];
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
