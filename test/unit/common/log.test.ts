import { afterEach, describe, expect, it, vi } from "vitest";
import { log, logUser, requestRef, userHash, withRequestLog } from "../../../src/common/log";

afterEach(() => vi.restoreAllMocks());

function captured(spy: { mock: { calls: unknown[][] } }): unknown[] {
  return spy.mock.calls.map(([line]) => JSON.parse(String(line)));
}

describe("log lines", () => {
  it("are one JSON object per call: event, outcome, the request's ray/method/path, then the fields", async () => {
    const out = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const request = new Request("https://site.example/reports/2026?secret=query", { headers: { "cf-ray": "8f00110000000001-ARN" } });
    await withRequestLog(request, async () => {
      await Promise.resolve();
      log("login_started", { pkce: true });
    });
    expect(captured(out)).toEqual([{ event: "login_started", outcome: "redirect", ray: "8f00110000000001-ARN", method: "GET", path: "/reports/2026", pkce: true }]);
  });

  it("keep the request context across awaits and apart between interleaved requests", async () => {
    const out = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const handle = (ray: string, wait: number) =>
      withRequestLog(new Request(`https://site.example/${ray}`, { headers: { "cf-ray": `8f0000000000000${ray}` } }), async () => {
        await new Promise((resolve) => setTimeout(resolve, wait));
        log("logout");
      });
    await Promise.all([handle("a", 20), handle("b", 0)]);
    expect(captured(out)).toEqual([
      expect.objectContaining({ ray: "8f0000000000000b", path: "/b" }),
      expect.objectContaining({ ray: "8f0000000000000a", path: "/a" }),
    ]);
  });

  it("go to console.error when the outcome is an error", () => {
    const err = vi.spyOn(console, "error").mockImplementation(() => undefined);
    log("provider_error", { step: "health" });
    expect(captured(err)).toEqual([{ event: "provider_error", outcome: "error", step: "health" }]);
  });

  it("name a user only by the first 16 hex digits of SHA-256(sub)", async () => {
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223…
    expect(await userHash("abc")).toBe("ba7816bf8f01cfea");
    const out = vi.spyOn(console, "log").mockImplementation(() => undefined);
    await logUser("login_ok", "abc", { refresh_token: false });
    expect(captured(out)).toEqual([{ event: "login_ok", outcome: "ok", user: "ba7816bf8f01cfea", refresh_token: false }]);
  });

  it("without cf-ray, a generated reference is shared by the page and the lines of that request", async () => {
    const out = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const ref = await withRequestLog(new Request("http://127.0.0.1/x"), async () => {
      log("logout");
      return requestRef();
    });
    expect(ref).toMatch(/^[0-9a-f-]{36}$/);
    expect(captured(out)).toEqual([expect.objectContaining({ ray: ref })]);
  });
});
