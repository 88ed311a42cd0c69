import { describe, expect, it } from "vitest";
import { errorPage, escapeHtml, forbiddenPage, pickLang } from "../../src/pages";

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
