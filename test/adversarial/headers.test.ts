/**
 * Headers as weapons: identity headers spoofed in every spelling, on public and protected paths;
 * Host and X-Forwarded-* tricks that would move the redirect URI or the cookie's scope; a return
 * target (`rd`) aimed off-site through every parsing trick peers' advisories were made of.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  authorizeAt,
  expectLoggedRefusal,
  expectRefused,
  NAVIGATE,
  rawExchange,
  scanForSecrets,
  type RawExchange,
  signIn,
  startHostileStack,
  WatchedClient,
  type HostileStack,
} from "./harness.ts";

scanForSecrets();

const IDENTITY = ["X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Name", "X-Auth-Assertion", "X-Forwarded-Access-Token"];
const SPOOFED = "spoofed-by-the-client";

/** Every spelling an origin might fold into `name`: case, and `_` for `-` (CGI, PHP, WSGI, nginx). */
function spellings(name: string): string[] {
  const lower = name.toLowerCase();
  const underscored = name.replace(/-/g, "_");
  return [name, lower, name.toUpperCase(), underscored, underscored.toLowerCase(), underscored.toUpperCase(), name.replace(/-(?=[^-]*$)/, "_")];
}

/** What the origin received, header names folded the way CGI does. */
function folded(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase().replace(/_/g, "-"), String(value)]));
}

