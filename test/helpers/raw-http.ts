/**
 * One HTTP/1.1 request written byte for byte on a TCP socket: the request-target goes out exactly
 * as given (`..;`, `%2e`, `\`, `#`, raw UTF-8), which neither fetch nor node:http allow. For the
 * path-confusion tests, which must reach the gate with what an attacker would send.
 */
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  /** Lower-case header names; repeated headers joined with ", " except set-cookie. */
  headers: Record<string, string>;
  setCookie: string[];
  body: string;
}

/**
 * Sends `METHOD target HTTP/1.1` to `origin` (`http://127.0.0.1:port`) with `Connection: close`
 * on a fresh connection and reads the whole answer. `target` may hold any bytes but CR, LF and
 * space. A fresh connection also matters for requests with a body the gate refuses unread:
 * workerd then closes the connection, and a pooled client would reuse the dead socket.
 */
export function rawRequest(origin: string, target: string | Buffer, headers: Record<string, string> = {}, method = "GET", body = ""): Promise<RawResponse> {
  const url = new URL(origin);
  const length = body === "" ? {} : { "content-length": String(Buffer.byteLength(body)) };
  // A test that names its own Host (or several, in different spellings) sends exactly those.
  const ownHost = Object.keys(headers).some((name) => name.toLowerCase() === "host");
  const head = Object.entries({ ...(ownHost ? {} : { host: url.host }), ...headers, ...length, connection: "close" })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  const request = Buffer.concat([Buffer.from(`${method} `), Buffer.from(target), Buffer.from(` HTTP/1.1\r\n${head}\r\n`), Buffer.from(body)]);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      try {
        resolve(parse(Buffer.concat(chunks)));
      } catch (error) {
        reject(error);
      }
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${method} ${String(target)}`)));
  });
}

function parse(raw: Buffer): RawResponse {
  const split = raw.indexOf("\r\n\r\n");
  if (split < 0) throw new Error(`not an HTTP response: ${JSON.stringify(raw.toString("latin1").slice(0, 200))}`);
  const [statusLine = "", ...lines] = raw.subarray(0, split).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!Number.isInteger(status)) throw new Error(`bad status line: ${statusLine}`);
  const headers: Record<string, string> = {};
  const setCookie: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "set-cookie") setCookie.push(value);
    else headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  let body = raw.subarray(split + 4);
  if (headers["transfer-encoding"]?.toLowerCase() === "chunked") body = dechunk(body);
  return { status, headers, setCookie, body: body.toString("utf8") };
}

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf("\r\n", at);
    const size = parseInt(body.subarray(at, eol).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) return Buffer.concat(out);
    out.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
