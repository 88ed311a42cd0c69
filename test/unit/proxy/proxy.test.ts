import { afterEach, describe, expect, it, vi } from "vitest";
import { withCookies } from "../../../src/edge/context";
import { forward, privateCaching, upstreamUrl } from "../../../src/proxy/forward";
import { IDENTITY_HEADERS } from "../../../src/config/claims";
import { addIdentity, encodeHeaderValue, sanitizedHeaders, withoutGateCookies } from "../../../src/proxy/headers";
import type { UserClaims } from "../../../src/oidc/claims";

const isGateCookie = (name: string) => name === "kg_session" || name.startsWith("kg_login_");
const SITE = new URL("https://site.example/page");

describe("header hygiene: the origin never sees identity it did not get from the gate", () => {
  const spoofs = IDENTITY_HEADERS.flatMap((name) => [
    name,
    name.toUpperCase(),
    name.replace(/(^|-)(\w)/g, (_, dash: string, ch: string) => dash + ch.toUpperCase()),
    name.replace(/-/g, "_"),
    name.toUpperCase().replace(/-/g, "_"),
  ]);

  it.each(spoofs)("removes a client-supplied %s", (name) => {
    const headers = sanitizedHeaders(new Headers({ [name]: "admin", accept: "text/html" }), SITE, isGateCookie);
    expect([...headers.keys()].filter((key) => key.replace(/_/g, "-").startsWith("x-forwarded-u") || key.includes("assertion") || key.includes("access") || key.includes("email") || key.includes("name"))).toEqual([]);
    expect(headers.get("accept")).toBe("text/html");
  });

  it.each(["X-Original-URL", "x_rewrite_url", "X-Forwarded-Prefix", "X_FORWARDED_PATH", "x-original-uri", "Host"])("removes a client-supplied %s", (name) => {
    const headers = sanitizedHeaders(new Headers({ [name]: "/admin", accept: "text/html" }), SITE, isGateCookie);
    expect(Object.fromEntries(headers)).toEqual({ accept: "text/html", "x-forwarded-host": "site.example", "x-forwarded-proto": "https" });
  });

  it("makes one pass over the headers present: only those on the list are deleted, every other one is kept as sent", () => {
    const deletes = vi.spyOn(Headers.prototype, "delete");
    const sent = { accept: "text/html", "accept-language": "ru", "x_forwarded_user": "admin", "x-original-url": "/admin", cookie: "kg_session=1.a.b; theme=dark", "user-agent": "UA" };
    const headers = sanitizedHeaders(new Headers(sent), SITE, isGateCookie);
    expect(deletes.mock.calls.map(([name]) => name).sort()).toEqual(["cookie", "x-original-url", "x_forwarded_user"]);
    expect(Object.fromEntries(headers)).toEqual({ accept: "text/html", "accept-language": "ru", cookie: "theme=dark", "user-agent": "UA", "x-forwarded-host": "site.example", "x-forwarded-proto": "https" });
  });

  it("removes the gate's cookies and keeps the site's own", () => {
    const headers = sanitizedHeaders(
      new Headers({ cookie: "theme=dark; kg_session=1.abc.def; kg_login_abc_x=1.x.y; cart=42" }),
      SITE,
      isGateCookie,
    );
    expect(headers.get("cookie")).toBe("theme=dark; cart=42");
  });

  it("drops the Cookie header when only gate cookies were in it", () => {
    expect(sanitizedHeaders(new Headers({ cookie: "kg_session=x" }), SITE, isGateCookie).has("cookie")).toBe(false);
    expect(withoutGateCookies("kg_session=x;  ", isGateCookie)).toBeUndefined();
  });

  it("tells the origin which host and scheme the visitor used, overriding client values", () => {
    const headers = sanitizedHeaders(new Headers({ host: "site.example", "x-forwarded-host": "evil.com", "x-forwarded-proto": "http" }), SITE, isGateCookie);
    expect(headers.has("host")).toBe(false);
    expect(headers.get("x-forwarded-host")).toBe("site.example");
    expect(headers.get("x-forwarded-proto")).toBe("https");
  });

  it("adds exactly the identity of the session", () => {
    const headers = new Headers();
    addIdentity(headers, { user: { sub: "42", email: "a@b.ru", name: "Иванов Иван" }, assertion: "jwt", accessToken: undefined });
    expect(Object.fromEntries(headers)).toEqual({
      "x-forwarded-user": "42",
      "x-forwarded-email": "a@b.ru",
      "x-forwarded-name": "%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2%20%D0%98%D0%B2%D0%B0%D0%BD",
      "x-auth-assertion": "jwt",
    });
  });

  it("a session's user keeps its headers from request to request; changed claims are a new user and new headers", () => {
    const user: UserClaims = Object.freeze({ sub: "42", name: "Иванов Иван" });
    const sent = (u: UserClaims, claimHeaders: { header: string; claim: string }[] = []) => {
      const headers = new Headers();
      addIdentity(headers, { user: u, assertion: "jwt", accessToken: undefined, claimHeaders });
      return Object.fromEntries(headers);
    };
    expect(sent(user)).toEqual(sent(user));
    // Revalidation with new claims replaces the session's user object (session/check.ts).
    expect(sent(Object.freeze({ ...user, name: "Петров Пётр" }))["x-forwarded-name"]).toBe(encodeHeaderValue("Петров Пётр"));
    // Other CLAIM_HEADERS (another configuration) are not answered from what was made for the first.
    expect(sent(user, [{ header: "x-user-sub", claim: "sub" }])["x-user-sub"]).toBe("42");
    expect(sent(user)).not.toHaveProperty("x-user-sub");
  });

  it("omits e-mail and name when the account has none (a phone-only Kontur account)", () => {
    const headers = new Headers();
    addIdentity(headers, { user: { sub: "42" }, assertion: "jwt", accessToken: "at" });
    expect(Object.fromEntries(headers)).toEqual({ "x-forwarded-user": "42", "x-auth-assertion": "jwt", "x-forwarded-access-token": "at" });
  });
});