describe("spoofed identity headers never reach the origin", () => {
  let stack: HostileStack;
  let cookie: string;
  beforeAll(async () => {
    stack = await startHostileStack({ vars: { PUBLIC_PATHS: "/static/*" } });
    const client = await signIn(stack);
    cookie = `kg_session=${client.jar.get("127.0.0.1", "kg_session")!}`;
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  /** One request carrying every spelling of `name` at once (a raw request: clients merge them). */
  function spoofing(target: string, name: string, extra: Record<string, string> = {}) {
    const spoofed = Object.fromEntries(spellings(name).map((n, i) => [n, `${SPOOFED}-${i}`]));
    return rawExchange(stack, { target, headers: { accept: "application/json", ...spoofed, ...extra } });
  }

  it.each(IDENTITY)("%s in seven spellings on a public path: the origin gets none of them", async (name) => {
    const answer = await spoofing("/static/app.css", name);
    expect(answer.status).toBeLessThan(500);
    expect(stack.origin.requests).toHaveLength(1);
    const seen = folded(stack.origin.requests[0]!.headers);
    expect(seen[name.toLowerCase()]).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(SPOOFED);
  });

  it.each(IDENTITY)("%s in seven spellings on a protected path, signed in: the origin gets only the gate's", async (name) => {
    const answer = await spoofing("/private", name, { cookie });
    expect(answer.status).toBe(200);
    const seen = folded(stack.origin.requests[0]!.headers);
    expect(JSON.stringify(seen)).not.toContain(SPOOFED);
    expect(seen["x-forwarded-user"]).toBe("hostile-user-1");
  });

  it("every identity header spoofed without a session on a protected path: 401, the origin sees nothing", async () => {
    const spoofed = Object.fromEntries(IDENTITY.flatMap((name) => spellings(name).map((n) => [n, SPOOFED])));
    const answer = await rawExchange(stack, { target: "/private", headers: { accept: "application/json", ...spoofed } });
    expect(answer.status).toBe(401);
    expect(stack.origin.requests).toEqual([]);
  });

  it.each(["GoogleHC/1.0", "kube-probe/1.29", "ELB-HealthChecker/2.0"])(
    "a health-check User-Agent (%s) on a protected path is still refused (oauth2-proxy GHSA-5hvv-m4w4-gf6v)",
    async (agent) => {
      const answer = await rawExchange(stack, { target: "/private", headers: { accept: "application/json", "user-agent": agent } });
      expect(answer.status).toBe(401);
      expect(stack.origin.requests).toEqual([]);
    },
  );

  it("X-Forwarded-Uri / X-Original-URL / X-Rewrite-URL naming a public path do not make a protected path public", async () => {
    const answer = await rawExchange(stack, {
      target: "/private",
      headers: { accept: "application/json", "x-forwarded-uri": "/static/app.css", "x-original-url": "/static/app.css", "x-rewrite-url": "/static/app.css" },
    });
    expect(answer.status).toBe(401);
    expect(stack.origin.requests).toEqual([]);
  });
});

describe("Host and X-Forwarded-* tricks never move the redirect URI or the cookie's scope", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack();
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  /** The login redirect's redirect_uri, and the pending-login cookie it set. */
  function loginOf(answer: { status: number; headers: Record<string, string>; setCookie: string[] }) {
    expect(answer.status).toBe(302);
    const location = new URL(answer.headers.location!);
    return { location, redirectUri: location.searchParams.get("redirect_uri"), cookie: answer.setCookie.join("\n") };
  }

  const forwarded: { name: string; headers: Record<string, string> }[] = [
    { name: "X-Forwarded-Host naming another site", headers: { "x-forwarded-host": "evil.example" } },
    { name: "X-Forwarded-Proto: https (a scheme the request did not use)", headers: { "x-forwarded-proto": "https" } },
    { name: "X-Forwarded-Host and -Port together", headers: { "x-forwarded-host": "evil.example", "x-forwarded-port": "443" } },
    { name: "RFC 7239 Forwarded with host and proto", headers: { forwarded: "for=1.2.3.4;host=evil.example;proto=https" } },
    { name: "X-Host / X-Original-Host", headers: { "x-host": "evil.example", "x-original-host": "evil.example" } },
  ];
  const navigation = { accept: "text/html", "sec-fetch-mode": "navigate" };

  it.each(forwarded)("$name: redirect_uri stays the gate's own, the cookie stays host-only and unchanged", async ({ headers }) => {
    const answer = await rawExchange(stack, { target: "/private", headers: { ...navigation, ...headers } });
    const { location, redirectUri, cookie } = loginOf(answer);
    expect(location.origin).toBe(new URL(stack.provider.issuer).origin);
    expect(redirectUri).toBe(`${stack.gate.url}/_auth/callback`);
    expect(cookie).toMatch(/^kg_login_/);
    expect(cookie).not.toMatch(/Domain=|Secure|__Host-/i);
    expect(stack.origin.requests).toEqual([]);
  });

  it("the origin is told the host the visitor really used, not a spoofed X-Forwarded-Host", async () => {
    const open = await startHostileStack({ vars: { PUBLIC_PATHS: "/static/*" } });
    try {
      await rawExchange(open, { target: "/static/app.css", headers: { "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" } });
      const seen = open.origin.requests[0]!.headers;
      expect(seen["x-forwarded-host"]).toBe(new URL(open.gate.url).host);
      expect(seen["x-forwarded-proto"]).toBe("http");
    } finally {
      await open.close();
    }
  });

  it("a Host naming a public site over plain http: 400, no login started, no cookie", async () => {
    const since = stack.gate.logs.length;
    const answer = await rawExchange(stack, { target: "/private", headers: { host: "evil.example", ...navigation } });
    expect(answer.status).toBe(400);
    expect(answer.headers.location).toBeUndefined();
    expect(answer.setCookie).toEqual([]);
    expect(stack.provider.requestsTo("discovery").length + stack.origin.requests.length).toBe(0);
    // Waited for here, so that the line cannot arrive during the next test.
    await expectLoggedRefusal(stack, since, "insecure_transport", "evil.example");
  });

  /**
   * workerd's own HTTP server refuses these before any Worker code runs (a bare 500 from its URL
   * parser, logged as `kj/compat/url`); on Cloudflare the edge refuses them. Either way the gate
   * never sees the request, so no redirect URI, cookie or origin request can come of it. Each
   * asks for a path of its own, so that no gate line about it can be mistaken for an earlier
   * test's line that Miniflare hands over late.
   */
  const unparseable: { name: string; path: string; request: () => RawExchange }[] = [
    {
      name: "an absolute-form request target naming another site",
      path: "/private/absolute-form",
      request: () => ({ target: "http://evil.example/private/absolute-form", headers: navigation }),
    },
    {
      name: "two Host headers (the gate's and another)",
      path: "/private/two-hosts",
      request: () => ({ target: "/private/two-hosts", headers: { Host: new URL(stack.gate.url).host, host: "evil.example", ...navigation } }),
    },
  ];

  it.each(unparseable)("$name: refused by the runtime before the gate runs — no redirect, no cookie, nothing forwarded", async ({ path, request }) => {
    const logged = stack.gate.logs.length;
    const answer = await rawExchange(stack, request());
    expect(answer.headers.location).toBeUndefined();
    expect(answer.setCookie).toEqual([]);
    expect(stack.origin.requests).toEqual([]);
    if (answer.status === 500) {
      expect(answer.body).toBe("Internal Server Error");
      // workerd's own complaint, handed over asynchronously; no line of the gate's.
      await expect.poll(() => stack.gate.logs.slice(logged).join("\n")).toMatch(/kj\/compat\/url/);
      expect(stack.gate.logs.slice(logged).join("\n")).not.toContain(`"path":"${path}"`);
    } else {
      expect(answer.status).toBe(400);
    }
  });
});

/**
 * Open-redirect payloads from peers' advisories: oauth2-proxy GHSA-qqxw-m5fj-f7gv (`/\`),
 * GHSA-j7px-6hwj-hpjg (whitespace between slashes), GHSA-5m6c-jp6f-2vcv; mod_auth_openidc
 * CVE-2019-14857 / CVE-2021-32786 / CVE-2022-23527 (logout `/\`, `%5c`, tab).
 */
const OFF_SITE = [
  "//evil.example/x",
  "/\\evil.example",
  "/\t/evil.example",
  "/\n/evil.example",
  "/%09/evil.example",
  "/%5Cevil.example",
  "/%2F%2Fevil.example",
  "\\/\\/evil.example",
  "https://evil.example/",
  "http:evil.example",
  "https:/\\evil.example",
  "//evil.example@127.0.0.1",
  "/%0d%0aSet-Cookie:%20kg_session=planted",
  "javascript:alert(document.domain)",
  "\u3002evil.example",
];

/** Where a browser would end up from `location`, relative to the gate. */
function landing(location: string, gateUrl: string): URL {
  return new URL(location, `${gateUrl}/`);
}

describe("return targets (rd) aimed off-site always land on the site", () => {
  let stack: HostileStack;
  beforeAll(async () => {
    stack = await startHostileStack();
  });
  afterAll(() => stack.close());
  beforeEach(() => stack.reset());

  it.each(OFF_SITE)("rd=%j: after login and after logout the browser stays on the gate's origin", async (rd) => {
    const client = new WatchedClient();
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=${encodeURIComponent(rd)}`, NAVIGATE);
    expect(start.status).toBe(302);
    const callback = await client.get(await authorizeAt(new URL(start.headers.get("location")!)), NAVIGATE);
    expect(callback.status).toBe(302);
    const afterLogin = callback.headers.get("location")!;
    expect(landing(afterLogin, stack.gate.url).origin).toBe(stack.gate.url);
    expect(afterLogin).toMatch(/^\/(?![/\\])/);
    expect(callback.headers.getSetCookie().join("\n")).not.toContain("planted");

    const logout = await client.get(`${stack.gate.url}/_auth/logout?rd=${encodeURIComponent(rd)}`, { ...NAVIGATE, "sec-fetch-site": "same-origin" });
    expect(logout.status).toBe(303);
    const afterLogout = logout.headers.get("location")!;
    expect(landing(afterLogout, stack.gate.url).origin).toBe(stack.gate.url);
    expect(logout.headers.getSetCookie().join("\n")).not.toContain("planted");
    expect(stack.origin.requests).toEqual([]);
  });

  it("a cross-site logout link with an off-site rd gets a confirmation page whose form stays on the site", async () => {
    const page = await new WatchedClient().get(`${stack.gate.url}/_auth/logout?rd=${encodeURIComponent("//evil.example")}`, {
      ...NAVIGATE,
      "sec-fetch-site": "cross-site",
    });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toContain("evil.example");
    expect(html).toMatch(/<form method="post" action="\/_auth\/logout[^"]*"/);
  });

  it("rd on a POST logout from another site: refused with 403, nothing redirected", async () => {
    const page = await new WatchedClient().request(`${stack.gate.url}/_auth/logout?rd=${encodeURIComponent("//evil.example")}`, {
      method: "POST",
      headers: { ...NAVIGATE, "sec-fetch-site": "cross-site", origin: "https://evil.example" },
    });
    expectRefused(stack, page, 403);
    expect(page.headers.get("location")).toBeNull();
  });
});
