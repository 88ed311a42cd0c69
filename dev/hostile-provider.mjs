// A controllable OpenID provider for the adversarial tests: a small, hand-written authorization
// server (discovery, authorize, token, JWKS) on `localhost` whose every answer a test can bend.
//
// By default it behaves: discovery names its endpoints, `/connect/authorize` checks client_id and
// redirect_uri and sends the browser straight back with a one-time code (no login form: the user is
// always `hostile-user-1`), `/connect/token` checks the client secret, the code, the redirect_uri
// and the PKCE verifier, and answers with an RS256 id_token signed by the key the JWKS publishes.
// A test bends it by setting a *scenario* (see Scenario below): rewrite the id_token's claims or
// header, sign it some other way, replace any endpoint's answer (error, 5xx, HTML, broken JSON),
// delay it or never answer at all, change what goes back to the redirect_uri, rotate the keys.
//
// Never used outside tests. Not a CLI.

import { createHash, createHmac, generateKeyPairSync, randomBytes, sign as signBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

import { listen, readBody } from './listen.mjs';

/** An endpoint's answer exactly as given, instead of the provider's own. */
export class RawAnswer {
  /**
   * @param {number} status
   * @param {string} body
   * @param {Record<string, string>} [headers]
   */
  constructor(status, body, headers = {}) {
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** `new RawAnswer(...)` for one-line scenarios. @param {number} status @param {string} body @param {Record<string, string>} [headers] */
export function raw(status, body, headers) {
  return new RawAnswer(status, body, headers);
}

/**
 * @typedef {object} SigningKey
 * @property {string} kid
 * @property {CryptoKey} privateKey
 * @property {import('jose').JWK} publicJwk   with kid, alg RS256 and use sig
 */

/**
 * @typedef {object} IssueContext
 * @property {'authorization_code' | 'refresh_token'} grant
 * @property {string} issuer
 * @property {string} clientId
 * @property {number} now            epoch seconds
 * @property {SigningKey} key        the key the provider signs with
 * @property {{ publicJwk: import('jose').JWK }[]} published the keys its JWKS publishes
 */

/**
 * @typedef {Record<string, unknown>} Claims
 * @typedef {{ alg: string, kid?: string, typ?: string, [name: string]: unknown }} JoseHeader
 * @typedef {'discovery' | 'jwks' | 'authorize' | 'token'} Endpoint
 */

/**
 * Every hook is optional; without any the provider is well-behaved.
 * @typedef {object} Scenario
 * @property {(doc: Record<string, unknown>) => Record<string, unknown> | RawAnswer} [discovery]
 *   rewrite the discovery document, or answer something else entirely
 * @property {(jwks: { keys: import('jose').JWK[] }) => { keys: import('jose').JWK[] } | RawAnswer} [jwks]
 * @property {(params: URLSearchParams) => void} [callback]  change what goes back to redirect_uri
 *   (`code`, `state`, `iss`, or `error` instead)
 * @property {(claims: Claims, ctx: IssueContext) => Claims} [claims]  rewrite the id_token's claims
 * @property {(header: JoseHeader, ctx: IssueContext) => JoseHeader} [header]  rewrite its header
 * @property {(header: JoseHeader, claims: Claims, ctx: IssueContext) => Promise<string> | string} [sign]
 *   produce the id_token yourself (see signNone, signHmac, signWith)
 * @property {(body: Record<string, unknown>, ctx: IssueContext) => Record<string, unknown> | RawAnswer} [token]
 *   rewrite the token response (a successful one; errors for bad requests are the provider's own)
 * @property {Partial<Record<Endpoint, number>>} [delayMs]  answer this late
 * @property {Endpoint[]} [hang]   never answer these (the connection stays open until close())
 * @property {Endpoint[]} [drop]   close the connection without an answer
 * @property {boolean} [ignorePkce]  accept any code_verifier (a provider without PKCE checks)
 */

/**
 * @typedef {object} HostileProviderOptions
 * @property {string} clientId
 * @property {string} clientSecret
 * @property {string[]} redirectUris   matched exactly
 * @property {number} [port]           0 (default): a free port; the host is always `localhost`
 */

/**
 * @typedef {object} RecordedRequest
 * @property {Endpoint | 'other'} endpoint
 * @property {string} method
 * @property {string} url
 * @property {Record<string, string>} form   the parsed form body of token requests
 */

const ROUTES = Object.freeze({
  discovery: '/.well-known/openid-configuration',
  jwks: '/.well-known/openid-configuration/jwks',
  authorize: '/connect/authorize',
  token: '/connect/token',
});

/** Default subject and claims of the one user this provider knows. */
export const HOSTILE_USER = Object.freeze({
  sub: 'hostile-user-1',
  email: 'hostile@example.kontur.ru',
  name: 'Враждебный Пользователь',
});

/** A fresh RS256 key. @param {string} [kid] @param {number} [modulusLength] @returns {Promise<SigningKey>} */
export async function generateRsaKey(kid = `k-${randomBytes(6).toString('base64url')}`, modulusLength = 2048) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength, extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/**
 * An RSA key of any size as node:crypto objects, for keys too weak for jose to make or use.
 * @param {string} kid @param {number} modulusLength
 */
export function generateRsaKeyObject(kid, modulusLength) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength });
  return { kid, privateKey, publicJwk: /** @type {import('jose').JWK} */ ({ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }) };
}

