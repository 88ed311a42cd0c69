// Development OpenID provider that behaves like Kontur's (Контур.ID, an IdentityServer), built on
// oidc-provider. Used by `npm start` and by the test suite; never in production.
//
// What it copies from Kontur (see /work/shared/KONTUR.md):
// - issuer without trailing slash, IdentityServer routes (/connect/*, JWKS under discovery);
// - `nonce` mandatory whenever `openid` is requested (refused on an error page, not redirected);
// - RS256 id_tokens living 5 minutes that carry only protocol claims (`sub`, `auth_time`, `sid`, …),
//   as IdentityServer's id_token issued together with an access token does: profile, e-mail and
//   phone come from /connect/userinfo (`claimsInIdToken: true` gives the friendlier shape where the
//   id_token carries them too);
// - opaque access tokens living 1 hour (Kontur's token example says `expires_in: 3600`); userinfo
//   answers 401 for a revoked or expired token and for a disabled or deleted account;
// - RFC 7009 revocation at /connect/revocation that really revokes;
// - one-time refresh tokens (a reused one gets `invalid_grant`);
// - refresh tokens for `offline_access` without the client sending `prompt=consent`;
// - consent granted silently, Cyrillic demo users, a Russian login page;
// - client_secret_post and client_secret_basic both accepted for every client;
// - optionally a client not set up for PKCE, whose code exchange with a `code_verifier` gets a bare
//   `invalid_grant` (`pkce: 'reject'`: an old IdentityServer that does not advertise PKCE either;
//   `pkce: 'refuse'`: discovery advertises S256 all the same).
// Tests change accounts at runtime with disableUser / enableUser / updateUser / removeUser.
//
// Usage as a CLI: node tools/dev-provider/provider.mjs --help

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { exportJWK, generateKeyPair, calculateJwkThumbprint } from 'jose';

import { CookieJar } from '../lib/cookie-jar.mjs';
import { parseForms } from './html-form.mjs';
import { closeOnSignal, listen, runAsScript } from '../lib/listen.mjs';
import { DEMO_USERS, SCOPE_CLAIMS, createAccounts } from './accounts.mjs';
import { interactionRoutes } from './interactions.mjs';
import { createMemoryStore } from './store.mjs';
import { errorPage, loggedOutPage, logoutPage } from './views.mjs';

export { DEMO_USERS };

const { Provider, errors } = await importOidcProviderQuietly();

/** IdentityServer's endpoint layout, as Kontur publishes it. */
export const ROUTES = Object.freeze({
  authorization: '/connect/authorize',
  token: '/connect/token',
  userinfo: '/connect/userinfo',
  end_session: '/connect/endsession',
  revocation: '/connect/revocation',
  introspection: '/connect/introspect',
  jwks: '/.well-known/openid-configuration/jwks',
});
const DISCOVERY_PATH = '/.well-known/openid-configuration';

/**
 * @typedef {object} ClientOptions
 * @property {string} client_id
 * @property {string} client_secret
 * @property {string[]} redirect_uris   matched exactly, as Kontur does
 * @property {string[]} [post_logout_redirect_uris]
 * @property {'client_secret_post' | 'client_secret_basic'} [token_endpoint_auth_method]
 *   registered method (default client_secret_post); the other one is accepted too, as at Kontur
 * @property {string} [backchannel_logout_uri]  where the provider POSTs logout tokens when the
 *   user logs out at the provider (OpenID Connect Back-Channel Logout 1.0); with it, id_tokens
 *   carry `sid` and logout tokens name it (backchannel_logout_session_required). Kontur may not
 *   offer this at all.
 */

