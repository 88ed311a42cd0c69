// Login interaction of the development provider (replaces oidc-provider's English devInteractions).
//
// Kontur shows a login form and asks for consent only for product scopes; the standard OpenID
// scopes are granted silently. So: a Russian login form for the `login` prompt, and the `consent`
// prompt is always answered automatically (at login time, or with a redirect when the user already
// has a provider session).

import { readBody } from '../lib/listen.mjs';
import { errorPage, loginPage } from './views.mjs';

/**
 * @typedef {import('./accounts.mjs').createAccounts} CreateAccounts
 * @typedef {ReturnType<CreateAccounts>} Accounts
 * @typedef {{ logins: number }} LoginStats
 */

const ROUTE = /^\/interaction\/([\w-]+)(?:\/(login|abort))?$/;

/**
 * Koa middleware serving `/interaction/:uid` (GET: show), `/interaction/:uid/login` (POST) and
 * `/interaction/:uid/abort` (POST: the user declines → `access_denied` at the client).
 *
 * @param {any} provider  the oidc-provider instance
 * @param {Accounts} accounts
 * @param {{ stats: LoginStats, hint?: string }} options
 */
export function interactionRoutes(provider, accounts, { stats, hint }) {
  /**
   * Grants everything the client asked for: the consent Kontur gives implicitly.
   * @param {any} details  provider.interactionDetails() result
   * @param {string} accountId
   */
  async function grantAll(details, accountId) {
    const { params, grantId, prompt } = details;
    let grant = grantId ? await provider.Grant.find(grantId) : undefined;
    // A grant from the session belongs to whoever was logged in before; never reuse another
    // user's grant when someone else logs in through the same browser.
    if (!grant || grant.accountId !== accountId) {
      grant = new provider.Grant({ accountId, clientId: params.client_id });
    }
    if (params.scope) grant.addOIDCScope(String(params.scope));
    if (prompt.details?.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    return grant.save();
  }

  /** Finishes the interaction and redirects the browser back into the authorization endpoint. */
  async function finish(/** @type {any} */ ctx, /** @type {object} */ result, merge = true) {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: merge,
    });
    ctx.redirect(returnTo);
    ctx.status = 303;
  }

  /** @param {any} ctx @param {any} details @param {string} [error] @param {string} [login] */
  function showLogin(ctx, details, error, login) {
    ctx.type = 'html';
    ctx.body = loginPage({
      action: `/interaction/${details.uid}/login`,
      abortAction: `/interaction/${details.uid}/abort`,
      clientId: details.params.client_id,
      error,
      login,
      hint,
    });
  }

  /** @param {any} ctx @param {() => Promise<void>} next */
  return async function interactions(ctx, next) {
    const match = ROUTE.exec(ctx.path);
    if (!match) return next();
    const [, uid, action] = match;
    ctx.set('cache-control', 'no-store');

    try {
      // Reads the interaction bound to this browser by oidc-provider's `_interaction` cookie.
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== uid) throw Object.assign(new Error('interaction mismatch'), { status: 400 });
      const promptName = details.prompt.name;

      if (ctx.method === 'GET' && !action) {
        if (promptName === 'login') return showLogin(ctx, details);
        if (promptName === 'consent') {
          const grantId = await grantAll(details, details.session?.accountId);
          return await finish(ctx, { consent: { grantId } });
        }
        ctx.throw(501, `prompt ${promptName} is not supported by the development provider`);
      }

      if (ctx.method === 'POST' && action === 'login') {
        const form = new URLSearchParams((await readBody(ctx.req, 64 * 1024)).toString('utf8'));
        const login = form.get('login') ?? '';
        const sub = accounts.check(login, form.get('password') ?? '');
        if (!sub) return showLogin(ctx, details, 'Неверный логин или пароль', login);
        stats.logins += 1;
        // Login and consent in one step, so the browser goes straight back to the client.
        const grantId = await grantAll(details, sub);
        return await finish(ctx, { login: { accountId: sub }, consent: { grantId } }, false);
      }

      if (ctx.method === 'POST' && action === 'abort') {
        return await finish(
          ctx,
          { error: 'access_denied', error_description: 'Пользователь отказался от входа' },
          false,
        );
      }

      ctx.throw(405);
    } catch (caught) {
      const error = /** @type {any} */ (caught);
      ctx.status = error.status ?? error.statusCode ?? 500;
      ctx.type = 'html';
      ctx.body = errorPage({
        error: error.error ?? error.name ?? 'error',
        error_description: error.error_description ?? error.message,
      });
    }
  };
}
