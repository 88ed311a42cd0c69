import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar } from "../../tools/lib/cookie-jar.mjs";
import { DEMO_USERS, loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { setsSession } from "../helpers/session-cookie.ts";

const DEMO_SUB = DEMO_USERS[0]!.claims.sub;

function pendingLogins(client: HttpClient): string[] {
  return client.jar.list(new URL("http://127.0.0.1/")).map((cookie) => cookie.name).filter((name) => name.startsWith("kg_login_"));
}

/** Follows redirects from `url` on the gate only (the provider is another host); fails on a loop. */
async function land(client: HttpClient, url: string) {
  const hops = await client.follow(url, { init: { headers: NAVIGATE }, maxHops: 5 });
  return hops.at(-1)!;
}

describe("logins in real browsers: tabs, back button, replays, expiry, a session already there", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it("the back button to the provider after a login: the provider signs in again silently, the gate goes home signed in", async () => {
    const client = new HttpClient();
    const providerJar = new CookieJar();
    const start = await client.get(`${stack.gate.url}/back`, NAVIGATE);
    const authorizeUrl = start.headers.get("location")!;
    await client.get(await loginThroughProvider(authorizeUrl, { cookieJar: providerJar }), NAVIGATE);
    // Back to the authorization URL: the provider's own session answers with a new code for the old state.
    const logins = stack.provider.stats.logins;
    const again = await loginThroughProvider(authorizeUrl, { cookieJar: providerJar });
    expect(stack.provider.stats.logins).toBe(logins);
    const final = await land(client, again);
    expect(final.status).toBe(200);
    expect(new URL(final.url).pathname).toBe("/");
    expect(stack.originRequests("/")[0]!.headers["x-forwarded-user"]).toBe(DEMO_SUB);
  });

  it("the back button to the callback after a login: home, signed in, no error and no loop", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/back-to-callback`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    expect((await client.get(callbackUrl, NAVIGATE)).headers.get("location")).toBe("/back-to-callback");
    const final = await land(client, callbackUrl);
    expect(final.status).toBe(200);
    expect(new URL(final.url).pathname).toBe("/");
  });

  it("a callback whose pending login expired (the browser dropped the 30-minute cookie): a page that starts a new login, which works", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/slow-2fa`, NAVIGATE);
    expect(start.headers.getSetCookie()[0]).toContain("Max-Age=1800");
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    for (const name of pendingLogins(client)) client.jar.delete("127.0.0.1", name);
    const expired = await client.get(callbackUrl, NAVIGATE);
    expect(expired.status).toBe(400);
    const page = await expired.text();
    expect(page).toContain("Вход не завершён");
    const retry = /href="([^"]+)"/.exec(page)![1]!.replace(/&#38;/g, "&");
    expect(retry).toMatch(/^\/_auth\/login\?rd=/);
    const restart = await client.get(`${stack.gate.url}${retry}`, NAVIGATE);
    expect(restart.status).toBe(302);
    const final = await land(client, await loginThroughProvider(restart.headers.get("location")!, {}));
    expect(final.status).toBe(200);
  });

  it("a callback whose pending login expired while a session exists goes home signed in", async () => {
    const { client } = await stack.signIn("/first");
    const start = await client.get(`${stack.gate.url}/_auth/login?rd=%2Fsecond`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    for (const name of pendingLogins(client)) client.jar.delete("127.0.0.1", name);
    const final = await land(client, callbackUrl);
    expect(final.status).toBe(200);
    expect(new URL(final.url).pathname).toBe("/");
  });

  it("a login finished in a second tab while the first tab's session exists lands on its own target, signed in", async () => {
    const client = new HttpClient();
    const tabA = await client.get(`${stack.gate.url}/tab-a`, NAVIGATE);
    const tabB = await client.get(`${stack.gate.url}/tab-b`, NAVIGATE);
    const backA = await loginThroughProvider(tabA.headers.get("location")!, {});
    const backB = await loginThroughProvider(tabB.headers.get("location")!, { login: "petrov", password: "petrov" });
    expect((await land(client, backA)).status).toBe(200);
    const finalB = await land(client, backB);
    expect(finalB.status).toBe(200);
    expect(new URL(finalB.url).pathname).toBe("/tab-b");
    // The later login is the session now.
    expect(stack.originRequests("/tab-b")[0]!.headers["x-forwarded-user"]).toBe(DEMO_USERS[1]!.claims.sub);
    expect(pendingLogins(client)).toEqual([]);
  });

  it("a replayed callback of a finished login in another browser: a page, not a 500 and not a loop", async () => {
    const client = new HttpClient();
    const start = await client.get(`${stack.gate.url}/replayed`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(start.headers.get("location")!, {});
    await client.get(callbackUrl, NAVIGATE);
    const replay = await new HttpClient().get(callbackUrl, NAVIGATE);
    expect(replay.status).toBe(400);
    expect(setsSession(replay)).toBe(false);
  });

  it("six logins started in one browser keep at most four pending-login cookies; the newest completes, the oldest gets the restart page", async () => {
    const client = new HttpClient();
    const starts: string[] = [];
    for (let i = 0; i < 6; i++) {
      const response = await client.get(`${stack.gate.url}/many-${i}`, NAVIGATE);
      starts.push(response.headers.get("location")!);
    }
    expect(pendingLogins(client)).toHaveLength(4);
    const oldest = await client.get(await loginThroughProvider(starts[0]!, {}), NAVIGATE);
    expect(oldest.status).toBe(400);
    const newest = await land(client, await loginThroughProvider(starts[5]!, {}));
    expect(newest.status).toBe(200);
    expect(new URL(newest.url).pathname).toBe("/many-5");
  });
});
