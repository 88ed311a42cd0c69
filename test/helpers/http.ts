/**
 * A small cookie-keeping HTTP client for integration tests: it behaves like a browser where the
 * gate cares (cookies per host, redirects walked one hop at a time) and nothing more.
 *
 * Cookies (tools/lib/cookie-jar.mjs) are kept per hostname, not per port, as browsers do; run
 * the gate on 127.0.0.1 and the provider on localhost so their cookies stay apart.
 *
 * Requests go out through `node:http`, not `fetch`: Node's fetch overwrites `Sec-Fetch-Mode` with
 * `cors`, and the gate decides between a login redirect and a 401 on exactly that header.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { CookieJar } from "../../tools/lib/cookie-jar.mjs";

/** Anything `new Headers()` accepts (Node's types have no global HeadersInit without the DOM lib). */
export type HeadersLike = ConstructorParameters<typeof Headers>[0];

/** One step of a redirect chain. */
export interface Hop {
  /** The URL requested in this step. */
  url: string;
  method: string;
  status: number;
  /** The Location header as sent (possibly relative), or null. */
  location: string | null;
  setCookie: string[];
  /** The response; its body is already discarded for redirect hops, unread for the last one. */
  response: Response;
}

export interface FollowOptions {
  /** Redirects to follow before giving up with an error (default 10). */
  maxHops?: number;
  /** The first request (method, body, headers); later hops are plain GETs as in browsers. */
  init?: RequestInit;
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);
const NO_BODY = new Set([101, 204, 205, 304]);

async function bodyBytes(body: NonNullable<RequestInit["body"]>): Promise<Buffer | Readable> {
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ReadableStream) return Readable.fromWeb(body as import("node:stream/web").ReadableStream);
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return Buffer.from(body as ArrayBuffer);
  return Buffer.from(await new Response(body).arrayBuffer());
}

/** One HTTP request with exactly the given headers, answered as a fetch Response (body streamed). */
async function sendRaw(url: URL, method: string, headers: Headers, body: RequestInit["body"] | null): Promise<Response> {
  if (body instanceof URLSearchParams && !headers.has("content-type")) {
    headers.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
  }
  const payload = body === null || body === undefined ? null : await bodyBytes(body);
  return new Promise((resolve, reject) => {
    // A fresh connection per request: workerd may close one after answering without reading the body,
    // and a pooled socket would then fail the next request with "socket hang up".
    const request = httpRequest(url, { method, headers: Object.fromEntries(headers), agent: false }, (incoming: IncomingMessage) => {
      const responseHeaders = new Headers();
      for (let i = 0; i < incoming.rawHeaders.length; i += 2) responseHeaders.append(incoming.rawHeaders[i]!, incoming.rawHeaders[i + 1]!);
      const status = incoming.statusCode ?? 502;
      const hasBody = method !== "HEAD" && !NO_BODY.has(status);
      if (!hasBody) incoming.resume();
      resolve(new Response(hasBody ? (Readable.toWeb(incoming) as ReadableStream) : null, { status, headers: responseHeaders }));
    });
    request.on("error", reject);
    if (payload === null) request.end();
    else if (payload instanceof Readable) payload.pipe(request);
    else request.end(payload);
  });
}

export class HttpClient {
  readonly jar = new CookieJar();

  /** Headers sent with every request (e.g. a browser-like User-Agent or Accept). */
  constructor(private readonly defaultHeaders: Record<string, string> = {}) {}

  /**
   * One request, never following redirects. Jar cookies for the URL are sent unless `init`
   * carries its own Cookie header, which is then sent exactly as given. Set-Cookie is stored.
   */
  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const headers = new Headers(this.defaultHeaders);
    for (const [name, value] of new Headers(init.headers)) headers.set(name, value);
    if (!headers.has("cookie")) {
      const cookie = this.jar.header(target);
      if (cookie !== undefined) headers.set("cookie", cookie);
    }
    const response = await sendRaw(target, init.method ?? "GET", headers, init.body ?? null);
    this.jar.store(target, response);
    return response;
  }

  get(url: string | URL, headers?: HeadersLike): Promise<Response> {
    return this.request(url, headers === undefined ? {} : { headers });
  }

  /** POSTs an application/x-www-form-urlencoded form, as a browser submitting a <form>. */
  postForm(url: string | URL, fields: Record<string, string>, headers?: HeadersLike): Promise<Response> {
    return this.request(url, { method: "POST", body: new URLSearchParams(fields), ...(headers === undefined ? {} : { headers }) });
  }

  /**
   * Requests `url` and follows redirects, returning every hop (the last one is the first
   * non-redirect response). 303, and 301/302 after a POST, continue as GET without a body.
   */
  async follow(url: string | URL, options: FollowOptions = {}): Promise<Hop[]> {
    const maxHops = options.maxHops ?? 10;
    const hops: Hop[] = [];
    let current = new URL(url);
    let init: RequestInit = options.init ?? {};
    for (;;) {
      const method = (init.method ?? "GET").toUpperCase();
      const response = await this.request(current, init);
      const location = response.headers.get("location");
      const hop: Hop = {
        url: current.href,
        method,
        status: response.status,
        location,
        setCookie: response.headers.getSetCookie(),
        response,
      };
      hops.push(hop);
      if (!REDIRECT.has(response.status) || location === null) return hops;
      // Free the connection: nobody reads a redirect's body.
      await response.body?.cancel();
      if (hops.length > maxHops) {
        throw new Error(`more than ${maxHops} redirects:\n${hops.map((h) => `${h.status} ${h.url}`).join("\n")}`);
      }
      // Browsers turn 303, and 301/302 after a POST, into a GET without a body.
      const asGet = response.status === 303 || (response.status <= 302 && method === "POST");
      // Headers given for the first request (e.g. Sec-Fetch-Mode) stay; a fixed Cookie header
      // would override the jar on other hosts, so it is dropped after the first hop.
      const headers = new Headers(init.headers);
      headers.delete("cookie");
      if (asGet) {
        headers.delete("content-type");
        headers.delete("content-length");
      }
      init = asGet ? { headers } : { ...init, headers };
      current = new URL(location, current);
    }
  }
}
