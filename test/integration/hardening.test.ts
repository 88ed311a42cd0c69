import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

describe("with CORS_PREFLIGHT=origin, preflights reach the origin bare", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { CORS_PREFLIGHT: "origin" } });
  });
  afterAll(() => stack.close());

  it("an OPTIONS 'preflight' carrying a body is forwarded without it: no payload slips past the login", async () => {
    const response = await new HttpClient().request(`${stack.gate.url}/echo/admin/delete`, {
      method: "OPTIONS",
      headers: { "access-control-request-method": "POST", origin: "https://app.example", "content-type": "application/x-www-form-urlencoded" },
      body: "id=5&confirm=1",
    });
    expect(response.status).toBe(200);
    const [seen] = stack.originRequests("/echo/admin/delete");
    expect(seen!.method).toBe("OPTIONS");
    expect(seen!.body).toBe("");
    expect(seen!.headers["content-type"]).toBeUndefined();
    expect(seen!.headers["x-forwarded-user"]).toBeUndefined();
  });

  it("an OPTIONS without Origin is no browser's preflight: 401, nothing forwarded", async () => {
    const response = await new HttpClient().request(`${stack.gate.url}/echo/no-origin`, {
      method: "OPTIONS",
      headers: { "access-control-request-method": "POST" },
    });
    expect(response.status).toBe(401);
    expect(stack.originRequests("/echo/no-origin")).toEqual([]);
  });
});

describe("a public path cannot be re-routed at the origin", () => {
  it.each(["X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Prefix", "X-Forwarded-Path", "X-Original-URI"])(
    "a client's %s never reaches the origin",
    async (name) => {
      const stack = await startStack({ vars: { PUBLIC_PATHS: "/echo/public/*" } });
      try {
        const response = await new HttpClient().get(`${stack.gate.url}/echo/public/x`, { accept: "application/json", [name]: "/admin/delete" });
        expect(response.status).toBe(200);
        const [seen] = stack.originRequests("/echo/public/x");
        expect(seen!.headers[name.toLowerCase()]).toBeUndefined();
      } finally {
        await stack.close();
      }
    },
  );
});

describe("logout only by the user's own navigation", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it("an <img src=/_auth/logout> on the site itself (same-origin, not a navigation) does not log anyone out", async () => {
    const { client } = await stack.signIn();
    const response = await client.get(`${stack.gate.url}/_auth/logout`, {
      accept: "image/avif,image/webp,*/*",
      "sec-fetch-site": "same-origin",
      "sec-fetch-mode": "no-cors",
      "sec-fetch-dest": "image",
    });
    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual([]);
    expect((await client.get(`${stack.gate.url}/still-signed-in`, NAVIGATE)).status).toBe(200);
  });

  it("a replayed callback while signed in goes home with an answer no cache keeps", async () => {
    const { client } = await stack.signIn();
    const response = await client.get(`${stack.gate.url}/_auth/callback?code=a&state=${"q".repeat(43)}`, NAVIGATE);
    expect(response.status).toBe(302);
    expect(response.headers.get("cache-control")).toBe("no-store");
  });
});

describe("error pages never link off the site", () => {
  it("the 'try again' link of a 502 for //evil.example/… stays on the site", async () => {
    const stack = await startStack();
    try {
      const { client } = await stack.signIn();
      await stack.origin.close();
      const response = await client.get(`${stack.gate.url}//evil.example/phish`, { ...NAVIGATE, "accept-language": "en" });
      expect(response.status).toBe(502);
      const page = await response.text();
      const hrefs = [...page.matchAll(/href="([^"]*)"/g)].map((match) => match[1]!.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))));
      expect(hrefs.length).toBeGreaterThan(0);
      for (const href of hrefs) expect(new URL(href, stack.gate.url).origin).toBe(stack.gate.url);
    } finally {
      await stack.gate.close();
      await stack.provider.close();
    }
  });
});
