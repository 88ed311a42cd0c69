// Demo origin behind kontur-gate, and the recording origin of the test suite (plain node:http).
//
// Every request is recorded (so a test can assert that the origin received nothing, or exactly
// which identity headers arrived). `/` shows who the gate says the user is and whether the
// `X-Auth-Assertion` verifies against the gate's JWKS; the other routes exercise proxying.
//
// Usage as a CLI: node tools/demo-origin/origin.mjs [--port 9091] [--gate-url http://127.0.0.1:8787]

import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { closeOnSignal, listen, readBody, runAsScript } from '../lib/listen.mjs';
import { escapeHtml } from '../lib/html.mjs';

/**
 * @typedef {object} RecordedRequest
 * @property {string} method
 * @property {string} url      path and query, as received
 * @property {Record<string, string | string[] | undefined>} headers  lower-case names
 * @property {string} body     UTF-8 text of the body ('' when none)
 * @property {number} at       Date.now() when the request arrived
 */

/**
 * @typedef {object} Identity
 * @property {string | undefined} user
 * @property {string | undefined} email
 * @property {string | undefined} nameRaw       X-Forwarded-Name as received
 * @property {string | undefined} name          decoded (decodeURIComponent)
 * @property {string | undefined} phone         X-Forwarded-Phone decoded, when CLAIM_HEADERS maps it
 *   (`npm start` does: X-Forwarded-Phone=phone_number)
 * @property {string | undefined} accessToken   X-Forwarded-Access-Token, when the gate passes it
 * @property {string | undefined} accessTokenExpires  X-Forwarded-Access-Token-Expires (Unix seconds)
 * @property {{ status: string, claims?: Record<string, unknown> }} assertion
 *   status: `valid`, `missing`, `not verified` (no gateUrl) or the verification error
 */

/**
 * Starts the origin.
 * @param {{ port?: number, host?: string, gateUrl?: string | URL }} [options]
 *   gateUrl: the gate's public URL, used only to verify X-Auth-Assertion (JWKS at
 *   /_auth/jwks.json, issuer = its origin)
 */
export async function startOrigin({ port = 0, host = '127.0.0.1', gateUrl } = {}) {
  /** @type {RecordedRequest[]} */
  const requests = [];
  const gate = gateUrl ? new URL(gateUrl) : undefined;
  const jwks = gate ? createRemoteJWKSet(new URL('/_auth/jwks.json', gate)) : undefined;
  /** @type {string} set once listening; the assertion's expected audience */
  let ownOrigin = '';

  /**
   * Reads the identity headers the gate added and verifies the assertion.
   * @param {import('node:http').IncomingMessage} req
   * @returns {Promise<Identity>}
   */
  async function identify(req) {
    const nameRaw = header(req, 'x-forwarded-name');
    const phone = header(req, 'x-forwarded-phone');
    return {
      user: header(req, 'x-forwarded-user'),
      email: header(req, 'x-forwarded-email'),
      nameRaw,
      name: nameRaw === undefined ? undefined : decodeName(nameRaw),
      phone: phone === undefined ? undefined : decodeName(phone),
      accessToken: header(req, 'x-forwarded-access-token'),
      accessTokenExpires: header(req, 'x-forwarded-access-token-expires'),
      assertion: await verifyAssertion(header(req, 'x-auth-assertion')),
    };
  }

  /** @param {string | undefined} token */
  async function verifyAssertion(token) {
    if (!token) return { status: 'missing' };
    if (!jwks || !gate) return { status: 'not verified' };
    try {
      const { payload } = await jwtVerify(token, jwks, {
        algorithms: ['ES256', 'EdDSA'],
        issuer: gate.origin,
        audience: ownOrigin,
      });
      return { status: 'valid', claims: payload };
    } catch (error) {
      const err = /** @type {any} */ (error);
      return { status: `${err.code ?? 'error'}: ${err.message}` };
    }
  }

  /** @type {import('node:http').RequestListener} */
  async function handle(req, res) {
    try {
      const body = await readBody(req, 64 * 1024 * 1024);
      requests.push({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: { ...req.headers },
        body: body.toString('utf8'),
        at: Date.now(),
      });
      await route(req, res, body);
    } catch (error) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`origin error: ${/** @type {Error} */ (error).message}\n`);
    }
  }

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   * @param {Buffer} body
   */
  async function route(req, res, body) {
    const url = new URL(req.url ?? '/', 'http://origin.invalid');
    const path = url.pathname;

    if (path === '/echo' || path.startsWith('/echo/')) {
      return sendJson(res, 200, {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: body.toString('utf8'),
      });
    }
    if (path === '/whoami') return sendJson(res, 200, await identify(req));
    if (path === '/redirect') {
      res.writeHead(302, { location: '/echo?from=redirect' });
      return res.end();
    }
    const status = /^\/status\/(\d{3})$/.exec(path);
    if (status) {
      const code = Number(status[1]);
      if (code < 200 || code > 599) return sendText(res, 400, 'status must be 200-599\n');
      const bodyless = code === 204 || code === 304;
      res.writeHead(code, bodyless ? {} : { 'content-type': 'text/plain; charset=utf-8' });
      return res.end(bodyless ? undefined : `status ${code}\n`);
    }
    if (path === '/set-cookie') {
      res.writeHead(200, {
        'content-type': 'text/plain; charset=utf-8',
        'set-cookie': ['a=1; Path=/', 'b=2; Path=/; HttpOnly'],
      });
      return res.end('cookies set\n');
    }
    if (path === '/stream') {
      // No content-length: Node sends it chunked; each chunk leaves 50 ms apart, so a test can
      // tell streaming from buffering.
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      for (let i = 0; i < 5; i += 1) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
        res.write(`chunk ${i}\n`);
      }
      return res.end();
    }
    if (path === '/upload' && req.method === 'POST') {
      return sendJson(res, 200, {
        bytes: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
      });
    }

    const identity = await identify(req);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(demoPage(identity, req));
  }

  const server = await listen(handle, { host, port });
  const displayHost = host.includes(':') ? `[${host}]` : host;
  ownOrigin = `http://${displayHost}:${server.port}`;

  return {
    url: ownOrigin,
    port: server.port,
    requests,
    close: () => server.close(),
  };
}

