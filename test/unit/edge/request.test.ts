import { describe, expect, it } from "vitest";
import { withCookies } from "../../../src/edge/context";
import { readCookie } from "../../../src/session/cookie";

describe("a response that carries a cookie is never cached", () => {
  it("a page the origin marked public loses that mark when the gate re-issues the session cookie on it", () => {
    const response = withCookies(new Response("page", { headers: { "cache-control": "public, max-age=86400" } }), ["kg_session=1.a.b; Path=/"]);
    expect(response.headers.get("cache-control")).toBe("private, no-store");
    expect(response.headers.get("set-cookie")).toBe("kg_session=1.a.b; Path=/");
  });

  it("a no-store answer stays as it is", () => {
    const response = withCookies(new Response("page", { headers: { "cache-control": "no-store" } }), ["kg_session=; Max-Age=0"]);
    expect(response.headers.get("cache-control")).toBe("no-store");
  });

  it("nothing to add leaves the response untouched", () => {
    const original = new Response("page", { headers: { "cache-control": "public, max-age=60" } });
    expect(withCookies(original, [])).toBe(original);
  });
});

describe("which session cookie a request carries", () => {
  it.each([
    ["kg_session=abc", "abc"],
    ["theme=dark; kg_session=abc; lang=ru", "abc"],
    ["  kg_session = abc  ;x=1", "abc"],
    // Two with the same name (a parent path's cookie, or one planted on plain http): the first, as Hono's parser.
    ["kg_session=first; kg_session=second", "first"],
    // Names are compared whole: neither a prefix spelling nor a look-alike is taken.
    ["__Host-kg_session=secure", undefined],
    ["kg_session_old=abc; xkg_session=def", undefined],
    ["kg_session", undefined],
    ["", undefined],
    [null, undefined],
  ])("%j → %j", (header, value) => {
    expect(readCookie(header, "kg_session")).toBe(value);
  });

  it("the value is taken as sent: a seal is base64url, so anything decoded would not be one", () => {
    expect(readCookie("__Host-kg_session=a%2Eb.c", "__Host-kg_session")).toBe("a%2Eb.c");
  });
});