/**
 * @typedef {object} ProviderOptions
 * @property {number} [port]          0 (default) = a free port; always on host `localhost`
 * @property {ClientOptions[]} [clients]  default: one client `kontur-gate-dev` for
 *   http://127.0.0.1:8787 (see DEFAULT_CLIENT)
 * @property {'optional' | 'required' | 'reject' | 'refuse'} [pkce]  optional (default): S256
 *   advertised and checked when sent; required: authorization without code_challenge fails;
 *   reject: an old IdentityServer: discovery does not advertise PKCE and a token request carrying
 *   `code_verifier` gets 400 invalid_grant; refuse: discovery advertises S256, but the client is
 *   not set up for PKCE, so a `code_verifier` gets that bare invalid_grant all the same
 * @property {boolean} [claimsInIdToken]  default false: IdentityServer's shape, the id_token of the
 *   code flow carries protocol claims only and profile/email/phone come from userinfo. true: the
 *   id_token carries them as well (AlwaysIncludeUserClaimsInIdToken; the hybrid flow's shape)
 * @property {boolean} [endSession]   advertise and serve end_session_endpoint (default true)
 * @property {number} [accessTokenTTL]  seconds, default 3600 (Kontur's token example: expires_in 3600)
 * @property {number} [idTokenTTL]      seconds, default 300 (Kontur: 5 min)
 * @property {number} [refreshTokenTTL] seconds, default 1296000 (Kontur: 15 days)
 * @property {number} [codeTTL]         seconds, default 300 (Kontur: 5 min)
 * @property {boolean} [alwaysIssueRefreshToken]  default false: a refresh token only when the
 *   granted scope contains `offline_access`, exactly like Kontur — so the gate's default scopes
 *   (`openid profile email`) get no refresh token here either, and that path stays tested.
 *   true: every code exchange also returns a refresh token (handy for quick experiments).
 * @property {boolean} [revokeOnReuse]  default false: a reused refresh token or authorization
 *   code gets invalid_grant and nothing else happens, as in IdentityServer (the request that won a
 *   race keeps its tokens). true: oidc-provider's own behaviour, which also revokes every token
 *   of that login (the winner's new refresh token included), as the OAuth 2.0 Security BCP
 *   suggests.
 * @property {boolean} [ignoreMaxAge]  default false: `max_age` is honoured (a login older than it
 *   is asked again, as at Kontur). true: a provider that ignores it (the parameter is dropped
 *   before oidc-provider sees it), so tests can show the gate's step-up failing closed
 * @property {import('./accounts.mjs').DemoUser[]} [users]  default DEMO_USERS
 * @property {{ keys: object[] }} [jwks]  private signing keys (JWK set); default: a fresh RSA key
 * @property {string[]} [cookieKeys]  keys signing the provider's cookies; default: fresh random
 * @property {string} [loginHint]     text under the login form (npm start shows the demo login)
 * @property {(message: string, error?: unknown) => void} [log]  receives server errors; default
 *   silent
 */

/**
 * @typedef {object} ProviderStats
 * @property {{ authorization_code: number, refresh_token: number, [grantType: string]: number }} tokenRequests
 *   token endpoint requests by grant_type, successful or not
 * @property {number} refreshReuse  refresh requests that presented an already-used refresh token
 * @property {number} logins        successful logins through the form
 * @property {number} userinfo      requests to the userinfo endpoint, answered or not
 * @property {{ AccessToken: number, RefreshToken: number }} revoked  tokens revoked at the
 *   revocation endpoint, by kind
 */

/** The client `npm start` uses; also the default when no `clients` are given. */
export const DEFAULT_CLIENT = Object.freeze({
  client_id: 'kontur-gate-dev',
  client_secret: 'kontur-gate-dev-secret',
  redirect_uris: ['http://127.0.0.1:8787/_auth/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1:8787/_auth/signed-out', 'http://127.0.0.1:8787/'],
  token_endpoint_auth_method: /** @type {const} */ ('client_secret_post'),
});

/**
 * Starts the development provider on `http://localhost:<port>`.
 * @param {ProviderOptions} [options]
 */