/**
 * Decodes X-Forwarded-Name. The gate percent-encodes (UTF-8 encodeURIComponent) a name holding
 * anything outside printable ASCII or a `%`, and sends other names unchanged; since an unchanged
 * name contains no `%`, decodeURIComponent is right for both.
 * @param {string} raw
 */
export function decodeName(raw) {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** @param {import('node:http').IncomingMessage} req @param {string} name */
function header(req, name) {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {unknown} data */
function sendJson(res, status, data) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(data, null, 2)}\n`);
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {string} text */
function sendText(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

/** @param {unknown} seconds */
function time(seconds) {
  return typeof seconds === 'number' ? `${seconds} (${new Date(seconds * 1000).toISOString()})` : '';
}

/**
 * The demo page: what the origin learned about the user from the gate.
 * @param {Identity} id
 * @param {import('node:http').IncomingMessage} req
 */
function demoPage(id, req) {
  const claims = id.assertion.claims ?? {};
  /** @param {string} label @param {string} testid @param {unknown} value */
  const row = (label, testid, value) => `<tr><th>${escapeHtml(label)}</th>`
    + `<td data-testid="${testid}">${value === undefined ? '<i>—</i>' : escapeHtml(value)}</td></tr>`;
  const accessToken = id.accessToken === undefined ? undefined : `present (${id.accessToken.length} characters)`;

  return `<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo origin behind kontur-gate</title>
<style>
  body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:32px;max-width:900px}
  table{border-collapse:collapse;margin:8px 0 24px}
  th,td{border:1px solid #ccc;padding:6px 10px;text-align:left;vertical-align:top;font-size:14px}
  th{background:#f4f4f4;font-weight:600;white-space:nowrap}
  td{word-break:break-all}
  nav a,nav button{margin-right:16px;font-size:15px}
  nav form{display:inline}
</style>
</head>
<body>
<h1>Demo origin behind kontur-gate</h1>
<p>This page is served by the origin. Everything below came from the gate with the request
<code data-testid="request">${escapeHtml(`${req.method} ${req.url}`)}</code>.</p>
<nav>
  <a href="/_auth/me">/_auth/me</a>
  <a href="/_auth/logout" data-testid="logout-link">Выйти (GET /_auth/logout)</a>
  <form method="post" action="/_auth/logout"><button type="submit" data-testid="logout-button">Выйти (POST)</button></form>
</nav>
<h2>Identity headers</h2>
<table>
${row('X-Forwarded-User', 'user', id.user)}
${row('X-Forwarded-Email', 'email', id.email)}
${row('X-Forwarded-Name (decoded)', 'name', id.name)}
${row('X-Forwarded-Name (raw)', 'name-raw', id.nameRaw)}
${row('X-Forwarded-Phone (CLAIM_HEADERS)', 'phone', id.phone)}
${row('X-Forwarded-Access-Token', 'access-token', accessToken)}
${row('X-Forwarded-Access-Token-Expires', 'access-token-expires', id.accessTokenExpires)}
</table>
<h2>X-Auth-Assertion</h2>
<table>
${row('verification', 'assertion-status', id.assertion.status)}
${row('sub', 'assertion-sub', claims.sub)}
${row('email', 'assertion-email', claims.email)}
${row('name', 'assertion-name', claims.name)}
${row('phone_number', 'assertion-phone', claims.phone_number)}
${row('htm (method)', 'htm', claims.htm)}
${row('htu (URL)', 'htu', claims.htu)}
${row('iss', 'iss', claims.iss)}
${row('aud', 'aud', Array.isArray(claims.aud) ? claims.aud.join(' ') : claims.aud)}
${row('iat', 'iat', time(claims.iat))}
${row('exp', 'exp', time(claims.exp))}
${row('jti', 'jti', claims.jti)}
</table>
</body>
</html>
`;
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9091' },
      host: { type: 'string', default: '127.0.0.1' },
      'gate-url': { type: 'string', default: 'http://127.0.0.1:8787' },
    },
  });
  const origin = await startOrigin({ port: Number(values.port), host: values.host, gateUrl: values['gate-url'] });
  console.log(`Demo origin: ${origin.url} (assertions verified against ${values['gate-url']})`);
  closeOnSignal(() => origin.close());
}

runAsScript(import.meta.url, main);
