import { describe, expect, it } from "vitest";
import { withCookies } from "../../src/edge/context";

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
