import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import { startStack, type Stack } from "../helpers/stack.ts";

describe("a real browser signs in through the provider and the origin page shows who it is", () => {
  let stack: Stack;
  let browser: TestBrowser;
  beforeAll(async () => {
    stack = await startStack({ vars: { CLAIM_HEADERS: "X-Forwarded-Phone=phone_number" } });
    browser = await launchBrowser({ locale: "ru-RU" });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it("opens a protected page, logs in on the provider's form and lands on that page, verified", async () => {
    const { page } = browser;
    await page.goto(`${stack.gate.url}/welcome?from=browser`);
    // The provider's login form on localhost.
    expect(new URL(page.url()).host).toBe(new URL(stack.provider.issuer).host);
    await page.fill("#login", "demo");
    await page.fill("#password", "demo");
    await Promise.all([page.waitForURL(`${stack.gate.url}/welcome?from=browser`), page.click('button[type="submit"]:not(.secondary)')]);

    expect(await page.textContent('[data-testid="email"]')).toBe("demo@example.kontur.ru");
    expect(await page.textContent('[data-testid="name"]')).toBe("Иванов Иван Иванович");
    expect(await page.textContent('[data-testid="assertion-status"]')).toBe("valid");
    expect(await page.textContent('[data-testid="assertion-name"]')).toBe("Иванов Иван Иванович");
    // From userinfo (the provider is IdentityServer-shaped), through CLAIM_HEADERS.
    expect(await page.textContent('[data-testid="phone"]')).toBe("+79990000000");
    expect(await page.textContent('[data-testid="assertion-phone"]')).toBe("+79990000000");
    expect(await page.textContent('[data-testid="htu"]')).toBe(`${stack.origin.url}/welcome?from=browser`);
    expect(await page.textContent('[data-testid="user"]')).toBe(await page.textContent('[data-testid="assertion-sub"]'));
  });

  it("keeps the session in a __Host-less HttpOnly cookie on loopback http that scripts cannot read", async () => {
    const cookies = await browser.context.cookies(stack.gate.url);
    const session = cookies.find((cookie) => cookie.name === "kg_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });
    expect(await browser.page.evaluate(() => document.cookie)).not.toContain("kg_session");
  });

  it("/_auth/me answers the page's own fetch()", async () => {
    const me = await browser.page.evaluate(async () => (await fetch("/_auth/me")).json());
    expect(me).toMatchObject({ email: "demo@example.kontur.ru", middle_name: "Иванович" });
  });

  it("a fetch() from the page to a protected URL is served, not redirected", async () => {
    const status = await browser.page.evaluate(async () => (await fetch("/echo")).status);
    expect(status).toBe(200);
  });

  it("the logout button signs out to the signed-out page; the next visit goes through the provider again", async () => {
    const { page } = browser;
    await Promise.all([page.waitForURL(`${stack.gate.url}/_auth/signed-out`), page.click('[data-testid="logout-button"]')]);
    expect(await page.textContent("h1")).toBe("Вы вышли");
    expect((await browser.context.cookies(stack.gate.url)).find((cookie) => cookie.name === "kg_session")).toBeUndefined();
    const exchanges = stack.provider.stats.tokenRequests.authorization_code;
    const providerHits: string[] = [];
    page.on("request", (request) => {
      if (request.url().startsWith(stack.provider.issuer)) providerHits.push(request.url());
    });
    // The provider still has its own session (LOGOUT_AT_PROVIDER is off), so no form: single sign-on.
    await page.goto(`${stack.gate.url}/again`);
    await page.waitForURL(`${stack.gate.url}/again`);
    expect(providerHits.some((url) => url.includes("/connect/authorize"))).toBe(true);
    expect(stack.provider.stats.tokenRequests.authorization_code).toBe(exchanges + 1);
    expect(await page.textContent('[data-testid="assertion-status"]')).toBe("valid");
  });

  it("the signed-out page's sign out everywhere ends the same user's session in another browser", async () => {
    const { page } = browser;
    const other = await browser.browser.newContext({ locale: "ru-RU" });
    const otherPage = await other.newPage();
    await otherPage.goto(`${stack.gate.url}/elsewhere`);
    await otherPage.fill("#login", "demo");
    await otherPage.fill("#password", "demo");
    await Promise.all([otherPage.waitForURL(`${stack.gate.url}/elsewhere`), otherPage.click('button[type="submit"]:not(.secondary)')]);
    expect((await stack.gate.kv.list({ prefix: "session:" })).keys).toHaveLength(2);

    await Promise.all([page.waitForURL(`${stack.gate.url}/_auth/signed-out`), page.click('[data-testid="logout-button"]')]);
    expect((await stack.gate.kv.list({ prefix: "session:" })).keys).toHaveLength(1);
    const everywhere = page.getByRole("button", { name: "Выйти на всех устройствах" });
    await Promise.all([page.waitForURL(`${stack.gate.url}/_auth/signed-out`), everywhere.click()]);
    // Both records are gone: the other browser is refused at its next check.
    expect((await stack.gate.kv.list({ prefix: "session:" })).keys).toEqual([]);
    // Done, so the page no longer offers it.
    expect(await page.getByRole("button", { name: "Выйти на всех устройствах" }).count()).toBe(0);
    await other.close();
  });
});
