/**
 * The gate's own pages: small, self-contained (no external assets), Russian by default and English
 * when the browser prefers it. They reflect no request input except values the gate validated
 * itself (a same-site return path, the signed-in user's name), always escaped.
 */
import type { GateErrorCode } from "../common/errors";

export type Lang = "ru" | "en";

/** Russian unless English is preferred over Russian in `Accept-Language`. */
export function pickLang(acceptLanguage: string | null | undefined): Lang {
  let best: { lang: Lang; q: number } = { lang: "ru", q: 0 };
  for (const part of (acceptLanguage ?? "").split(",")) {
    const [tag = "", ...params] = part.trim().toLowerCase().split(";");
    const q = Number(params.find((p) => p.trim().startsWith("q="))?.trim().slice(2) ?? "1");
    const lang = tag.startsWith("ru") ? "ru" : tag.startsWith("en") ? "en" : undefined;
    if (lang !== undefined && Number.isFinite(q) && q > best.q) best = { lang, q };
  }
  return best.lang;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const TEXT = {
  ru: {
    brand: "Вход через Контур",
    retry: "Попробовать снова",
    home: "На главную",
    signIn: "Войти снова",
    signOut: "Выйти",
    signOutEverywhere: "Выйти на всех устройствах",
    reference: "Код обращения",
    signedOutTitle: "Вы вышли",
    signedOutBody: "Сеанс на этом сайте завершён.",
    confirmTitle: "Выйти из сайта?",
    confirmBody: "Подтвердите выход: ссылка для выхода была открыта не с этого сайта.",
    forbiddenBody: (who: string) => `Вы вошли как ${who}, но у этой учётной записи нет доступа к сайту. Выйдите и войдите под другой учётной записью.`,
    internalTitle: "Внутренняя ошибка",
    internalBody: "Что-то пошло не так. Попробуйте ещё раз немного позже.",
  },
  en: {
    brand: "Sign in with Kontur",
    retry: "Try again",
    home: "Go to the home page",
    signIn: "Sign in again",
    signOut: "Sign out",
    signOutEverywhere: "Sign out everywhere",
    reference: "Reference",
    signedOutTitle: "You are signed out",
    signedOutBody: "Your session on this site has ended.",
    confirmTitle: "Sign out of this site?",
    confirmBody: "Please confirm: the sign-out link was opened from another site.",
    forbiddenBody: (who: string) => `You are signed in as ${who}, but this account has no access to this site. Sign out and sign in with another account.`,
    internalTitle: "Internal error",
    internalBody: "Something went wrong. Please try again a little later.",
  },
} as const;

const ERRORS: Record<Lang, Record<GateErrorCode, [title: string, body: string]>> = {
  ru: {
    not_found: ["Страница не найдена", "Такой страницы нет."],
    insecure_transport: ["Нужно HTTPS", "Этот сайт работает только по HTTPS."],
    login_expired: ["Вход не завершён", "Ссылка для входа устарела или была открыта в другом браузере. Начните вход заново."],
    callback_invalid: ["Вход не удался", "Ответ сервиса входа не прошёл проверку. Начните вход заново."],
    access_denied: ["Вход отменён", "Вы отказались от входа. Чтобы открыть сайт, войдите ещё раз."],
    login_rejected: ["Вход не удался", "Сервис входа не подтвердил вашу личность. Начните вход заново."],
    unauthenticated: ["Нужно войти", "Чтобы открыть эту страницу, войдите через Контур."],
    forbidden: ["Нет доступа", "У этой учётной записи нет доступа к сайту."],
    cross_site: ["Запрос отклонён", "Запрос пришёл с другого сайта и был отклонён."],
    logout_token_invalid: ["Запрос отклонён", "Уведомление о выходе не прошло проверку."],
    provider_unavailable: ["Сервис входа недоступен", "Сервис входа Контура сейчас не отвечает. Попробуйте через минуту."],
    origin_unavailable: ["Сайт недоступен", "Сайт сейчас не отвечает. Попробуйте через минуту."],
    step_up_failed: [
      "Вход не подтверждён",
      "Для этого раздела нужен недавний вход, а сервис входа его не подтвердил. Войдите снова; если это повторяется, сообщите администратору сайта.",
    ],
    service_refused: ["Нет доступа", "Ключ сервиса неверен или не допущен к этому адресу."],
    ambiguous_path: ["Адрес отклонён", "Этот адрес записан так, что его нельзя однозначно проверить. Откройте страницу по обычной ссылке."],
  },
  en: {
    not_found: ["Not found", "There is no such page."],
    insecure_transport: ["HTTPS required", "This site works over HTTPS only."],
    login_expired: ["Sign-in not completed", "The sign-in link has expired or was opened in another browser. Please start again."],
    callback_invalid: ["Sign-in failed", "The answer of the sign-in service did not pass the checks. Please start again."],
    access_denied: ["Sign-in cancelled", "You declined to sign in. Sign in again to open the site."],
    login_rejected: ["Sign-in failed", "The sign-in service did not confirm your identity. Please start again."],
    unauthenticated: ["Sign-in required", "Sign in with Kontur to open this page."],
    forbidden: ["Access denied", "This account has no access to this site."],
    cross_site: ["Request refused", "The request came from another site and was refused."],
    logout_token_invalid: ["Request refused", "The logout notice did not pass the checks."],
    provider_unavailable: ["Sign-in service unavailable", "Kontur's sign-in service is not answering. Please try again in a minute."],
    origin_unavailable: ["Site unavailable", "The site is not answering. Please try again in a minute."],
    step_up_failed: [
      "Sign-in not confirmed",
      "This part of the site needs a recent sign-in, and the sign-in service did not confirm one. Sign in again; if this repeats, tell the site's administrator.",
    ],
    service_refused: ["Access denied", "The service credentials are wrong or not admitted at this address."],
    ambiguous_path: ["Address refused", "This address is spelled in a way that cannot be checked unambiguously. Open the page from an ordinary link."],
  },
};

/** Headers for every gate page: never cached, never framed, no scripts, no referrer. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
};

interface Action {
  readonly label: string;
  /** A GET link, or a POST form when `post` is set. */
  readonly href: string;
  readonly post?: boolean;
  /** A form field the POST carries, as the button's own name and value (no hidden input to label). */
  readonly field?: readonly [name: string, value: string];
}