export async function startProvider(options = {}) {
  const {
    port = 0,
    clients = [DEFAULT_CLIENT],
    pkce = 'optional',
    endSession = true,
    accessTokenTTL = 3600,
    claimsInIdToken = false,
    idTokenTTL = 300,
    refreshTokenTTL = 15 * 24 * 3600,
    codeTTL = 300,
    alwaysIssueRefreshToken = false,
    revokeOnReuse = false,
    ignoreMaxAge = false,
    users = DEMO_USERS,
    loginHint,
    log = () => {},
  } = options;
  if (!['optional', 'required', 'reject', 'refuse'].includes(pkce)) {
    throw new TypeError(`pkce must be optional, required, reject or refuse, got ${pkce}`);
  }

  const jwks = options.jwks ?? { keys: [await generateSigningKey()] };
  const cookieKeys = options.cookieKeys ?? [randomBytes(32).toString('base64url')];
  const accounts = createAccounts(users);
  // oidc-provider answers a reused code or refresh token by revoking the whole grant. To keep
  // IdentityServer's gentler behaviour, both hooks that revocation goes through (the grant policy
  // and the adapter's revokeByGrantId) skip it during token requests: at the token endpoint
  // oidc-provider revokes only because of such a reuse.
  const keepOnReuse = () => !revokeOnReuse && Provider.ctx?.oidc?.route === 'token';
  // IdentityServer revokes just the access token presented to its revocation endpoint;
  // oidc-provider would take every token of the grant (the refresh token too) with it.
  const keepOnAccessTokenRevocation = () => Provider.ctx?.oidc?.route === 'revocation' && Boolean(Provider.ctx.oidc.entities?.AccessToken);
  const store = createMemoryStore({
    keepGrantTokens: () => keepOnReuse() || keepOnAccessTokenRevocation(),
    alreadyConsumed: (model) => new errors.InvalidGrant(
      model === 'RefreshToken' ? 'refresh token already used' : 'authorization code already consumed',
    ),
  });
  /** @type {ProviderStats} */
  const stats = {
    tokenRequests: { authorization_code: 0, refresh_token: 0 },
    refreshReuse: 0,
    logins: 0,
    userinfo: 0,
    revoked: { AccessToken: 0, RefreshToken: 0 },
  };

  // The port must be known before the issuer (part of every token), so bind first and attach the
  // provider's handler afterwards.
  /** @type {import('node:http').RequestListener} */
  let handler = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = await listen((req, res) => handler(req, res), { host: 'localhost', port });
  const issuer = `http://localhost:${server.port}`;
  try {
    return await configure(issuer);
  } catch (error) {
    await server.close();
    throw error;
  }

  /** Builds the oidc-provider instance on the bound port and returns the running provider. */
  async function configure(/** @type {string} */ issuer) {
    const provider = new Provider(issuer, {
      adapter: store.adapter,
      clients: [], // all clients live in the adapter so addClient() can add or replace them later
      clientAuthMethods: ['client_secret_post', 'client_secret_basic'],
      responseTypes: ['code'],
      scopes: ['openid', 'profile', 'email', 'phone', 'offline_access'],
      claims: SCOPE_CLAIMS,
      // true (oidc-provider's default) is IdentityServer's: an id_token issued with an access token
      // carries no scope claims, userinfo does.
      conformIdTokenClaims: !claimsInIdToken,
      allowOmittingSingleRegisteredRedirectUri: false, // Kontur requires redirect_uri
      findAccount: accounts.findAccount,
      jwks,
      cookies: { keys: cookieKeys },
      routes: ROUTES,
      pkce: { required: () => pkce === 'required' },
      // Kontur: nonce is mandatory with `openid`. Checked as an "extra parameter" validator, the one
      // hook oidc-provider runs on every authorization request after the client and redirect_uri are
      // known; allow_redirect=false makes it an error page, not a redirect back to the client.
      extraParams: {
        nonce(/** @type {any} */ ctx, /** @type {unknown} */ value) {
          const scopes = String(ctx.oidc.params.scope ?? '').split(' ');
          if (scopes.includes('openid') && !value) {
            const error = new errors.InvalidRequest('nonce is required when the openid scope is requested');
            error.allow_redirect = false;
            throw error;
          }
        },
      },
      rotateRefreshToken: true, // one-time refresh tokens: each refresh returns a new one; reuse → invalid_grant
      issueRefreshToken: async (/** @type {any} */ _ctx, /** @type {any} */ client, /** @type {any} */ code) =>
        client.grantTypeAllowed('refresh_token')
        && (alwaysIssueRefreshToken || code.scopes.has('offline_access')),
      // IdentityServer's tokens do not die with the login cookie; logging out at the provider does
      // not revoke them either.
      expiresWithSession: async () => false,
      ttl: {
        AccessToken: accessTokenTTL,
        AuthorizationCode: codeTTL,
        IdToken: idTokenTTL,
        RefreshToken: refreshTokenTTL,
        Interaction: 3600,
        Session: 14 * 24 * 3600,
        Grant: 14 * 24 * 3600,
      },
      revokeGrantPolicy: (/** @type {any} */ ctx) => {
        if (keepOnReuse()) return false;
        // oidc-provider's default: revoking an access token does not end the whole grant
        return !(ctx.oidc.route === 'revocation' && ctx.oidc.entities.AccessToken);
      },
      clientBasedCORS: () => false, // the gate talks to the provider server-to-server only
      // oidc-provider refuses to POST logout tokens to loopback addresses (its SSRF guard, a
      // dispatcher it passes in), but here the gate is on 127.0.0.1: drop the guard, keep the rest.
      fetch: (/** @type {string} */ url, /** @type {RequestInit & { dispatcher?: unknown }} */ options) => {
        const { dispatcher: _guard, ...rest } = options;
        return globalThis.fetch(url, rest);
      },
      renderError: async (/** @type {any} */ ctx, /** @type {Record<string, unknown>} */ out) => {
        ctx.type = 'html';
        ctx.body = errorPage(out);
      },
      features: {
        devInteractions: { enabled: false },
        pushedAuthorizationRequests: { enabled: false }, // Kontur has no PAR
        dPoP: { enabled: false }, // nor DPoP
        revocation: {
          enabled: true,
          allowedPolicy: async (/** @type {any} */ _ctx, /** @type {any} */ client, /** @type {any} */ token) =>
            token.clientId === client.clientId,
        },
        // For clients registered with a backchannel_logout_uri only; the others never see it.
        backchannelLogout: { enabled: true },
        rpInitiatedLogout: {
          enabled: endSession,
          logoutSource: async (/** @type {any} */ ctx, /** @type {string} */ form) => {
            ctx.type = 'html';
            ctx.body = logoutPage(form);
          },
          postLogoutSuccessSource: async (/** @type {any} */ ctx) => {
            ctx.type = 'html';
            ctx.body = loggedOutPage();
          },
        },
      },
    });

    provider.on('grant.success', (/** @type {any} */ ctx) => countTokenRequest(ctx));
    provider.on('grant.error', (/** @type {any} */ ctx, /** @type {any} */ error) => {
      countTokenRequest(ctx);
      if (error?.error_detail === 'refresh token already used') stats.refreshReuse += 1;
    });
    provider.on('server_error', (/** @type {any} */ ctx, /** @type {unknown} */ error) => {
      log(`provider: server error on ${ctx.method} ${ctx.path}`, error);
    });

    /** @param {any} ctx */
    function countTokenRequest(ctx) {
      const grantType = ctx.oidc?.params?.grant_type;
      if (typeof grantType === 'string') {
        stats.tokenRequests[grantType] = (stats.tokenRequests[grantType] ?? 0) + 1;
      }
    }

    provider.use(interactionRoutes(provider, accounts, { stats, hint: loginHint }));
    provider.use(addConsentForOfflineAccess);
    provider.use(countUserinfoAndRevocation(stats));
    if (pkce === 'reject') provider.use(hidePkce);
    if (pkce === 'reject' || pkce === 'refuse') provider.use(refuseCodeVerifier);
    if (ignoreMaxAge) provider.use(dropMaxAge);

    /** @type {ReturnType<typeof clientMetadata>[]} */
    const registered = [];

    /**
     * Registers (or replaces) a client. Useful when the gate's port, hence its redirect_uri, is
     * only known after the provider started.
     * @param {ClientOptions} client
     */
    async function addClient(client) {
      const metadata = clientMetadata(client);
      const clients = store.adapter('Client');
      const previous = await clients.find(metadata.client_id);
      await clients.upsert(metadata.client_id, metadata);
      try {
        // Validate now, so a bad client fails here rather than on the first login.
        await provider.Client.find(metadata.client_id);
      } catch (error) {
        if (previous) await clients.upsert(metadata.client_id, previous);
        else await clients.destroy(metadata.client_id);
        throw error;
      }
      const index = registered.findIndex((c) => c.client_id === metadata.client_id);
      if (index === -1) registered.push(metadata);
      else registered[index] = metadata;
      return metadata;
    }

    for (const client of clients) await addClient(client);

    handler = provider.callback();

    return {
      issuer,
      port: server.port,
      stats,
      /** the private signing keys, so tests can sign logout tokens exactly as the provider would */
      jwks,
      /** the registered clients' metadata (client_id, client_secret, redirect_uris, ...) */
      clients: registered,
      addClient,
      /** the demo users (login, password, claims) */
      users: () => accounts.list(),
      /**
       * Deletes a user (by login or sub): their next refresh gets invalid_grant, as when a Kontur
       * account is deleted or consent is withdrawn.
       */
      removeUser: (/** @type {string} */ loginOrSub) => accounts.remove(loginOrSub),
      /**
       * Disables an account (by login or sub), as Kontur does for a blocked user: userinfo answers
       * 401 for its tokens, refresh gets invalid_grant, the login form refuses it.
       */
      disableUser: (/** @type {string} */ loginOrSub) => accounts.setDisabled(loginOrSub, true),
      enableUser: (/** @type {string} */ loginOrSub) => accounts.setDisabled(loginOrSub, false),
      /**
       * Changes an account's claims (by login or sub), e.g. a new name or e-mail at Kontur: the next
       * userinfo answer carries them. A claim set to `undefined` is removed.
       */
      updateUser: (/** @type {string} */ loginOrSub, /** @type {Record<string, unknown>} */ claims) =>
        accounts.update(loginOrSub, claims),
      /** the underlying oidc-provider instance, for anything not covered here */
      provider,
      /** Resets the counters in `stats`. */
      resetStats() {
        // in place, so references a test holds stay live
        for (const grantType of Object.keys(stats.tokenRequests)) stats.tokenRequests[grantType] = 0;
        stats.refreshReuse = 0;
        stats.logins = 0;
        stats.userinfo = 0;
        stats.revoked.AccessToken = 0;
        stats.revoked.RefreshToken = 0;
      },
      async close() {
        await server.close();
        store.clear();
      },
    };
  }
}

