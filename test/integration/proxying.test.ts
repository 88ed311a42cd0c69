import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpClient } from "../helpers/http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

describe("forwarding: the origin gets the request as sent, and the browser the answer as given", () => {
  let stack: Stack;
  let client: HttpClient;
  beforeAll(async () => {
    stack = await startStack();
    ({ client } = await stack.signIn());
  });
  afterAll(() => stack.close());

  it("method, path, query and the site's own headers pass through", async () => {
    const response = await client.request(`${stack.gate.url}/echo/a%20b/c?x=1&y=%D1%8F`, {
      method: "PUT",
      headers: { "content-type": "application/json", "x-site-header": "kept", accept: "application/json" },
      body: JSON.stringify({ hello: "мир" }),
    });
    expect(response.status).toBe(200);
    const echo = (await response.json()) as { method: string; url: string; headers: Record<string, string>; body: string };
    expect(echo.method).toBe("PUT");
    expect(echo.url).toBe("/echo/a%20b/c?x=1&y=%D1%8F");
    expect(echo.headers["x-site-header"]).toBe("kept");
    expect(JSON.parse(echo.body)).toEqual({ hello: "мир" });
    expect(echo.headers["x-forwarded-host"]).toBe(new URL(stack.gate.url).host);
    expect(echo.headers["x-forwarded-proto"]).toBe("http");
  });

  it("a large upload is streamed through intact", async () => {
    const body = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 31) % 251);
    const response = await client.request(`${stack.gate.url}/upload`, { method: "POST", body, headers: { "content-type": "application/octet-stream" } });
    expect(await response.json()).toEqual({ bytes: body.length, sha256: createHash("sha256").update(body).digest("hex") });
  });

  it("redirects from the origin reach the browser unchanged", async () => {
    const response = await client.get(`${stack.gate.url}/redirect`, NAVIGATE);
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/echo?from=redirect");
  });

  it.each([201, 204, 400, 404, 418, 500, 503])("status %i reaches the browser unchanged", async (status) => {
    const response = await client.get(`${stack.gate.url}/status/${status}`, NAVIGATE);
    expect(response.status).toBe(status);
  });

  it("every Set-Cookie of the origin reaches the browser", async () => {
    const response = await client.get(`${stack.gate.url}/set-cookie`, NAVIGATE);
    expect(response.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/; HttpOnly"]);
  });

  it("a streaming body arrives in pieces, not buffered to the end", async () => {
    const response = await client.get(`${stack.gate.url}/stream`, NAVIGATE);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const pieces: string[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pieces.push(decoder.decode(value));
    }
    expect(pieces.join("")).toBe("chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    expect(pieces.length).toBeGreaterThan(1);
  });

  it("spoofed identity headers are replaced by the session's identity", async () => {
    const response = await client.get(`${stack.gate.url}/echo`, {
      ...NAVIGATE,
      "x-forwarded-user": "admin",
      "X-Forwarded-Email": "admin@evil.example",
      x_forwarded_name: "Admin",
      "x-auth-assertion": "forged",
      "X-FORWARDED-ACCESS-TOKEN": "stolen",
    });
    const echo = (await response.json()) as { headers: Record<string, string> };
    expect(echo.headers["x-forwarded-user"]).not.toBe("admin");
    expect(echo.headers["x-forwarded-email"]).toBe("demo@example.kontur.ru");
    expect(echo.headers["x_forwarded_name"]).toBeUndefined();
    expect(echo.headers["x-auth-assertion"]).not.toBe("forged");
    expect(echo.headers["x-forwarded-access-token"]).toBeUndefined();
  });

  it("the gate's cookies never reach the origin; the site's own do", async () => {
    const session = client.jar.get(new URL(stack.gate.url).hostname, "kg_session")!;
    const response = await client.get(`${stack.gate.url}/echo`, { ...NAVIGATE, cookie: `theme=dark; kg_session=${session}; kg_login_zz_abc=1` });
    const echo = (await response.json()) as { headers: Record<string, string> };
    expect(echo.headers.cookie).toBe("theme=dark");
  });

  it("the origin decodes the Cyrillic name and verifies the assertion", async () => {
    const response = await client.get(`${stack.gate.url}/whoami`, { accept: "application/json" });
    const who = (await response.json()) as { name: string; nameRaw: string; assertion: { status: string } };
    expect(who.name).toBe("Иванов Иван Иванович");
    expect(who.nameRaw).toMatch(/^[\x20-\x7e]+$/);
    expect(who.assertion.status).toBe("valid");
  });

  it("personal responses are not left to shared caches, unless the origin says how to cache them", async () => {
    const response = await client.get(`${stack.gate.url}/status/200`, NAVIGATE);
    expect(response.headers.get("cache-control")).toBe("private");
    const explicit = await client.get(`${stack.gate.url}/stream`, NAVIGATE);
    expect(explicit.headers.get("cache-control")).toBe("no-store");
  });
});

describe("forwarding: accounts without e-mail or with an access token for the origin", () => {
  it("a phone-only Kontur account reaches the origin without X-Forwarded-Email", async () => {
    const stack = await startStack();
    try {
      const { client } = await stack.signIn("/", "phone");
      const echo = (await (await client.get(`${stack.gate.url}/echo`, NAVIGATE)).json()) as { headers: Record<string, string> };
      expect(echo.headers["x-forwarded-user"]).toEqual(expect.any(String));
      expect(echo.headers["x-forwarded-email"]).toBeUndefined();
    } finally {
      await stack.close();
    }
  });

  it("PASS_ACCESS_TOKEN=true sends the provider's access token; the default does not", async () => {
    const stack = await startStack({ vars: { PASS_ACCESS_TOKEN: "true" } });
    try {
      const { client } = await stack.signIn();
      const echo = (await (await client.get(`${stack.gate.url}/echo`, NAVIGATE)).json()) as { headers: Record<string, string> };
      expect(echo.headers["x-forwarded-access-token"]!.length).toBeGreaterThan(20);
    } finally {
      await stack.close();
    }
  });
});

describe("forwarding: an origin that does not answer", () => {
  it("gives a clean 502 page with Retry-After, not an internal error", async () => {
    const stack = await startStack();
    try {
      const { client } = await stack.signIn();
      await stack.origin.close();
      const page = await client.get(`${stack.gate.url}/down`, { ...NAVIGATE, "accept-language": "en" });
      expect(page.status).toBe(502);
      expect(page.headers.get("retry-after")).toBe("10");
      expect(await page.text()).toContain("Site unavailable");
      const api = await client.get(`${stack.gate.url}/down`, { accept: "application/json" });
      expect(api.status).toBe(502);
      expect(await api.json()).toMatchObject({ error: "origin_unavailable" });
    } finally {
      await stack.gate.close();
      await stack.provider.close();
    }
  });
});
