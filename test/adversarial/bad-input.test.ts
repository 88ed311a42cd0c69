/**
 * Malformed and oversized requests: 16 KB URLs, invalid UTF-8 and control characters in paths and
 * parameters, huge headers, methods nobody expects. The gate answers each with a 4xx (or the login
 * redirect a navigation gets), never a 5xx, never a hang, and nothing of it reaches the origin.
 * Every exchange is raw and bounded (RAW_TIMEOUT_MS): no answer in time is a failure.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { rawExchange, scanForSecrets, startHostileStack, type HostileStack } from "./harness.ts";
import { getHead } from "./raw-http.ts";

scanForSecrets();

const KB = 1024;
const JSON_ACCEPT = "Accept: application/json";
const NAVIGATION = ["Accept: text/html", "Sec-Fetch-Mode: navigate"];

describe("bad input: a 4xx or a login redirect, never a 5xx or a hang, never forwarded", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: { PUBLIC_PATHS: "/static/*" } });
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  /** One request by the script `head(port)`; the status must be one of `expected`. */
  async function expectAnswer(head: string | Buffer, expected: number[]) {
    const answer = await rawExchange(stack, head);
    expect(expected).toContain(answer.status);
    expect(stack.origin.requests).toEqual([]);
    for (const value of Object.values(answer.headers)) expect(value.length).toBeLessThan(8 * KB);
    return answer;
  }

  const port = () => stack.gate.port;
  const cases: { name: string; head: () => string | Buffer; expected: number[] }[] = [
    { name: "a 16 KB path, navigation: the login redirect, without the path in it", head: () => getHead(port(), `/${"a".repeat(16 * KB)}`, ...NAVIGATION), expected: [302] },
    { name: "a 16 KB path, script: 401 whose login_url does not echo it", head: () => getHead(port(), `/${"a".repeat(16 * KB)}`, JSON_ACCEPT), expected: [401] },
    { name: "a 64 KB path of percent escapes, script: 401, headers stay small", head: () => getHead(port(), `/${"%FF".repeat(21 * KB)}`, JSON_ACCEPT), expected: [401] },
    { name: "a 16 KB query string", head: () => getHead(port(), `/x?q=${"z".repeat(16 * KB)}`, JSON_ACCEPT), expected: [401] },
    { name: "a 16 KB rd at /_auth/login", head: () => getHead(port(), `/_auth/login?rd=/${"r".repeat(16 * KB)}`, ...NAVIGATION), expected: [302] },
    { name: "a 16 KB state at the callback", head: () => getHead(port(), `/_auth/callback?code=x&state=${"s".repeat(16 * KB)}`, ...NAVIGATION), expected: [400] },
    { name: "a 16 KB path on a public prefix", head: () => getHead(port(), `/static/${"%2e%2e/".repeat(3 * KB)}admin`, JSON_ACCEPT), expected: [401] },
    { name: "a query naming a public path (/private?/static/app.css; oauth2-proxy GHSA-7rh7-c77v-6434)", head: () => getHead(port(), "/private?/static/app.css", JSON_ACCEPT), expected: [401] },
    { name: "an encoded # and dot segments under a public prefix (/static/%23/../../private)", head: () => getHead(port(), "/static/%23/../../private", JSON_ACCEPT), expected: [401] },
    { name: "an encoded # ending a public prefix (/static%23/x, oauth2-proxy GHSA-pxq7-h93f-9jrg)", head: () => getHead(port(), "/static%23/x", JSON_ACCEPT), expected: [401] },
    {
      name: "a POST with a body to a protected path, no session (mod_auth_openidc CVE-2025-31492)",
      head: () => `POST /private HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n${JSON_ACCEPT}\r\n\r\nsecret=1234`,
      expected: [401],
    },
    { name: "invalid UTF-8 in the path (%FF%FE)", head: () => getHead(port(), "/%FF%FE", JSON_ACCEPT), expected: [401] },
    { name: "an overlong UTF-8 slash in the path (%C0%AF)", head: () => getHead(port(), "/static/%C0%AFadmin", JSON_ACCEPT), expected: [401] },
    { name: "invalid UTF-8 under a public prefix is not public (/static/%FF)", head: () => getHead(port(), "/static/%FF", JSON_ACCEPT), expected: [401] },
    { name: "raw bytes 0xFF 0xFE in the path", head: () => Buffer.from(`GET /\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\n${JSON_ACCEPT}`, "latin1"), expected: [401] },
    { name: "a raw control character (0x01) in the path", head: () => getHead(port(), "/a\x01b", JSON_ACCEPT), expected: [400, 401] },
    { name: "a raw DEL (0x7F) in the path", head: () => getHead(port(), "/a\x7fb", JSON_ACCEPT), expected: [400, 401] },
    { name: "a raw NUL in the path", head: () => getHead(port(), "/a\x00b", JSON_ACCEPT), expected: [400] },
    { name: "an encoded NUL under a public prefix (/static/%00x)", head: () => getHead(port(), "/static/%00x", JSON_ACCEPT), expected: [401] },
    { name: "encoded CR LF in the path (header injection attempt)", head: () => getHead(port(), "/%0d%0aX-Injected:%201", JSON_ACCEPT), expected: [401] },
    { name: "invalid UTF-8 in rd", head: () => getHead(port(), "/_auth/login?rd=%FF%FE", ...NAVIGATION), expected: [302] },
    { name: "invalid UTF-8 in state and code", head: () => getHead(port(), "/_auth/callback?state=%FF&code=%C0%AF", ...NAVIGATION), expected: [400] },
    { name: "control characters in rd", head: () => getHead(port(), "/_auth/login?rd=/%01%7f%0d%0a", ...NAVIGATION), expected: [302] },
    { name: "a 64 KB header", head: () => getHead(port(), "/private", JSON_ACCEPT, `X-Big: ${"b".repeat(64 * KB)}`), expected: [401, 431] },
    { name: "200 headers of 100 bytes", head: () => getHead(port(), "/private", JSON_ACCEPT, ...Array.from({ length: 200 }, (_, i) => `X-H${i}: ${"v".repeat(100)}`)), expected: [401, 431] },
    { name: "a 32 KB Cookie header of 1000 cookies", head: () => getHead(port(), "/private", JSON_ACCEPT, `Cookie: ${Array.from({ length: 1000 }, (_, i) => `c${i}=${"v".repeat(25)}`).join("; ")}`), expected: [401, 431] },
    { name: "a control character in a header value", head: () => getHead(port(), "/private", JSON_ACCEPT, "X-A: a\x01b"), expected: [400, 401] },
    { name: "PROPFIND on a protected path", head: () => `PROPFIND /private HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\n${JSON_ACCEPT}`, expected: [401] },
    { name: "TRACE on a protected path", head: () => `TRACE /private HTTP/1.1\r\nHost: 127.0.0.1:${port()}`, expected: [401] },
    { name: "an unknown method (FOO)", head: () => `FOO /private HTTP/1.1\r\nHost: 127.0.0.1:${port()}`, expected: [400, 405, 501] },
    { name: "TRACE on /_auth/me", head: () => `TRACE /_auth/me HTTP/1.1\r\nHost: 127.0.0.1:${port()}`, expected: [404, 405] },
    { name: "DELETE on /_auth/me", head: () => `DELETE /_auth/me HTTP/1.1\r\nHost: 127.0.0.1:${port()}`, expected: [404, 405] },
    { name: "PUT on the callback", head: () => `PUT /_auth/callback?code=a&state=b HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\nContent-Length: 0`, expected: [404, 405] },
    { name: "PATCH on /_auth/login", head: () => `PATCH /_auth/login?rd=/x HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\nContent-Length: 0`, expected: [404, 405] },
    { name: "HTTP/1.0 without a Host header", head: () => `GET /private HTTP/1.0\r\n${JSON_ACCEPT}`, expected: [400] },
  ];

  it.each(cases)("$name", async ({ head, expected }) => {
    await expectAnswer(head(), expected);
  });

  it("a JSON 401 for a 16 KB path points the script at a login that returns home, not at the 16 KB path", async () => {
    const answer = await expectAnswer(getHead(port(), `/${"a".repeat(16 * KB)}`, JSON_ACCEPT), [401]);
    expect(JSON.parse(answer.body)).toMatchObject({ error: "unauthenticated", login_url: "/_auth/login?rd=%2F" });
    expect(answer.headers["x-login-url"]).toBe("/_auth/login?rd=%2F");
  });

  it("CONNECT is refused by the runtime before the gate runs (workerd: 500 from its entrypoint; Cloudflare's edge refuses it)", async () => {
    const logged = stack.gate.logs.length;
    const answer = await rawExchange(stack, `CONNECT 127.0.0.1:${port()} HTTP/1.1\r\nHost: 127.0.0.1:${port()}`);
    expect(answer.headers.location).toBeUndefined();
    expect(answer.setCookie).toEqual([]);
    expect(stack.origin.requests).toEqual([]);
    if (answer.status === 500) {
      expect(stack.gate.logs.slice(logged).join("\n")).toContain("Incoming CONNECT on a worker not supported");
      expect(stack.gate.logs.slice(logged).join("\n")).not.toMatch(/"event":/);
    } else {
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
    }
  });

  it("the gate still serves normally after all of the above", async () => {
    const answer = await rawExchange(stack, getHead(port(), "/static/app.css", JSON_ACCEPT));
    expect(answer.status).toBeLessThan(500);
    expect(stack.origin.requests).toHaveLength(1);
  });
});