/**
 * oidc-provider strips `offline_access` unless the request has `prompt=consent` (OpenID Connect
 * Core §11). Kontur does not need that, so add the prompt here before the provider sees the query;
 * the consent itself is granted automatically by the interaction handler.
 * @param {any} ctx @param {() => Promise<void>} next
 */
async function addConsentForOfflineAccess(ctx, next) {
  if (ctx.method === 'GET' && ctx.path === ROUTES.authorization) {
    const { scope, prompt } = ctx.query;
    if (typeof scope === 'string' && scope.split(' ').includes('offline_access')
      && (prompt === undefined || typeof prompt === 'string')) {
      const prompts = (prompt ?? '').split(' ').filter(Boolean);
      // prompt=none must stay alone; such a request simply gets no refresh token.
      if (!prompts.includes('consent') && !prompts.includes('none')) {
        ctx.query = { ...ctx.query, prompt: [...prompts, 'consent'].join(' ') };
      }
    }
  }
  return next();
}

/**
 * Counts userinfo requests and revoked tokens (by kind) in `stats`, so tests can tell what the
 * gate asked and what it revoked.
 * @param {ProviderStats} stats
 */
function countUserinfoAndRevocation(stats) {
  return async function countUserinfoAndRevocation(/** @type {any} */ ctx, /** @type {() => Promise<void>} */ next) {
    if (ctx.path === ROUTES.userinfo) stats.userinfo += 1;
    await next();
    if (ctx.path === ROUTES.revocation && ctx.status === 200) {
      for (const kind of /** @type {const} */ (['AccessToken', 'RefreshToken'])) {
        if (ctx.oidc?.entities?.[kind]) stats.revoked[kind] += 1;
      }
    }
  };
}

