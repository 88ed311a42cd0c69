// HTML pages of the development provider, in Russian like Kontur's own login UI. Deliberately tiny
// and self-contained (no external fonts or scripts) so they work offline and stay easy to parse
// from tests: the login form has fields `login` and `password`.

import { escapeHtml } from '../lib/html.mjs';

const STYLE = `
  body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f2f2f2;margin:0}
  main{max-width:340px;margin:60px auto;background:#fff;padding:28px 32px;border-radius:8px;
    box-shadow:0 2px 8px rgba(0,0,0,.12)}
  h1{font-size:22px;font-weight:600;margin:0 0 18px}
  label{display:block;font-size:14px;margin:12px 0 4px}
  input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px;font-size:16px;
    border:1px solid #bbb;border-radius:4px}
  button{margin-top:18px;width:100%;padding:10px;font-size:16px;border:0;border-radius:4px;
    background:#1f87ef;color:#fff;cursor:pointer}
  button.secondary{background:#e6e6e6;color:#222;margin-top:8px}
  .error{color:#d70c17;font-size:14px;margin:8px 0}
  .hint{color:#666;font-size:13px;margin-top:16px}
  pre{white-space:pre-wrap;word-break:break-word;font-size:13px}
`;

/**
 * @param {string} title
 * @param {string} body  already-escaped HTML
 * @param {string} [head] extra head elements
 */
function page(title, body, head = '') {
  return `<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
${head}
</head>
<body><main>
${body}
</main></body>
</html>`;
}

/**
 * The login form. Posts to `action`; a second form declines (→ `error=access_denied` at the
 * client's callback, the one error Kontur sends back).
 * @param {{ action: string, abortAction: string, clientId?: string, login?: string,
 *   error?: string, hint?: string }} options
 */
export function loginPage({ action, abortAction, clientId, login = '', error, hint }) {
  return page('Вход в Контур', `
<h1>Вход в Контур</h1>
${clientId ? `<p class="hint">Приложение <b>${escapeHtml(clientId)}</b> запрашивает вход.</p>` : ''}
${error ? `<p class="error" role="alert" data-testid="login-error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="off">
  <label for="login">Логин, почта или телефон</label>
  <input type="text" id="login" name="login" value="${escapeHtml(login)}" autofocus required>
  <label for="password">Пароль</label>
  <input type="password" id="password" name="password" required>
  <button type="submit">Войти</button>
</form>
<form method="post" action="${escapeHtml(abortAction)}">
  <button type="submit" class="secondary">Отмена</button>
</form>
${hint ? `<p class="hint">${escapeHtml(hint)}</p>` : ''}`);
}

/**
 * Error page (oidc-provider's `renderError`): shown when the request cannot go back to the client,
 * e.g. unknown client, unregistered redirect_uri or a missing nonce — like Kontur's own error page.
 * @param {Record<string, unknown>} out  error, error_description, state, iss
 */
export function errorPage(out) {
  const rows = Object.entries(out)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `<b>${escapeHtml(key)}</b>: ${escapeHtml(value)}`)
    .join('\n');
  return page('Ошибка входа', `
<h1>Ошибка</h1>
<p>Не удалось выполнить вход.</p>
<pre data-testid="provider-error">${rows}</pre>`);
}

/**
 * RP-initiated logout confirmation. Kontur (IdentityServer) signs out without asking when the
 * client sends a valid id_token_hint, so this page submits itself; the button is there for
 * browsers without JavaScript and for HTTP clients (see `logoutThroughProvider`).
 * @param {string} form  oidc-provider's form (with its xsrf field), rendered as given
 */
export function logoutPage(form) {
  // Inject a `logout=yes` field so the whole Kontur session ends, not just this client's part.
  const withLogout = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
  return page('Выход из Контура', `
<h1>Выход из Контура</h1>
${withLogout}
<button type="submit" form="op.logoutForm">Выйти</button>
<script>document.forms[0].submit()</script>`);
}

/** Shown after a logout that has no post_logout_redirect_uri to go back to. */
export function loggedOutPage() {
  return page('Выход выполнен', '<h1>Вы вышли из Контура</h1>');
}
