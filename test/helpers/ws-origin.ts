/**
 * A scripted origin for the WebSocket and caching tests (tools/demo-origin/origin.mjs speaks plain HTTP only and
 * picks its own Cache-Control). Every request is recorded with its headers, so a test can assert
 * which identity reached the origin or that nothing did.
 * - WebSocket: a connected socket first sends a `hello` message with the identity headers it was
 *   opened with, then echoes every message back.
 * - Plain requests: `200 ok`, with the `Cache-Control` named by `?cache-control=` (none without it).
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";

export interface RecordedRequest {
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
}

export interface WsOrigin {
  /** `http://127.0.0.1:<port>`: the gate's ORIGIN_URL. */
  url: string;
  upgrades: RecordedRequest[];
  /** Plain (non-upgrade) requests. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startWsOrigin(): Promise<WsOrigin> {
  const upgrades: RecordedRequest[] = [];
  const requests: RecordedRequest[] = [];
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((req, res) => {
    requests.push({ url: req.url ?? "/", headers: req.headers });
    const cacheControl = new URL(req.url ?? "/", "http://origin.invalid").searchParams.get("cache-control");
    res.writeHead(200, { "content-type": "text/plain", ...(cacheControl === null ? {} : { "cache-control": cacheControl }) }).end("ok\n");
  });
  server.on("upgrade", (req, socket, head) => {
    upgrades.push({ url: req.url ?? "/", headers: req.headers });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ hello: { user: req.headers["x-forwarded-user"] ?? null, email: req.headers["x-forwarded-email"] ?? null } }));
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    upgrades,
    requests,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