/**
 * `pkce: 'reject'`: an old IdentityServer; discovery does not advertise PKCE.
 * @param {any} ctx @param {() => Promise<void>} next
 */
async function hidePkce(ctx, next) {
  await next();
  if (ctx.method === 'GET' && ctx.path === DISCOVERY_PATH && ctx.body && typeof ctx.body === 'object') {
    delete ctx.body.code_challenge_methods_supported;
  }
}

/**
 * `pkce: 'reject'` and `'refuse'`: a client not set up for PKCE. A code exchange that carries
 * `code_verifier` is answered with a bare 400 invalid_grant before oidc-provider sees it (the code
 * stays unused, as at IdentityServer). The body is read here, so it is handed on as a string in
 * `ctx.request.body`, where oidc-provider looks for an already-consumed body.
 * @param {any} ctx @param {() => Promise<void>} next
 */
async function refuseCodeVerifier(ctx, next) {
  if (ctx.method !== 'POST' || ctx.path !== ROUTES.token) return next();
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const body = Buffer.concat(chunks).toString('utf8');
  const params = new URLSearchParams(body);
  if (params.get('grant_type') === 'authorization_code' && params.has('code_verifier')) {
    ctx.status = 400;
    ctx.body = { error: 'invalid_grant' };
    return undefined;
  }
  ctx.request.body = body;
  return next();
}

