/**
 * Every page the gate shows instead of the site: never cached, never framed, no scripts, no
 * referrer, nothing of the request echoed back (markup in the path, query, headers or cf-ray), no
 * stack trace, and a reference that leads to the request's log lines.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { raw, signNone } from "../fixtures/hostile-provider.mjs";
import { startGate } from "../helpers/gate.ts";
import {
  attemptLogin,
  authorizeAt,
  NAVIGATE,
  rawExchange,
  scanForSecrets,
  signIn,
  startHostileStack,
  startLogin,
  WatchedClient,
  type HostileStack,
} from "./harness.ts";

scanForSecrets();

/** Sent with every request, in the query, in headers and as cf-ray: none of it may show up on a page. */
const MARK = `kgmark<script>alert(1)</script>"'`;
const MARK_HEADERS = { "x-marker": MARK, "user-agent": MARK, referer: `https://evil.example/${encodeURIComponent(MARK)}`, "cf-ray": MARK };
const HTML = { ...NAVIGATE, "accept-language": "en", ...MARK_HEADERS };
const q = `mark=${encodeURIComponent(MARK)}`;

interface Page {
  status: number;
  header(name: string): string | null;
  body: string;
}

async function page(response: Response): Promise<Page> {
  return { status: response.status, header: (name) => response.headers.get(name), body: await response.text() };
}

