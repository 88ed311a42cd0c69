import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { HttpClient } from "../helpers/http.ts";
import { rawRequest } from "../helpers/raw-http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { setsSession } from "../helpers/session-cookie.ts";

type Seen = { method: string; url: string; headers: Record<string, string | string[] | undefined> };

/** Identity headers as a client might forge them: any letter case, `_` for `-`. */
const SPOOFED = {
  "x-forwarded-user": "admin",
  "X-Forwarded-Email": "admin@evil.example",
  x_forwarded_name: "Admin",
  "X-Auth-Assertion": "forged",
  X_FORWARDED_ACCESS_TOKEN: "stolen",
};

function identityHeadersOf(seen: Seen): string[] {
  return Object.keys(seen.headers).filter((name) => /^x[-_](forwarded[-_](user|email|name|access[-_]token)|auth[-_]assertion)$/i.test(name));
}

describe("public paths: served without login, identity only for a signed-in user the allow-lists let in", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { PUBLIC_PATHS: "/static/*, /favicon.ico, /status/*" } });
  });
  afterAll(() => stack.close());

  function lastSeen(path: string): Seen {
    const seen = stack.originRequests(path) as Seen[];
    expect(seen.length).toBeGreaterThan(0);
    return seen[seen.length - 1]!;
  }

  it("an anonymous navigation to a public path reaches the origin with every forged identity header removed", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/static/app.css?v=3`, { ...NAVIGATE, ...SPOOFED });
    expect(response.status).toBe(200);
    expect(response.headers.has("location")).toBe(false);
    expect(setsSession(response)).toBe(false);
    expect(identityHeadersOf(lastSeen("/static/app.css?v=3"))).toEqual([]);
  });

  it("exact public paths, scripts and other methods are served anonymously too", async () => {
    const client = new HttpClient();
    expect((await client.get(`${stack.gate.url}/favicon.ico`, { accept: "image/*", "sec-fetch-mode": "no-cors" })).status).toBe(200);
    expect((await client.request(`${stack.gate.url}/static/form`, { method: "POST", body: "a=1", headers: SPOOFED })).status).toBe(200);
    const post = lastSeen("/static/form");
    expect([post.method, identityHeadersOf(post)]).toEqual(["POST", []]);
  });

  it("an anonymous public answer is left as the origin made it (no Cache-Control: private)", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/status/200`, NAVIGATE);
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBeNull();
  });

  it("a signed-in user on a public path is named to the origin, forged headers replaced, and the answer kept private", async () => {
    const { client } = await stack.signIn("/");
    const response = await client.get(`${stack.gate.url}/status/200`, { ...NAVIGATE, ...SPOOFED });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("private");
    const seen = lastSeen("/status/200");
    expect(seen.headers["x-forwarded-email"]).toBe("demo@example.kontur.ru");
    expect(seen.headers["x-forwarded-user"]).not.toBe("admin");
    expect(seen.headers["x-auth-assertion"]).not.toBe("forged");
    expect(identityHeadersOf(seen).sort()).toEqual(["x-auth-assertion", "x-forwarded-email", "x-forwarded-name", "x-forwarded-user"]);
  });

  it("the origin verifies the assertion it got on a public path", async () => {
    const { client } = await stack.signIn("/");
    const who = (await (await client.get(`${stack.gate.url}/static/whoami`, NAVIGATE)).text()) as string;
    expect(who).toContain('data-testid="assertion-status">valid<');
  });

  it("a forged or stale session cookie on a public path: served anonymously and the cookie cleared", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/static/app.css`, { ...NAVIGATE, cookie: "kg_session=1.forged.value; theme=dark" });
    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual([expect.stringMatching(/^kg_session=;.*Max-Age=0/)]);
    const seen = lastSeen("/static/app.css");
    expect(identityHeadersOf(seen)).toEqual([]);
    expect(seen.headers.cookie).toBe("theme=dark");
  });

  it("a protected path next to the public ones still asks for a login", async () => {
    const before = stack.origin.requests.length;
    const response = await new HttpClient().get(`${stack.gate.url}/staticfoo`, NAVIGATE);
    expect(response.status).toBe(302);
    expect(stack.origin.requests.length).toBe(before);
  });
});

describe("public paths and allow-lists: a signed-in user the lists refuse is served public paths anonymously", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { PUBLIC_PATHS: "/static/*", ALLOWED_EMAILS: "petrov@example.kontur.ru" } });
  });
  afterAll(() => stack.close());

  it("demo is refused on a protected page but gets public files, without being named to the origin", async () => {
    const { client } = await stack.signIn("/", "demo");
    expect((await client.get(`${stack.gate.url}/private`, NAVIGATE)).status).toBe(403);
    const response = await client.get(`${stack.gate.url}/static/logo.svg`, NAVIGATE);
    expect(response.status).toBe(200);
    const [seen] = stack.originRequests("/static/logo.svg") as Seen[];
    expect(identityHeadersOf(seen!)).toEqual([]);
    expect(stack.originRequests("/private")).toEqual([]);
  });
});

describe("API vs browser: scripts get 401 JSON with where to log in, never a redirect to the provider", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { API_PATHS: "/api/*" } });
  });
  afterAll(() => stack.close());

  const cases: { name: string; path: string; method?: string; headers: Record<string, string>; body?: string }[] = [
    { name: "fetch() from a page", path: "/data.json?x=1", headers: { accept: "*/*", "sec-fetch-mode": "cors", "sec-fetch-site": "same-origin" } },
    { name: "a same-origin fetch() asking for HTML", path: "/fragment", headers: { accept: "text/html", "sec-fetch-mode": "same-origin" } },
    { name: "an XHR (X-Requested-With)", path: "/legacy", headers: { accept: "text/html, */*", "x-requested-with": "XMLHttpRequest" } },
    { name: "a JSON client without fetch metadata", path: "/report", headers: { accept: "application/json" } },
    { name: "curl", path: "/", headers: { accept: "*/*", "user-agent": "curl/8.5.0" } },
    { name: "an <img> load", path: "/avatar.png", headers: { accept: "image/avif,image/*", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image" } },
    { name: "a form POST (its body would be lost in a redirect)", path: "/orders", method: "POST", headers: { ...NAVIGATE, "content-type": "application/x-www-form-urlencoded" }, body: "qty=1" },
    { name: "a PUT", path: "/orders/1", method: "PUT", headers: { accept: "application/json", "content-type": "application/json" }, body: "{}" },
    { name: "a DELETE", path: "/orders/1", method: "DELETE", headers: { accept: "*/*" } },
    { name: "a navigation to an API path", path: "/api/v1/items?page=2", headers: NAVIGATE },
    { name: "a WebSocket upgrade sent as a plain GET", path: "/socket", headers: { ...NAVIGATE, upgrade: "websocket", connection: "Upgrade" } },
  ];

  it.each(cases)("$name → 401 JSON + WWW-Authenticate + X-Login-URL; nothing forwarded, no login started", async ({ path, method, headers, body }) => {
    const before = stack.origin.requests.length;
    const response = await rawRequest(stack.gate.url, path, headers, method ?? "GET", body ?? "");
    const loginUrl = `/_auth/login?rd=${encodeURIComponent(path)}`;
    expect(response.status).toBe(401);
    expect(response.headers.location).toBeUndefined();
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.headers["x-login-url"]).toBe(loginUrl);
    expect(response.headers["www-authenticate"]).toBe(`Bearer realm="kontur-gate", login_url="${loginUrl}"`);
    expect(JSON.parse(response.body)).toEqual({ error: "unauthenticated", login_url: loginUrl, reference: expect.any(String) });
    expect(response.setCookie).toEqual([]);
    expect(stack.origin.requests.length).toBe(before);
  });

  it("a top-level navigation to an ordinary page still gets the redirect to the provider", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/dashboard`, NAVIGATE);
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toMatch(new RegExp(`^${stack.provider.issuer}/connect/authorize\\?`));
  });

  it("a script that sends the user to X-Login-URL gets them signed in and back to the API URL", async () => {
    const client = new HttpClient();
    const refused = await client.get(`${stack.gate.url}/api/v1/items?page=2`, { accept: "application/json" });
    const start = await client.get(new URL(refused.headers.get("x-login-url")!, stack.gate.url), NAVIGATE);
    expect(start.status).toBe(302);
    const callback = await client.get(await loginThroughProvider(start.headers.get("location")!, {}), NAVIGATE);
    expect(callback.headers.get("location")).toBe("/api/v1/items?page=2");
    const retried = await client.get(`${stack.gate.url}/api/v1/items?page=2`, { accept: "application/json" });
    expect(retried.status).toBe(200);
  });

  it("a CORS preflight is answered by the gate (403: no CORS_ORIGINS); the origin sees nothing", async () => {
    const response = await new HttpClient().request(`${stack.gate.url}/api/v1/items`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type", ...SPOOFED },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(stack.originRequests("/api/v1/items").filter((r: Seen) => r.method === "OPTIONS")).toEqual([]);
  });

  it("an OPTIONS that is not a preflight needs a session like any other method", async () => {
    const before = stack.origin.requests.length;
    const response = await new HttpClient().request(`${stack.gate.url}/api/v1/items`, { method: "OPTIONS", headers: { origin: "https://app.example" } });
    expect(response.status).toBe(401);
    expect(stack.origin.requests.length).toBe(before);
  });

  it("a signed-in script gets through on an API path", async () => {
    const { client } = await stack.signIn("/");
    const response = await client.request(`${stack.gate.url}/api/v1/items`, { method: "POST", headers: { accept: "application/json", "sec-fetch-mode": "cors" }, body: "{}" });
    expect(response.status).toBe(200);
    const [seen] = stack.originRequests("/api/v1/items").filter((r: Seen) => r.method === "POST") as Seen[];
    expect(seen!.headers["x-forwarded-email"]).toBe("demo@example.kontur.ru");
  });
});