/**
 * `ignoreMaxAge: true`: a provider that does not implement `max_age`. The id_token still carries
 * the `auth_time` of the provider session's login (require_auth_time), however old.
 * @param {any} ctx @param {() => Promise<void>} next
 */
async function dropMaxAge(ctx, next) {
  if (ctx.method === 'GET' && ctx.path === ROUTES.authorization && 'max_age' in ctx.query) {
    const { max_age: _dropped, ...rest } = ctx.query;
    ctx.query = rest;
  }
  return next();
}

/** @param {ClientOptions} client */
function clientMetadata(client) {
  if (!client?.client_id || !client.client_secret || !client.redirect_uris?.length) {
    throw new TypeError('a client needs client_id, client_secret and redirect_uris');
  }
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: [...client.redirect_uris],
    post_logout_redirect_uris: [...(client.post_logout_redirect_uris ?? [])],
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_post',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
    ...(client.backchannel_logout_uri
      ? { backchannel_logout_uri: client.backchannel_logout_uri, backchannel_logout_session_required: true }
      : {}),
    // Kontur's IdentityServer puts auth_time into every id_token, asked for or not.
    require_auth_time: true,
  };
}

/** A fresh RS256 signing key as a private JWK with kid, alg and use. */
export async function generateSigningKey() {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'RS256', use: 'sig' };
}

/**
 * Logs in through the provider over plain HTTP, the way a browser would: GET the authorization URL,
 * follow redirects to the login form, post the credentials, follow redirects until the provider
 * sends the browser away (to the client's redirect_uri with `code` and `state`, or with `error`).
 * An existing provider session in `cookieJar` skips the form, like single sign-on in a browser.
 *
 * @param {string | URL} authorizeUrl  e.g. the Location the gate's /_auth/login redirected to
 * @param {{ login?: string, password?: string, cookieJar?: CookieJar, deny?: boolean }} [options]
 *   defaults: demo/demo, a fresh jar; `deny: true` presses "Отмена" instead (→ access_denied)
 * @returns {Promise<string>} the URL the provider finally redirected to
 */
export async function loginThroughProvider(authorizeUrl, options = {}) {
  const { login = 'demo', password = 'demo', cookieJar = new CookieJar(), deny = false } = options;
  let submitted = false;
  return walkProvider(authorizeUrl, cookieJar, 20, 'logging in through the provider', (html, url, status) => {
    const forms = parseForms(html, url);
    const loginForm = forms.find((form) => 'login' in form.fields && 'password' in form.fields);
    if (status !== 200 || !loginForm) throw new Error(`provider answered ${status} at ${url}: ${describePage(html)}`);
    if (submitted) throw new Error(`provider refused the login ${JSON.stringify(login)}: ${describePage(html)}`);
    submitted = true;
    const target = deny ? forms.find((form) => form.action.endsWith('/abort')) : loginForm;
    if (!target) throw new Error('provider login page has no cancel form');
    return { action: target.action, fields: { ...target.fields, ...(deny ? {} : { login, password }) } };
  });
}

/**
 * Completes an RP-initiated logout over HTTP: GET the end-session URL (as the gate redirected to
 * it), submit the self-submitting confirmation form, and return where the provider sends the
 * browser (the post_logout_redirect_uri with `state`, or the provider's "logged out" page).
 * @param {string | URL} endSessionUrl
 * @param {{ cookieJar?: CookieJar }} [options]
 * @returns {Promise<string>}
 */
export async function logoutThroughProvider(endSessionUrl, { cookieJar = new CookieJar() } = {}) {
  let submitted = false;
  return walkProvider(endSessionUrl, cookieJar, 10, 'logging out at the provider', (html, url, status) => {
    const [form] = parseForms(html, url);
    if (status !== 200) throw new Error(`provider answered ${status} at ${url}: ${describePage(html)}`);
    if (!form || submitted) return url; // a final page (e.g. "Вы вышли из Контура")
    submitted = true;
    return { action: form.action, fields: { logout: 'yes', ...form.fields } };
  });
}

/**
 * Walks the provider like a browser: follows redirects until one leaves the provider's origin
 * (that URL is the result), and hands every page to `onPage`, which returns a form to post next
 * or a URL to stop at.
 * @param {string | URL} startUrl
 * @param {CookieJar} cookieJar
 * @param {number} maxHops
 * @param {string} what  for the error when the walk does not end
 * @param {(html: string, url: string, status: number) => string | { action: string, fields: Record<string, string> }} onPage
 * @returns {Promise<string>}
 */