function buttonField(field: Action["field"]): string {
  return field === undefined ? "" : ` name="${escapeHtml(field[0])}" value="${escapeHtml(field[1])}"`;
}

function layout(lang: Lang, title: string, body: string, actions: readonly Action[], reference?: string): string {
  const buttons = actions
    .map((a) =>
      a.post
        ? `<form method="post" action="${escapeHtml(a.href)}"><button type="submit"${buttonField(a.field)}>${escapeHtml(a.label)}</button></form>`
        : `<a class="button" href="${escapeHtml(a.href)}">${escapeHtml(a.label)}</a>`,
    )
    .join("\n");
  const ref = reference === undefined ? "" : `<p class="ref">${TEXT[lang].reference}: <code>${escapeHtml(reference)}</code></p>`;
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1a1a1a}
main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
@media (max-width:36rem){main{margin:0;border-radius:0;box-shadow:none;min-height:100vh;box-sizing:border-box}}
h1{font-size:1.5rem;margin:0 0 .75rem}
.brand{color:#555;font-size:.875rem;margin:0 0 1rem}
.button,button{display:inline-block;box-sizing:border-box;min-height:44px;margin:.75rem .5rem 0 0;padding:.625rem 1.25rem;border:0;border-radius:4px;background:#0b57d0;color:#fff;font:inherit;line-height:1.5;text-decoration:none;cursor:pointer}
.button:hover,button:hover{background:#0842a0}
:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}
form{display:inline}
.ref{color:#555;font-size:.875rem;margin-top:1.5rem}
code{user-select:all;overflow-wrap:anywhere}
</style>
</head>
<body>
<main>
<p class="brand">${TEXT[lang].brand}</p>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(body)}</p>
${buttons}
${ref}
</main>
</body>
</html>
`;
}

export function errorPage(lang: Lang, code: GateErrorCode, retryHref: string, reference: string): string {
  const [title, body] = ERRORS[lang][code];
  return layout(lang, title, body, [{ label: TEXT[lang].retry, href: retryHref }], reference);
}

export function internalErrorPage(lang: Lang, reference: string): string {
  return layout(lang, TEXT[lang].internalTitle, TEXT[lang].internalBody, [{ label: TEXT[lang].home, href: "/" }], reference);
}

export function forbiddenPage(lang: Lang, who: string, logoutHref: string, reference: string): string {
  return layout(lang, ERRORS[lang].forbidden[0], TEXT[lang].forbiddenBody(who), [{ label: TEXT[lang].signOut, href: logoutHref, post: true }], reference);
}

/** "Sign out everywhere": a POST of `everywhere=1` to the logout endpoint. */
function everywhereAction(lang: Lang, logoutHref: string): Action {
  return { label: TEXT[lang].signOutEverywhere, href: logoutHref, post: true, field: ["everywhere", "1"] };
}

/**
 * The page after logout. `everywhereHref` (the logout endpoint) is given while the gate still
 * knows whose session this browser ended: the user can then end their sessions elsewhere too.
 */
export function signedOutPage(lang: Lang, loginHref: string, everywhereHref?: string): string {
  const actions: Action[] = [{ label: TEXT[lang].signIn, href: loginHref }];
  if (everywhereHref !== undefined) actions.push(everywhereAction(lang, everywhereHref));
  return layout(lang, TEXT[lang].signedOutTitle, TEXT[lang].signedOutBody, actions);
}

/** `everywhereHref`: the logout endpoint without a return path (everywhere ends on the signed-out page). */
export function logoutConfirmPage(lang: Lang, logoutHref: string, everywhereHref: string): string {
  return layout(lang, TEXT[lang].confirmTitle, TEXT[lang].confirmBody, [
    { label: TEXT[lang].signOut, href: logoutHref, post: true },
    everywhereAction(lang, everywhereHref),
  ]);
}
