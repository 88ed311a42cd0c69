/**
 * One HTTP/1.1 exchange over a plain TCP socket, bytes exactly as given: for requests no HTTP client
 * would send (control characters in the path, duplicate Host headers, absolute-form targets, header
 * names in every spelling at once). Bounded in time: a server that never answers is a failure.
 */
import { connect } from "node:net";

export interface RawAnswer {
  status: number;
  /** Lower-case names; repeated headers joined with ", " (Set-Cookie kept apart in `setCookie`). */
  headers: Record<string, string>;
  setCookie: string[];
  body: string;
}

/** How long a raw exchange may take before it counts as a hang. */
export const RAW_TIMEOUT_MS = 10_000;

/**
 * Sends `head` (request line and headers, CRLF-separated, without the final empty line) and
 * `body`, and reads the answer until the server closes the connection (`Connection: close` is
 * added). Rejects when nothing complete arrives within RAW_TIMEOUT_MS.
 */
export function rawRequest(port: number, head: string | Buffer, body: Buffer = Buffer.alloc(0)): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${RAW_TIMEOUT_MS} ms`));
    }, RAW_TIMEOUT_MS);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (error) => {
      // A reset after a complete answer is still an answer.
      if (chunks.length === 0) {
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const answer = parse(text);
      if (answer === undefined) reject(new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
      else resolve(answer);
    });
    const headBytes = typeof head === "string" ? Buffer.from(head, "latin1") : head;
    socket.end(Buffer.concat([headBytes, Buffer.from("\r\nConnection: close\r\n\r\n", "latin1"), body]));
  });
}

function parse(text: string): RawAnswer | undefined {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (status === undefined) return undefined;
  const headers: Record<string, string> = {};
  const setCookie: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "set-cookie") setCookie.push(value);
    else headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(status), headers, setCookie, body: decodeBody(text.slice(end + 4), headers) };
}

function decodeBody(body: string, headers: Record<string, string>): string {
  if (!/chunked/i.test(headers["transfer-encoding"] ?? "")) return body;
  let out = "";
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, lineEnd), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/** A GET request head for `target` with `Host: 127.0.0.1:<port>` and any extra header lines. */
export function getHead(port: number, target: string, ...extra: string[]): string {
  return [`GET ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...extra].join("\r\n");
}
