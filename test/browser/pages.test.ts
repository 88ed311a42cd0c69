/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// page.evaluate() callbacks run in the browser: they are typed with the DOM.
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import { generateSecrets, loopbackGateVars, startGate, type Gate } from "../helpers/gate.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { startStack, type Stack } from "../helpers/stack.ts";
import { repoRoot } from "../../tools/lib/wrangler-files.mjs";

/** Screenshots of every page in both languages, kept with the other test results (gitignored). */
const SCREENSHOTS = join(repoRoot, "test-results", "screenshots");

type Lang = "ru" | "en";
const LOCALES: Record<Lang, string> = { ru: "ru-RU", en: "en-US" };

/**
 * A small accessibility audit run inside the page (no axe download is possible here): the
 * WCAG 2.2 AA points that matter for these pages — language, title, headings, landmarks, names of
 * controls, text contrast, target size, visible keyboard focus, reflow at 320 px.
 * Returns the problems found, as readable strings.
 */
async function audit(page: Page, lang: Lang): Promise<string[]> {
  const problems = await page.evaluate((expectedLang) => {
    const found: string[] = [];
    const parse = (color: string): [number, number, number, number] => {
      const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(color);
      return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])] : [0, 0, 0, 0];
    };
    const luminance = ([r, g, b]: number[]) => {
      const [R, G, B] = [r!, g!, b!].map((v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * R! + 0.7152 * G! + 0.0722 * B!;
    };
    /** The first opaque background behind an element (these pages use no background images). */
    const background = (element: Element): [number, number, number, number] => {
      for (let node: Element | null = element; node; node = node.parentElement) {
        const color = parse(getComputedStyle(node).backgroundColor);
        if (color[3] > 0) return color;
      }
      return [255, 255, 255, 1];
    };
    const name = (element: Element) =>
      (element.getAttribute("aria-label") ?? "").trim() ||
      (element.textContent ?? "").trim() ||
      ((element as HTMLInputElement).labels?.[0]?.textContent ?? "").trim();

    const html = document.documentElement;
    if (html.lang !== expectedLang) found.push(`<html lang> is "${html.lang}", expected "${expectedLang}"`);
    if (document.title.trim() === "") found.push("the page has no <title>");
    const h1 = document.querySelectorAll("h1");
    if (h1.length !== 1 || (h1[0]!.textContent ?? "").trim() === "") found.push(`expected one non-empty <h1>, found ${h1.length}`);
    if (document.querySelectorAll("main").length !== 1) found.push("expected one <main> landmark");
    if (document.title.trim() !== (h1[0]?.textContent ?? "").trim()) found.push("the <title> does not say what the <h1> says");

    for (const control of document.querySelectorAll("a, button, input, select, textarea")) {
      if (name(control) === "") found.push(`<${control.tagName.toLowerCase()}> has no accessible name`);
      const box = control.getBoundingClientRect();
      if (box.height < 24 || box.width < 24) found.push(`<${control.tagName.toLowerCase()}> "${name(control)}" is smaller than 24×24 px`);
    }
    for (const image of document.querySelectorAll("img")) if (!image.hasAttribute("alt")) found.push("an <img> has no alt");

    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      if ((text.textContent ?? "").trim() === "") continue;
      const element = text.parentElement!;
      const style = getComputedStyle(element);
      const fg = parse(style.color);
      const bg = background(element);
      // Foreground alpha blended over the background.
      const blended = [0, 1, 2].map((i) => fg[i]! * fg[3] + bg[i]! * (1 - fg[3]));
      const [light, dark] = [luminance(blended), luminance(bg)].sort((a, b) => b - a);
      const ratio = (light! + 0.05) / (dark! + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      const needed = large ? 3 : 4.5;
      if (ratio < needed) found.push(`"${text.textContent!.trim().slice(0, 30)}" has contrast ${ratio.toFixed(2)}:1, needs ${needed}:1`);
    }
    return found;
  }, lang);

  // Keyboard: the first Tab reaches the page's next step, with a visible focus indicator.
  await page.keyboard.press("Tab");
  const focus = await page.evaluate(() => {
    const element = document.activeElement;
    if (!element || element === document.body) return undefined;
    const style = getComputedStyle(element);
    return { tag: element.tagName.toLowerCase(), outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2 };
  });
  if (focus === undefined || !["a", "button"].includes(focus.tag)) problems.push("Tab does not reach the page's action");
  else if (!focus.outline) problems.push(`the focused <${focus.tag}> has no visible focus outline`);

  // Reflow (WCAG 1.4.10): nothing scrolls sideways on a 320 px wide screen.
  const size = page.viewportSize();
  await page.setViewportSize({ width: 320, height: 640 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) problems.push(`at 320 px the page scrolls sideways by ${overflow}px`);
  if (size) await page.setViewportSize(size);
  return problems;
}