describe("names in headers: any UTF-8 name survives", () => {
  it.each(["Иванов Иван Иванович", "Пётр Щукин-Ёлкин", "José 100% O'Brien", "名前", "a\r\nX-Injected: 1", "emoji 🙂"])(
    "%j decodes back with decodeURIComponent",
    (name) => {
      const encoded = encodeHeaderValue(name);
      expect(encoded).toMatch(/^[\x20-\x7e]*$/);
      expect(decodeURIComponent(encoded)).toBe(name);
      expect(() => new Headers({ "x-forwarded-name": encoded })).not.toThrow();
    },
  );

  it("sends printable ASCII without % unchanged", () => {
    expect(encodeHeaderValue("Ivan Ivanov")).toBe("Ivan Ivanov");
    expect(encodeHeaderValue("O'Brien (Ops)")).toBe("O'Brien (Ops)");
  });
});

describe("where requests go", () => {
  it("keeps the request's own URL without ORIGIN_URL", () => {
    expect(upstreamUrl(new URL("https://site.example/a?b=1"), undefined).href).toBe("https://site.example/a?b=1");
  });
  it("joins ORIGIN_URL and the path and query", () => {
    expect(upstreamUrl(new URL("https://site.example/a/b?c=1"), new URL("http://127.0.0.1:9091")).href).toBe("http://127.0.0.1:9091/a/b?c=1");
    expect(upstreamUrl(new URL("https://site.example/a?c=1"), new URL("https://origin.example/app/")).href).toBe("https://origin.example/app/a?c=1");
  });
});

describe("responses going back: caching and cookies", () => {
  it.each([
    [null, "private"],
    ["max-age=60", "private, max-age=60"],
    ["s-maxage=600, max-age=60", "private, s-maxage=600, max-age=60"],
    ["no-cache", "private, no-cache"],
    ["public, max-age=60", "public, max-age=60"],
    ["Public", "Public"],
    ["private, max-age=60", "private, max-age=60"],
    ["no-store", "no-store"],
  ])("an authenticated response with Cache-Control %j leaves with %j", (sent, expected) => {
    const origin = new Response("personal", { headers: sent === null ? {} : { "cache-control": sent } });
    expect(privateCaching(origin).headers.get("cache-control")).toBe(expected);
  });

  it("keeps status, headers and the streamed body when adding Cache-Control", async () => {
    const origin = new Response("body", { status: 404, headers: { "set-cookie": "a=1", "x-origin": "yes" } });
    const out = privateCaching(origin);
    expect([out.status, out.headers.get("x-origin"), out.headers.getAll("set-cookie"), await out.text()]).toEqual([404, "yes", ["a=1"], "body"]);
  });

  it("leaves a WebSocket handshake (101) alone in privateCaching, and carries cookies on it in withCookies", () => {
    const [client] = Object.values(new WebSocketPair());
    const handshake = new Response(null, { status: 101, webSocket: client!, headers: { "sec-websocket-protocol": "chat" } });
    expect(privateCaching(handshake)).toBe(handshake);
    const out = withCookies(handshake, ["kg_session=new; Path=/"]);
    expect(out.status).toBe(101);
    expect(out.webSocket).toBe(client);
    expect(out.headers.get("sec-websocket-protocol")).toBe("chat");
    expect(out.headers.getAll("set-cookie")).toEqual(["kg_session=new; Path=/"]);
  });

  it("appends cookies to the origin's own Set-Cookie headers, and copies nothing when there are none", () => {
    const origin = new Response("x", { headers: { "set-cookie": "site=1" } });
    expect(withCookies(origin, [])).toBe(origin);
    expect(withCookies(origin, ["kg_session=v"]).headers.getAll("set-cookie")).toEqual(["site=1", "kg_session=v"]);
  });
});

describe("forwarding: personal answers bypass Cloudflare's cache in front of the origin", () => {
  afterEach(() => vi.restoreAllMocks());

  async function initFor(audience: "shared" | "personal", method = "GET"): Promise<(RequestInit & { cache?: string }) | undefined> {
    const spy = vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("ok"));
    const request = new Request("https://site.example/a", { method, ...(method === "GET" ? {} : { body: "x" }) });
    await forward(request, new URL("https://origin.example/a"), new Headers({ accept: "*/*" }), audience);
    return spy.mock.calls[0]?.[1];
  }

  it("a personal request is fetched with cache: no-store and redirects are passed back, not followed", async () => {
    expect(await initFor("personal")).toMatchObject({ cache: "no-store", redirect: "manual", method: "GET", body: null });
  });
  it("a shared request (public path, preflight) may use the cache", async () => {
    expect((await initFor("shared"))?.cache).toBeUndefined();
  });
  it("a POST body is streamed on", async () => {
    expect((await initFor("personal", "POST"))?.body).toBeInstanceOf(ReadableStream);
  });
});
