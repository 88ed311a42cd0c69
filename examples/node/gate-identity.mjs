// Who is the user? — for a Node origin behind kontur-gate.
//
// The gate sends every request it lets through with the user's identity in headers and a signed
// X-Auth-Assertion (a 60-second JWT). When the origin can be reached other than through the gate,
// only the assertion is proof: it is verified here against the gate's public keys
// (/_auth/jwks.json), for this origin (aud) and, when the assertion names one, for this very
// request (htm, htu: the gate's default ASSERTION_MODE=request; ASSERTION_MODE=session assertions
// carry none).
//
// Works as Express middleware and with plain node:http alike (it uses only Node's req/res).
// Needs `jose` (npm install jose).

import { createRemoteJWKSet, jwtVerify } from 'jose';

/**
 * X-Forwarded-Name: a name in printable ASCII without `%` comes as is, any other is UTF-8
 * percent-encoded, so decodeURIComponent is right for both (`%D0%98%D0%B2…` → `Ив…`).
 * @param {string | undefined} raw
 */
export function decodeName(raw) {
  if (raw === undefined) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * @param {{ gateUrl: string, originUrl: string, clockTolerance?: number }} options
 *   gateUrl: the site's public URL, where the gate runs (`https://site.example`): the assertion's
 *   issuer and the home of /_auth/jwks.json. originUrl: this app's own URL as the gate forwards to
 *   it (ORIGIN_URL; `https://site.example` too when the Worker sits on a route in front of it).
 */
export function createGateVerifier({ gateUrl, originUrl, clockTolerance = 5 }) {
  const issuer = new URL(gateUrl).origin;
  const audience = new URL(originUrl).origin;
  // Fetched once, cached, fetched again when a token names an unknown kid (key rotation).
  const keys = createRemoteJWKSet(new URL('/_auth/jwks.json', issuer));

  /**
   * The verified user of one request, or an Error saying why not.
   * @param {{ method: string, url: string, headers: Record<string, string | string[] | undefined> }} req
   *   url: the request target as received (`/path?query`)
   */
  return async function verify(req) {
    const token = req.headers['x-auth-assertion'];
    if (typeof token !== 'string' || token === '') throw new Error('no X-Auth-Assertion: the request did not come through the gate');
    const { payload } = await jwtVerify(token, keys, {
      issuer,
      audience,
      algorithms: ['ES256', 'EdDSA'],
      maxTokenAge: 60 + clockTolerance,
      clockTolerance,
      requiredClaims: ['sub', 'iat', 'exp'],
    });
    // Made for this request: not one replayed from another method or URL within its 60 seconds.
    // Checked when the assertion names them (ASSERTION_MODE=request, the gate's default); an
    // ASSERTION_MODE=session assertion names no request and is valid for any within its lifetime.
    const expected = new URL(req.url, audience).href;
    if ('htm' in payload && payload.htm !== req.method) throw new Error(`assertion made for ${payload.htm}, not ${req.method}`);
    if ('htu' in payload && payload.htu !== expected) throw new Error(`assertion made for ${payload.htu}, not ${expected}`);
    return {
      sub: /** @type {string} */ (payload.sub),
      // The gate marks an address the provider has not verified with email_verified: false; such
      // an address is not the user's proven e-mail, so it is not handed on as one.
      email: typeof payload.email === 'string' && payload.email_verified !== false ? payload.email : undefined,
      name: typeof payload.name === 'string' ? payload.name : undefined, // raw UTF-8 inside the JWT
    };
  };
}

/**
 * Express (or node:http) middleware: puts the verified user on `req.user`, or answers 401.
 * @param {Parameters<typeof createGateVerifier>[0]} options
 */
export function requireGateIdentity(options) {
  const verify = createGateVerifier(options);
  return async function gateIdentity(
    /** @type {import('node:http').IncomingMessage & { user?: unknown, originalUrl?: string }} */ req,
    /** @type {import('node:http').ServerResponse} */ res,
    /** @type {(error?: unknown) => void} */ next,
  ) {
    try {
      req.user = await verify({ method: req.method ?? 'GET', url: req.originalUrl ?? req.url ?? '/', headers: req.headers });
    } catch (error) {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(JSON.stringify({ error: 'unauthenticated', reason: error instanceof Error ? error.message : String(error) }));
      return;
    }
    next();
  };
}
