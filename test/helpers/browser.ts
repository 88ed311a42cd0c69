import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from "playwright-core";

/** Debian's chromium (apt-get install chromium); playwright-core downloads no browser of its own. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Flags measured to work on these machines (see shared TOOLCHAIN.md): no sandbox (we run as
 * root), no GPU, and nothing that reaches the internet on its own (QUIC, sync, component updates).
 */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  browser: Browser;
  /** A fresh context: its own cookie store, so tests never share a session. */
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/**
 * Launches chromium with a fresh profile (playwright gives every launch a new temporary
 * user-data-dir and deletes it on close) and opens one page.
 */
export async function launchBrowser(contextOptions: BrowserContextOptions = {}): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no chromium at ${CHROMIUM_PATH}: apt-get update && apt-get install -y chromium`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext(contextOptions);
    const page = await context.newPage();
    return { browser, context, page, close: () => browser.close() };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
