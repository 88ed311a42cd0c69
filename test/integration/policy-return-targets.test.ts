import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { HttpClient } from "../helpers/http.ts";
import { OPEN_REDIRECT_PAYLOADS } from "../helpers/open-redirects.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

/** Where a browser on `base` goes with this Location header. */
function target(location: string, base: string): URL {
  return new URL(location, base);
}

describe("return targets: every open-redirect payload ends on the site after a real login", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it("has at least 40 payloads", () => expect(OPEN_REDIRECT_PAYLOADS.length).toBeGreaterThanOrEqual(40));

  it.each(OPEN_REDIRECT_PAYLOADS.map((payload) => [JSON.stringify(payload).slice(0, 60), payload]))("rd=%s", async (_, payload) => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=${encodeURIComponent(payload)}`, NAVIGATE);
    expect(start.status).toBe(302);
    const callback = await client.get(await loginThroughProvider(start.headers.get("location")!, {}), NAVIGATE);
    expect(callback.status).toBe(302);
    const location = callback.headers.get("location")!;
    // A same-site path: browsers would resolve `//x`, `/\x` or a scheme to another host.
    expect(location).toMatch(/^\/(?![/\\])/);
    expect(location).not.toMatch(/[\s\u0000-\u001f\u007f-\u009f]/);
    expect(target(location, stack.gate.url).origin).toBe(stack.gate.url);
    // And following it, the visitor is on the site, signed in.
    const before = stack.origin.requests.length;
    const landed = await client.get(target(location, stack.gate.url), NAVIGATE);
    expect(landed.status).toBe(200);
    expect(stack.origin.requests.slice(before).map((r: { headers: Record<string, unknown> }) => r.headers["x-forwarded-email"])).toEqual([
      "demo@example.kontur.ru",
    ]);
  });

  it("logout's rd is held to the same rule", async () => {
    for (const payload of OPEN_REDIRECT_PAYLOADS) {
      const response = await new HttpClient().get(`${stack.gate.url}/_auth/logout?rd=${encodeURIComponent(payload)}`, {
        ...NAVIGATE,
        "sec-fetch-site": "same-origin",
      });
      expect(response.status).toBe(303);
      const location = response.headers.get("location")!;
      expect(location, JSON.stringify(payload)).toMatch(/^\/(?![/\\])/);
      expect(target(location, stack.gate.url).origin).toBe(stack.gate.url);
    }
  });

  it("an ordinary rd with a query survives the login unchanged", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=${encodeURIComponent("/reports/2026?tab=q1&sort=-date")}`, NAVIGATE);
    const callback = await client.get(await loginThroughProvider(start.headers.get("location")!, {}), NAVIGATE);
    expect(callback.headers.get("location")).toBe("/reports/2026?tab=q1&sort=-date");
  });
});