/** Everything a page must be, whatever it says: self-contained, protected, accessible, captured. */
async function checkPage(page: Page, name: string, lang: Lang, origin: string, requests: string[]): Promise<void> {
  expect(requests.filter((url) => !url.startsWith(origin)), "requests to anything but the gate").toEqual([]);
  const html = await page.content();
  expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
  await mkdir(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, `${name}-${lang}.png`);
  await page.screenshot({ path: file, fullPage: true });
  expect((await stat(file)).size).toBeGreaterThan(1000);
  expect(await audit(page, lang)).toEqual([]);
}

interface Visitor {
  page: Page;
  /** URLs the page requested. */
  requests: string[];
}

/**
 * A new visitor in `context` (a language's): no cookies left from an earlier test, at the gate or
 * at the provider, and a page of its own (in an open context a fraction of the cost of a new
 * context, which starts a renderer).
 */
async function visitor(context: BrowserContext): Promise<Visitor> {
  await context.clearCookies();
  const page = await context.newPage();
  const requests: string[] = [];
  page.on("request", (request) => requests.push(request.url()));
  return { page, requests };
}

async function response(page: Page, url: string): Promise<{ status: number; headers: Record<string, string> }> {
  const answer = await page.goto(url);
  if (answer === null) throw new Error(`no response for ${url}`);
  return { status: answer.status(), headers: answer.headers() };
}

const TEXT = {
  ru: {
    expired: "Вход не завершён",
    cancelled: "Вход отменён",
    forbidden: "Нет доступа",
    signedOut: "Вы вышли",
    unavailable: "Сервис входа недоступен",
    retry: "Попробовать снова",
    signIn: "Войти снова",
    signOut: "Выйти",
  },
  en: {
    expired: "Sign-in not completed",
    cancelled: "Sign-in cancelled",
    forbidden: "Access denied",
    signedOut: "You are signed out",
    unavailable: "Sign-in service unavailable",
    retry: "Try again",
    signIn: "Sign in again",
    signOut: "Sign out",
  },
} as const;

/**
 * One set of servers and one chromium for the whole file (each start costs seconds): the languages
 * differ only in what the browser asks for.
 */
let stack: Stack;
/** A gate whose allow-list no demo user is on. */
let restricted: Stack;
/** A gate whose provider does not answer. */
let down: Gate;
/** Its own page (locale ru-RU) is the audit's test's. */
let browser: TestBrowser;

beforeAll(async () => {
  const startStackAndDown = async () => {
    stack = await startStack();
    const secrets = await generateSecrets();
    down = await startGate(loopbackGateVars({ issuer: `http://localhost:${await freePort()}`, clientId: "x", secrets, originUrl: stack.origin.url }));
  };
  // Side by side; all settled before a failure is thrown, so afterAll stops whatever did start.
  const started = await Promise.allSettled([
    startStackAndDown(),
    startStack({ vars: { ALLOWED_EMAIL_DOMAINS: "nobody.example" } }).then((gate) => (restricted = gate)),
    launchBrowser({ locale: LOCALES.ru }).then((launched) => (browser = launched)),
  ]);
  const failure = started.find((result) => result.status === "rejected");
  if (failure !== undefined) throw failure.reason;
});
afterAll(async () => {
  await browser?.close();
  await down?.close();
  await restricted?.close();
  await stack?.close();
});

