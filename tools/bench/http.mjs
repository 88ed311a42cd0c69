// HTTP pieces of the benchmark: the origin every Worker protects, a browser-like login that counts
// its round trips, and load rounds run in a child process (tools/bench/load.mjs).

import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { CookieJar } from '../lib/cookie-jar.mjs';
import { listen } from '../lib/listen.mjs';
import { loginThroughProvider } from '../dev-provider/provider.mjs';
import { NAVIGATE } from '../lib/browser.mjs';

/** The origin's answer: a small page, no Cache-Control (so the gate marks it private, as it would). */
export const ORIGIN_BODY = 'hello from the origin: a small response of about a hundred bytes, as in a JSON API call\n';

/** The rest of a browser's request headers, sent with every benchmark request. */
export const BROWSER = {
  ...NAVIGATE,
  'accept-language': 'ru-RU,ru;q=0.9,en;q=0.8',
  'accept-encoding': 'gzip, deflate, br',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'sec-fetch-user': '?1',
  'upgrade-insecure-requests': '1',
};

/**
 * The origin: every path answers ORIGIN_BODY, except `…/echo`, which answers what it received
 * (method, path, headers) as JSON. Counts requests, and those that carried a gate identity.
 */
export async function startBenchOrigin() {
  const counts = { requests: 0, withUser: 0, withAssertion: 0 };
  const server = await listen((req, res) => {
    counts.requests += 1;
    if (req.headers['x-forwarded-user']) counts.withUser += 1;
    if (req.headers['x-auth-assertion']) counts.withAssertion += 1;
    req.resume();
    if (new URL(req.url ?? '/', 'http://origin.invalid').pathname.endsWith('/echo')) {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(ORIGIN_BODY) });
    res.end(ORIGIN_BODY);
  });
  return { url: `http://127.0.0.1:${server.port}`, counts, close: () => server.close() };
}

const agent = new Agent({ keepAlive: false });

/**
 * An HTTP request that sends exactly the given headers. Node's fetch replaces `Sec-Fetch-Mode`
 * with `cors`, and the gate rightly answers such a request with 401 instead of a login redirect.
 * Never follows redirects.
 * @param {string | URL} url
 * @param {{ method?: string, headers?: Record<string, string>, body?: string }} [init]
 * @returns {Promise<Response>}
 */
export function rawRequest(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      res.on('data', (/** @type {Buffer} */ chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) responseHeaders.append(/** @type {string} */ (res.rawHeaders[i]), /** @type {string} */ (res.rawHeaders[i + 1]));
        const status = /** @type {number} */ (res.statusCode);
        const nullBody = status === 204 || status === 304 || method === 'HEAD';
        resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, headers: responseHeaders }));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A cookie jar over rawRequest that also records every request it makes (status, URL, Set-Cookie). */
class RecordingJar extends CookieJar {
  /** @type {{ status: number, url: string, setCookies: string[] }[]} */
  trail = [];

  /** @override @param {string | URL} url @param {RequestInit} [init] */
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers);
    const cookie = this.header(url);
    if (cookie && !headers.has('cookie')) headers.set('cookie', cookie);
    const response = await rawRequest(url, { method: init.method, headers: Object.fromEntries(headers), body: init.body?.toString() });
    this.store(url, response);
    this.trail.push({ status: response.status, url: String(url), setCookies: response.headers.getSetCookie() });
    return response;
  }
}

/**
 * Signs in like a browser: a navigation to `startUrl` → the protected site's redirect → the dev
 * provider's login form (`login`/`login`) → the callback → the page itself (must be 200).
 * @param {string} startUrl
 * @param {{ login?: string }} [options]
 */
export async function browserLogin(startUrl, { login = 'demo' } = {}) {
  const jar = new RecordingJar();
  const started = performance.now();
  const first = await jar.fetch(startUrl, { headers: NAVIGATE });
  await first.body?.cancel();
  const authorize = first.headers.get('location');
  if (first.status < 300 || first.status > 399 || !authorize) throw new Error(`${startUrl} answered ${first.status}, not a login redirect`);
  const callbackUrl = await loginThroughProvider(new URL(authorize, startUrl), { login, password: login, cookieJar: jar });
  const callback = await jar.fetch(callbackUrl, { headers: NAVIGATE });
  await callback.body?.cancel();
  const back = callback.headers.get('location');
  if (callback.status < 300 || callback.status > 399 || !back) throw new Error(`the callback answered ${callback.status}`);
  const page = await jar.fetch(new URL(back, callbackUrl), { headers: NAVIGATE });
  const body = await page.text();
  if (page.status !== 200) throw new Error(`after login ${back} answered ${page.status}: ${body.slice(0, 200)}`);
  return {
    ms: performance.now() - started,
    requests: jar.trail.length,
    redirects: jar.trail.filter((step) => step.status >= 300 && step.status <= 399).length,
    /** Set-Cookie lines the callback sent (the new session). */
    callbackSetCookies: jar.trail.find((step) => step.url === callbackUrl)?.setCookies ?? [],
    /** The Cookie header a browser would now send to `startUrl`. */
    cookie: jar.header(startUrl) ?? '',
  };
}

const LOAD_SCRIPT = fileURLToPath(new URL('./load.mjs', import.meta.url));

/**
 * One load round in a child process (see tools/bench/load.mjs).
 * @param {{ url: string, headers?: Record<string, string>, seconds: number, connections: number }} options
 * @returns {Promise<{ requests: number, seconds: number, rps: number, p50: number, p99: number, non2xx: number, errors: number }>}
 */
export async function loadRound(options) {
  const child = spawn(process.execPath, [LOAD_SCRIPT, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  child.stderr.on('data', (chunk) => (err += chunk));
  const code = await new Promise((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`load round against ${options.url} failed: ${err.trim()}`);
  return JSON.parse(out);
}
