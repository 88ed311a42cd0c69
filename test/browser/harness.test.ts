import { createServer, type Server } from "node:http";
import { afterAll, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.ts";
import { freePort } from "../../tools/lib/listen.mjs";

let browser: TestBrowser | undefined;
let server: Server | undefined;
afterAll(async () => {
  await browser?.close();
  server?.close();
});

// Chromium runs here and keeps a __Host- Secure cookie over plain http on 127.0.0.1, which the
// gate's login flow relies on in browser tests.
it("opens a loopback page and keeps its __Host- cookie", async () => {
  const port = await freePort();
  server = createServer((req, res) => {
    res.setHeader("set-cookie", "__Host-harness=1; Path=/; Secure; HttpOnly; SameSite=Lax");
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end(`<h1 id="path">${req.url ?? ""}</h1>`);
  });
  await new Promise<void>((resolve) => server?.listen(port, "127.0.0.1", resolve));

  browser = await launchBrowser();
  await browser.page.goto(`http://127.0.0.1:${port}/hello`);
  expect(await browser.page.locator("#path").textContent()).toBe("/hello");
  expect(await browser.context.cookies()).toMatchObject([{ name: "__Host-harness", secure: true }]);
});