/** base64url of a JSON value. @param {unknown} value */
function encodeJson(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An unsecured JWT (`alg: none`, empty signature). @param {JoseHeader} header @param {Claims} claims */
export function signNone(header, claims) {
  return `${encodeJson({ ...header, alg: 'none' })}.${encodeJson(claims)}.`;
}

/**
 * An HS256 JWT with `secret` as the HMAC key — e.g. the provider's public key, the classic
 * algorithm-confusion attack on verifiers that take the key type from the token.
 * @param {JoseHeader} header @param {Claims} claims @param {string | Buffer} secret
 */
export function signHmac(header, claims, secret) {
  const input = `${encodeJson({ ...header, alg: 'HS256' })}.${encodeJson(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** An RS256 JWT signed by node:crypto (any key size). @param {import('node:crypto').KeyObject} key @param {JoseHeader} header @param {Claims} claims */
export function signRs256(key, header, claims) {
  const input = `${encodeJson({ ...header, alg: 'RS256' })}.${encodeJson(claims)}`;
  return `${input}.${signBytes('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** A JWT signed with any key jose accepts, the header taken as given. @param {CryptoKey} key @param {JoseHeader} header @param {Claims} claims */
export function signWith(key, header, claims) {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** @param {number} bytes */
const opaque = (bytes = 32) => randomBytes(bytes).toString('base64url');

/**
 * Starts the provider on `http://localhost:<port>`.
 * @param {HostileProviderOptions} options
 */
export async function startHostileProvider({ clientId, clientSecret, redirectUris, port = 0 }) {
  /** @type {Scenario} */
  let scenario = {};
  let key = await generateRsaKey();
  /** @type {{ publicJwk: import('jose').JWK }[]} */
  let published = [key];
  /** @type {Map<string, { redirectUri: string, nonce: string | null, challenge: string | null, scope: string, used: boolean }>} */
  const codes = new Map();
  /** @type {Map<string, { used: boolean, nonce: string | null }>} */
  const refreshTokens = new Map();
  /** Every secret value it handed out, for the tests that scan logs and pages for them. */
  const issued = { codes: /** @type {string[]} */ ([]), accessTokens: /** @type {string[]} */ ([]), refreshTokens: /** @type {string[]} */ ([]), idTokens: /** @type {string[]} */ ([]) };
  /** @type {RecordedRequest[]} */
  const requests = [];
  /** Token requests refused because the code had been used already, or the verifier did not match. */
  const refusals = { codeReuse: 0, pkceMismatch: 0, badClient: 0 };

  const server = await listen((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`hostile provider error: ${error instanceof Error ? error.message : String(error)}`);
    });
  }, { host: 'localhost', port });
  const issuer = `http://localhost:${server.port}`;

  function discoveryDocument() {
    return {
      issuer,
      authorization_endpoint: `${issuer}${ROUTES.authorize}`,
      token_endpoint: `${issuer}${ROUTES.token}`,
      jwks_uri: `${issuer}${ROUTES.jwks}`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      authorization_response_iss_parameter_supported: true,
    };
  }

  /**
   * @param {import('node:http').ServerResponse} res
   * @param {number} status
   * @param {unknown} body  JSON, or a RawAnswer sent as is
   * @param {Record<string, string>} [headers]
   */
  function send(res, status, body, headers = {}) {
    if (body instanceof RawAnswer) {
      res.writeHead(body.status, { 'content-type': 'text/plain; charset=utf-8', ...body.headers });
      res.end(body.body);
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  }

  /** @param {import('node:http').ServerResponse} res @param {string} error @param {number} [status] */
  function oauthError(res, error, status = 400) {
    send(res, status, { error, error_description: `hostile provider: ${error}` });
  }

  /**
   * Delays or withholds the answer as the scenario says; false when it must never be sent.
   * @param {Endpoint} endpoint @param {import('node:http').IncomingMessage} req
   */
  async function pace(endpoint, req) {
    if (scenario.hang?.includes(endpoint)) return false;
    if (scenario.drop?.includes(endpoint)) {
      req.socket.destroy();
      return false;
    }
    const delay = scenario.delayMs?.[endpoint];
    if (delay !== undefined) await sleep(delay);
    return true;
  }

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', issuer);
    const endpoint = /** @type {Endpoint | 'other'} */ (
      /** @type {[Endpoint, string][]} */ (Object.entries(ROUTES)).find(([, path]) => path === url.pathname)?.[0] ?? 'other'
    );
    const body = req.method === 'POST' ? (await readBody(req, 1024 * 1024)).toString('utf8') : '';
    const form = Object.fromEntries(new URLSearchParams(body));
    requests.push({ endpoint, method: req.method ?? 'GET', url: req.url ?? '/', form });
    if (endpoint === 'other') return send(res, 404, { error: 'not_found' });
    if (!(await pace(endpoint, req))) return; // hung or dropped

    switch (endpoint) {
      case 'discovery':
        return send(res, 200, scenario.discovery ? scenario.discovery(discoveryDocument()) : discoveryDocument());
      case 'jwks': {
        const jwks = { keys: published.map((k) => k.publicJwk) };
        return send(res, 200, scenario.jwks ? scenario.jwks(jwks) : jwks);
      }
      case 'authorize':
        return authorize(url, res);
      case 'token':
        return token(req, form, res);
    }
  }

  /** @param {URL} url @param {import('node:http').ServerResponse} res */
  function authorize(url, res) {
    const params = url.searchParams;
    const redirectUri = params.get('redirect_uri') ?? '';
    // Like Kontur: a wrong client or redirect_uri stops on the provider's own page.
    if (params.get('client_id') !== clientId || !redirectUris.includes(redirectUri) || params.get('response_type') !== 'code') {
      return send(res, 400, raw(400, 'unknown client, redirect_uri or response_type'));
    }
    if (!params.get('nonce')) return send(res, 400, raw(400, 'nonce is required'));
    const code = opaque();
    issued.codes.push(code);
    codes.set(code, {
      redirectUri,
      nonce: params.get('nonce'),
      challenge: params.get('code_challenge_method') === 'S256' ? params.get('code_challenge') : null,
      scope: params.get('scope') ?? '',
      used: false,
    });
    const back = new URLSearchParams({ code, iss: issuer });
    const state = params.get('state');
    if (state !== null) back.set('state', state);
    scenario.callback?.(back);
    res.writeHead(302, { location: `${redirectUri}?${back}`, 'cache-control': 'no-store' });
    res.end();
  }

  /**
   * @param {import('node:http').IncomingMessage} req
   * @param {Record<string, string>} form
   * @param {import('node:http').ServerResponse} res
   */
  async function token(req, form, res) {
    if (!authenticated(req, form)) {
      refusals.badClient += 1;
      return oauthError(res, 'invalid_client', 401);
    }
    /** @type {string | null} */
    let nonce = null;
    let scope = '';
    /** @type {IssueContext['grant']} */
    let grant;
    if (form.grant_type === 'authorization_code') {
      grant = 'authorization_code';
      const record = codes.get(form.code ?? '');
      if (record === undefined || record.redirectUri !== form.redirect_uri) return oauthError(res, 'invalid_grant');
      if (record.used) {
        refusals.codeReuse += 1;
        return oauthError(res, 'invalid_grant');
      }
      record.used = true;
      if (!scenario.ignorePkce && record.challenge !== null) {
        const verifier = form.code_verifier ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== record.challenge) {
          refusals.pkceMismatch += 1;
          return oauthError(res, 'invalid_grant');
        }
      }
      nonce = record.nonce;
      scope = record.scope;
    } else if (form.grant_type === 'refresh_token') {
      grant = 'refresh_token';
      const record = refreshTokens.get(form.refresh_token ?? '');
      if (record === undefined || record.used) return oauthError(res, 'invalid_grant');
      record.used = true; // one-time, like Kontur's
      scope = 'openid offline_access';
    } else {
      return oauthError(res, 'unsupported_grant_type');
    }

    const now = Math.floor(Date.now() / 1000);
    /** @type {IssueContext} */
    const ctx = { grant, issuer, clientId, now, key, published };
    /** @type {Claims} */
    let claims = { iss: issuer, aud: clientId, iat: now, exp: now + 300, auth_time: now, ...HOSTILE_USER };
    if (nonce !== null && grant === 'authorization_code') claims.nonce = nonce;
    if (scenario.claims) claims = scenario.claims(claims, ctx);
    /** @type {JoseHeader} */
    let header = { alg: 'RS256', kid: key.kid, typ: 'JWT' };
    if (scenario.header) header = scenario.header(header, ctx);
    const idToken = scenario.sign ? await scenario.sign(header, claims, ctx) : await signWith(key.privateKey, header, claims);
    const accessToken = opaque();
    issued.idTokens.push(idToken);
    issued.accessTokens.push(accessToken);
    /** @type {Record<string, unknown>} */
    let answer = { access_token: accessToken, token_type: 'Bearer', expires_in: 3600, id_token: idToken, scope };
    if (scope.split(' ').includes('offline_access')) {
      const refreshToken = opaque();
      issued.refreshTokens.push(refreshToken);
      refreshTokens.set(refreshToken, { used: false, nonce });
      answer.refresh_token = refreshToken;
    }
    if (scenario.token) {
      const rewritten = scenario.token(answer, ctx);
      if (rewritten instanceof RawAnswer) return send(res, 0, rewritten);
      answer = rewritten;
    }
    send(res, 200, answer);
  }

  /** client_secret_post or client_secret_basic. @param {import('node:http').IncomingMessage} req @param {Record<string, string>} form */
  function authenticated(req, form) {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (basic !== undefined) {
      const [id = '', secret = ''] = Buffer.from(basic, 'base64').toString('utf8').split(':').map((part) => decodeURIComponent(part));
      return id === clientId && secret === clientSecret;
    }
    return form.client_id === clientId && form.client_secret === clientSecret;
  }

  return {
    issuer,
    port: server.port,
    issued,
    requests,
    refusals,
    /** Every secret value handed out so far (codes, access, refresh and id tokens). */
    secrets() {
      return [...issued.codes, ...issued.accessTokens, ...issued.refreshTokens, ...issued.idTokens];
    },
    /** Recorded requests to one endpoint. @param {Endpoint} endpoint */
    requestsTo(endpoint) {
      return requests.filter((request) => request.endpoint === endpoint);
    },
    /** Bends every answer from now on; `{}` is well-behaved. @param {Scenario} next */
    set(next) {
      scenario = next;
    },
    /** Well-behaved again, with nothing recorded. */
    reset() {
      scenario = {};
      requests.length = 0;
      refusals.codeReuse = 0;
      refusals.pkceMismatch = 0;
      refusals.badClient = 0;
    },
    /** The key it signs with now. */
    get key() {
      return key;
    },
    /**
     * Starts signing with a new key. `keepOld`: the JWKS keeps publishing the previous keys (a
     * planned rollover); otherwise only the new key is published (an emergency one).
     * @param {{ keepOld?: boolean }} [options]
     */
    async rotateKey({ keepOld = false } = {}) {
      key = await generateRsaKey();
      published = keepOld ? [key, ...published] : [key];
      return key;
    },
    /** Publishes these keys (signing stays with `key`). @param {{ publicJwk: import('jose').JWK }[]} keys */
    publish(keys) {
      published = keys;
    },
    close: () => server.close(),
  };
}