async function walkProvider(startUrl, cookieJar, maxHops, what, onPage) {
  const providerOrigin = new URL(startUrl).origin;
  let url = new URL(startUrl).href;
  /** @type {RequestInit} */
  let init = { method: 'GET' };
  for (let hops = 0; hops < maxHops; hops += 1) {
    const response = await cookieJar.fetch(url, init);
    init = { method: 'GET' };
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      url = new URL(location, url).href;
      if (new URL(url).origin !== providerOrigin) return url;
      continue;
    }
    const next = onPage(await response.text(), url, response.status);
    if (typeof next === 'string') return next;
    url = next.action;
    init = {
      method: 'POST',
      body: new URLSearchParams(next.fields),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    };
  }
  throw new Error(`too many redirects while ${what}`);
}

/** Short text of an HTML page for error messages. @param {string} html */
function describePage(html) {
  const text = html.replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
  return text.slice(0, 300);
}

/**
 * Imports oidc-provider without its import-time "Unsupported runtime" notice (it wants Node 22;
 * it works on Node 20, see TOOLCHAIN.md). Only that exact line is swallowed.
 */
async function importOidcProviderQuietly() {
  const original = console.warn;
  console.warn = (...args) => {
    if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
    original.apply(console, args);
  };
  try {
    return await import('oidc-provider');
  } finally {
    console.warn = original;
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: node tools/dev-provider/provider.mjs [options]

  --port N                      port on localhost (default 9090; 0 = any free port)
  --client-id ID                client id (default ${DEFAULT_CLIENT.client_id})
  --client-secret SECRET        client secret (default ${DEFAULT_CLIENT.client_secret})
  --redirect-uri URL            registered redirect URI (repeatable; default ${DEFAULT_CLIENT.redirect_uris[0]})
  --post-logout-redirect-uri URL  registered post-logout URI (repeatable; default ${DEFAULT_CLIENT.post_logout_redirect_uris.join(' and ')})
  --auth-method METHOD          client_secret_post (default) or client_secret_basic
  --pkce MODE                   optional (default), required, reject or refuse
  --no-end-session              do not offer an end_session_endpoint
  --access-token-ttl SECONDS    default 3600
  --claims-in-id-token          put profile/email/phone into the id_token too (default: userinfo only)
  --id-token-ttl SECONDS        default 300
  --always-issue-refresh-token  refresh tokens even without offline_access
`;

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9090' },
      'client-id': { type: 'string', default: DEFAULT_CLIENT.client_id },
      'client-secret': { type: 'string', default: DEFAULT_CLIENT.client_secret },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      'auth-method': { type: 'string', default: 'client_secret_post' },
      pkce: { type: 'string', default: 'optional' },
      'no-end-session': { type: 'boolean', default: false },
      'access-token-ttl': { type: 'string', default: '3600' },
      'claims-in-id-token': { type: 'boolean', default: false },
      'id-token-ttl': { type: 'string', default: '300' },
      'always-issue-refresh-token': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const running = await startProvider({
    port: Number(values.port),
    clients: [{
      client_id: values['client-id'],
      client_secret: values['client-secret'],
      redirect_uris: values['redirect-uri'] ?? DEFAULT_CLIENT.redirect_uris,
      post_logout_redirect_uris: values['post-logout-redirect-uri'] ?? DEFAULT_CLIENT.post_logout_redirect_uris,
      token_endpoint_auth_method: /** @type {any} */ (values['auth-method']),
    }],
    pkce: /** @type {any} */ (values.pkce),
    endSession: !values['no-end-session'],
    accessTokenTTL: Number(values['access-token-ttl']),
    claimsInIdToken: values['claims-in-id-token'],
    idTokenTTL: Number(values['id-token-ttl']),
    alwaysIssueRefreshToken: values['always-issue-refresh-token'],
    loginHint: 'Демо-вход: demo / demo',
    log: (message, error) => console.error(message, error),
  });
  console.log(`Development OpenID provider: ${running.issuer}`);
  console.log(`  discovery: ${running.issuer}/.well-known/openid-configuration`);
  console.log(`  client:    ${values['client-id']} (${values['auth-method']})`);
  console.log('  login:     demo / demo  (also petrov / petrov, phone / phone)');
  closeOnSignal(() => running.close());
}

runAsScript(import.meta.url, main);