// The two languages side by side (much of a test is waiting for a server or the renderer); within
// one, the tests run in turn: they share its context.
describe.concurrent.each(["ru", "en"] as const)("the gate's pages in %s: accessible, self-contained, each with a next step", (lang) => {
  const t = TEXT[lang];
  /** The language's context: its locale, and with it the Accept-Language of every request. */
  let context: BrowserContext;
  beforeAll(async () => {
    context = await browser.browser.newContext({ locale: LOCALES[lang], viewport: { width: 800, height: 600 } });
  });
  afterAll(() => context?.close());

  it.sequential("error (a stale sign-in link): says what happened and offers to sign in again", async () => {
    const { page, requests } = await visitor(context);
    const { status, headers } = await response(page, `${stack.gate.url}/_auth/callback?code=x&state=${"s".repeat(43)}`);
    expect(status).toBe(400);
    expect(headers["content-security-policy"]).toContain("default-src 'none'");
    expect(headers["cache-control"]).toBe("no-store");
    expect(await page.textContent("h1")).toBe(t.expired);
    await checkPage(page, "error-login-expired", lang, stack.gate.url, requests);
    // The next step works: it starts a new sign-in at the provider.
    await Promise.all([page.waitForURL(`${stack.provider.issuer}/**`), page.getByRole("link", { name: t.retry }).click()]);
    await page.close();
  });

  it.sequential("access denied (the user declined at Kontur): a retry that leads back to the sign-in form", async () => {
    const { page, requests } = await visitor(context);
    await page.goto(`${stack.gate.url}/reports`);
    await page.waitForURL(`${stack.provider.issuer}/**`);
    await Promise.all([page.waitForURL(`${stack.gate.url}/_auth/callback**`), page.click("button.secondary")]);
    expect(await page.textContent("h1")).toBe(t.cancelled);
    // From the callback on, the page loads nothing but the gate's own response.
    const fromCallback = requests.slice(requests.findIndex((url) => url.startsWith(`${stack.gate.url}/_auth/callback`)));
    await checkPage(page, "access-denied", lang, stack.gate.url, fromCallback);
    await Promise.all([page.waitForURL(`${stack.provider.issuer}/**`), page.getByRole("link", { name: t.retry }).click()]);
    expect(await page.locator("#login").count()).toBe(1);
    await page.close();
  });

  it.sequential("forbidden (signed in, not on the allow-list): names the account and signs out with one button", async () => {
    const { page, requests } = await visitor(context);
    await page.goto(`${restricted.gate.url}/private`);
    await page.fill("#login", "demo");
    await page.fill("#password", "demo");
    await Promise.all([page.waitForURL(`${restricted.gate.url}/private`), page.click('button[type="submit"]:not(.secondary)')]);
    expect(await page.textContent("h1")).toBe(t.forbidden);
    expect(await page.textContent("main")).toContain("demo@example.kontur.ru");
    requests.length = 0;
    await page.reload();
    await checkPage(page, "forbidden", lang, restricted.gate.url, requests);
    await Promise.all([page.waitForURL(`${restricted.gate.url}/_auth/signed-out`), page.getByRole("button", { name: t.signOut }).click()]);
    expect(await page.textContent("h1")).toBe(t.signedOut);
    await page.close();
  });

  it.sequential("signed out: confirms it and offers to sign in again", async () => {
    const { page, requests } = await visitor(context);
    const { status } = await response(page, `${stack.gate.url}/_auth/signed-out`);
    expect(status).toBe(200);
    expect(await page.textContent("h1")).toBe(t.signedOut);
    await checkPage(page, "signed-out", lang, stack.gate.url, requests);
    await Promise.all([page.waitForURL(`${stack.provider.issuer}/**`), page.getByRole("link", { name: t.signIn }).click()]);
    await page.close();
  });

  it.sequential("provider unavailable: 503 with Retry-After, and a retry of the same page", async () => {
    const { page, requests } = await visitor(context);
    const { status, headers } = await response(page, `${down.url}/reports?year=2026`);
    expect(status).toBe(503);
    expect(headers["retry-after"]).toBe("30");
    expect(await page.textContent("h1")).toBe(t.unavailable);
    expect(await page.getByRole("link", { name: t.retry }).getAttribute("href")).toBe("/reports?year=2026");
    await checkPage(page, "provider-unavailable", lang, down.url, requests);
    await page.close();
  });
});

describe("the audit itself catches what it claims to", () => {
  it("reports a wrong lang, low contrast, a nameless control and a missing h1", async () => {
    const { page } = browser;
    await page.setContent(
      `<html lang="en"><head><title>x</title></head><body><main><p style="color:#bbb;background:#fff">pale text</p>` +
        `<a href="/x" style="display:inline-block;width:30px;height:30px"></a></main></body></html>`,
    );
    const problems = await audit(page, "ru");
    expect(problems).toEqual(
      expect.arrayContaining([
        '<html lang> is "en", expected "ru"',
        "expected one non-empty <h1>, found 0",
        "<a> has no accessible name",
        expect.stringMatching(/^"pale text" has contrast 1\.\d\d:1, needs 4\.5:1$/),
      ]),
    );
  });
});