/** What every gate page must carry; `logs` are the gate's, to find the page's reference in. */
async function expectSafePage(result: Page, status: number, logs: string[]): Promise<void> {
  expect(result.status).toBe(status);
  expect(result.header("content-type")).toBe("text/html; charset=utf-8");
  expect(result.header("cache-control")).toBe("no-store");
  const csp = result.header("content-security-policy") ?? "";
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toMatch(/script-src|unsafe-eval/);
  expect(result.header("x-frame-options")).toBe("DENY");
  expect(result.header("referrer-policy")).toBe("no-referrer");
  expect(result.header("x-content-type-options")).toBe("nosniff");
  // The one echo allowed is a link back into the site (a retry that returns to the page asked
  // for), percent-encoded and HTML-escaped; apart from it nothing of the request shows.
  const ownLinks = /href="\/(?![/\\])[\w%.~!$()*+,;=:@/?-]*(?:&#38;[\w%.~!$()*+,;=:@/?-]*)*"/g;
  expect(result.body.replace(ownLinks, 'href=""')).not.toContain("kgmark");
  expect(result.body).not.toContain("evil.example");
  expect(result.body).not.toMatch(/<script|\bat \S+ \(|\.(ts|js|mjs):\d+|node_modules|workerd|Error: /);
  if (status >= 400) {
    const reference = /<code>([^<]+)<\/code>/.exec(result.body)?.[1];
    expect(reference).toMatch(/^[0-9a-f-]{16,}/);
    // Miniflare hands the Worker's log lines over asynchronously, possibly after the response.
    await expect.poll(() => logs.some((line) => line.includes(`"ray":"${reference}"`))).toBe(true);
  }
}

describe("error pages: headers, no echo, no stack, a reference that leads to the log", () => {
  let stack: HostileStack;
  let forbidden: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack();
    forbidden = await startHostileStack({ vars: { ALLOWED_EMAILS: "boss@example.kontur.ru" } });
  });
  afterAll(async () => {
    await stack.close();
    await forbidden.close();
  });

  const pages: { name: string; status: number; open: () => Promise<Page>; logs?: () => string[] }[] = [
    {
      name: "login_expired: a callback that matches no login",
      status: 400,
      open: async () => page(await new WatchedClient().get(`${stack.gate.url}/_auth/callback?code=${encodeURIComponent(MARK)}&state=${"x".repeat(43)}&${q}`, HTML)),
    },
    {
      name: "callback_invalid: the provider answered with an error",
      status: 400,
      open: async () => {
        const { client, authorizeUrl } = await startLogin(stack);
        const back = await authorizeAt(authorizeUrl);
        back.searchParams.delete("code");
        back.searchParams.set("error", "server_error");
        back.searchParams.set("error_description", MARK);
        return page(await client.get(back, HTML));
      },
    },
    {
      name: "access_denied: the user declined",
      status: 403,
      open: async () => {
        const { client, authorizeUrl } = await startLogin(stack);
        const back = await authorizeAt(authorizeUrl);
        back.searchParams.delete("code");
        back.searchParams.set("error", "access_denied");
        back.searchParams.set("error_description", MARK);
        return page(await client.get(back, HTML));
      },
    },
    {
      name: "login_rejected: an id_token that fails the checks",
      status: 401,
      open: async () => {
        stack.provider.set({ sign: (header, claims) => signNone(header, claims) });
        try {
          const { client, authorizeUrl } = await startLogin(stack, new WatchedClient(), `/private?${q}`);
          return page(await client.get(await authorizeAt(authorizeUrl), HTML));
        } finally {
          stack.provider.reset();
        }
      },
    },
    {
      name: "provider_unavailable at the callback: the page holds neither the code nor the state",
      status: 503,
      open: async () => {
        stack.provider.set({ token: () => raw(500, "down") });
        try {
          const { client, authorizeUrl } = await startLogin(stack);
          const back = await authorizeAt(authorizeUrl);
          const result = await page(await client.get(back, HTML));
          expect(result.body).not.toContain(back.searchParams.get("code")!);
          expect(result.body).not.toContain(back.searchParams.get("state")!);
          expect(result.header("retry-after")).toMatch(/^\d+$/);
          return result;
        } finally {
          stack.provider.reset();
        }
      },
    },
    {
      name: "not_found: an unknown gate endpoint",
      status: 404,
      open: async () => page(await new WatchedClient().get(`${stack.gate.url}/_auth/${encodeURIComponent(MARK)}?${q}`, HTML)),
    },
    {
      name: "cross_site: a logout form posted from another site",
      status: 403,
      open: async () =>
        page(await new WatchedClient().request(`${stack.gate.url}/_auth/logout?${q}`, { method: "POST", headers: { ...HTML, "sec-fetch-site": "cross-site", origin: "https://evil.example" } })),
    },
    {
      name: "insecure_transport: plain http to a public host name",
      status: 400,
      open: async () => {
        const answer = await rawExchange(stack, {
          target: `/private?${q}`,
          headers: { host: "evil.example", accept: "text/html", "sec-fetch-mode": "navigate", "accept-language": "en", "x-marker": MARK, "cf-ray": MARK },
        });
        return { status: answer.status, header: (name) => answer.headers[name] ?? null, body: answer.body };
      },
    },
    {
      name: "forbidden: signed in, but not on the allow-list",
      status: 403,
      open: async () => {
        const client = await signIn(forbidden, new WatchedClient(), "/");
        return page(await client.get(`${forbidden.gate.url}/private?${q}`, HTML));
      },
      logs: () => forbidden.gate.logs,
    },
    {
      name: "the signed-out page",
      status: 200,
      open: async () => page(await new WatchedClient().get(`${stack.gate.url}/_auth/signed-out?${q}`, HTML)),
    },
    {
      name: "the logout confirmation for a cross-site link",
      status: 200,
      open: async () => page(await new WatchedClient().get(`${stack.gate.url}/_auth/logout?rd=${encodeURIComponent(MARK)}&${q}`, { ...HTML, "sec-fetch-site": "cross-site" })),
    },
  ];

  it.each(pages)("$name", async ({ status, open, logs }) => {
    const result = await open();
    await expectSafePage(result, status, (logs ?? (() => stack.gate.logs))());
  });

  it("provider_unavailable on a page: discovery down → 503 page, its retry link stays on the site", async () => {
    const down = await startHostileStack({ scenario: { discovery: () => raw(500, "down") } });
    try {
      const result = await page(await new WatchedClient().get(`${down.gate.url}/private?${q}`, HTML));
      await expectSafePage(result, 503, down.gate.logs);
      const retry = /href="([^"]+)"/.exec(result.body)?.[1];
      expect(retry).toMatch(/^\/(?![/\\])/);
    } finally {
      await down.close();
    }
  });

  it("a script gets JSON errors: no-store, nosniff-safe type, only a reference", async () => {
    const response = await new WatchedClient().get(`${stack.gate.url}/private?${q}`, { accept: "application/json", ...MARK_HEADERS });
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(["error", "login_url", "reference"]);
    // The login URL leads back to the page asked for, percent-encoded; nothing else is echoed.
    expect(body.login_url).toMatch(/^\/_auth\/login\?rd=[\w%.~!'()*-]*$/);
    expect(body.reference).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("a login that fails renders the page in the user's language without the provider's words", async () => {
    stack.provider.set({ claims: (c) => ({ ...c, iss: MARK }) });
    try {
      const { callback } = await attemptLogin(stack);
      const body = await callback.text();
      expect(callback.status).toBe(401);
      expect(body).toContain("Вход не удался");
      expect(body).not.toContain("kgmark");
    } finally {
      stack.provider.reset();
    }
  });
});

describe("the misconfiguration page", () => {
  it("names the settings to fix, is not cached or framed, holds no secret and a reference", async () => {
    const gate = await startGate({ OIDC_CLIENT_SECRET: "a-secret-that-must-not-show-up", SESSION_SECRETS: "short" });
    try {
      const response = await new WatchedClient().get(`${gate.url}/private?${q}`, HTML);
      const body = await response.text();
      expect(response.status).toBe(500);
      expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
      expect(body).toContain("OIDC_CLIENT_ID");
      expect(body).toContain("SESSION_SECRETS");
      expect(body).not.toContain("a-secret-that-must-not-show-up");
      expect(body).not.toContain("kgmark");
      const reference = /Reference: (\S+)/.exec(body)?.[1];
      await expect.poll(() => gate.logs.some((line) => line.includes(`"ray":"${reference}"`))).toBe(true);
      expect(gate.logs.join("\n")).not.toContain("a-secret-that-must-not-show-up");
    } finally {
      await gate.close();
    }
  });
});
