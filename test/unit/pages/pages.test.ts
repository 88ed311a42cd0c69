import { describe, expect, it } from "vitest";
import { errorPage, escapeHtml, forbiddenPage, internalErrorPage, logoutConfirmPage, pickLang, signedOutPage } from "../../../src/pages/pages";

describe("pages speak the visitor's language", () => {
  it.each([
    [null, "ru"],
    ["", "ru"],
    ["ru-RU,ru;q=0.9,en;q=0.8", "ru"],
    ["en-US,en;q=0.9", "en"],
    ["en-US,en;q=0.9,ru;q=0.8", "en"],
    ["de-DE,ru;q=0.5,en;q=0.9", "en"],
    ["de-DE", "ru"],
  ] as const)("Accept-Language %j → %s", (header, lang) => expect(pickLang(header)).toBe(lang));
});

describe("pages reflect nothing unescaped", () => {
  it("escapes HTML metacharacters", () => expect(escapeHtml(`<script>"'&`)).toBe("&#60;script&#62;&#34;&#39;&#38;"));

  it("escapes the signed-in name on the forbidden page", () => {
    const page = forbiddenPage("en", "<img src=x onerror=alert(1)>", "/_auth/logout", "ref-1");
    expect(page).not.toContain("<img");
    expect(page).toContain("&#60;img");
  });

  it("has a lang attribute, a title and a next step", () => {
    const page = errorPage("ru", "login_expired", "/_auth/login?rd=%2F", "ref-2");
    expect(page).toContain('<html lang="ru">');
    expect(page).toContain("<title>Вход не завершён</title>");
    expect(page).toContain('href="/_auth/login?rd=%2F"');
    expect(page).toContain("ref-2");
  });
});

describe("every page is self-contained, in the visitor's language, with a next step", () => {
  const pages = (lang: "ru" | "en") => ({
    error: errorPage(lang, "provider_unavailable", "/reports", "ref-3"),
    accessDenied: errorPage(lang, "access_denied", "/_auth/login?rd=%2F", "ref-4"),
    forbidden: forbiddenPage(lang, "demo@example.kontur.ru", "/_auth/logout", "ref-5"),
    signedOut: signedOutPage(lang, "/_auth/login?rd=%2F"),
    signedOutKnown: signedOutPage(lang, "/_auth/login?rd=%2F", "/_auth/logout"),
    internal: internalErrorPage(lang, "ref-6"),
    confirm: logoutConfirmPage(lang, "/_auth/logout?rd=%2Fa", "/_auth/logout"),
  });
  /** Pages with a second action: "sign out everywhere". */
  const twoActions = new Set(["signedOutKnown", "confirm"]);

  it.each(["ru", "en"] as const)("%s: lang attribute, no scripts or external resources, not indexed, one action (two with sign out everywhere)", (lang) => {
    for (const [name, page] of Object.entries(pages(lang))) {
      expect(page, name).toContain(`<html lang="${lang}">`);
      expect(page, name).not.toMatch(/<(script|link|img|iframe)\b|https?:\/\//i);
      expect(page, name).toContain('<meta name="robots" content="noindex">');
      expect(page.match(/<a class="button"|<button\b/g), name).toHaveLength(twoActions.has(name) ? 2 : 1);
    }
  });

  it("sign out everywhere is a POST of everywhere=1 to the logout endpoint, without the return path", () => {
    for (const page of [pages("en").confirm, pages("en").signedOutKnown]) {
      expect(page).toContain('<form method="post" action="/_auth/logout"><button type="submit" name="everywhere" value="1">Sign out everywhere</button></form>');
    }
    expect(pages("ru").confirm).toContain("Выйти на всех устройствах");
  });

  it("Russian and English say different things", () => {
    const ru = pages("ru");
    const en = pages("en");
    for (const name of Object.keys(ru) as (keyof typeof ru)[]) expect(ru[name], name).not.toBe(en[name]);
    expect(ru.error).toContain("Сервис входа недоступен");
    expect(en.error).toContain("Sign-in service unavailable");
  });
});
