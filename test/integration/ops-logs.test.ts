import { setTimeout as sleep } from "node:timers/promises";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginThroughProvider } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, loopbackGateVars, startGate } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";
import { decisions, until, type Line } from "../helpers/gate-log.ts";

/** What an operator computes to find a user's lines: `printf %s "$SUB" | sha256sum | cut -c1-16`. */
function userHash(sub: string): string {
  return createHash("sha256").update(sub).digest("hex").slice(0, 16);
}

/**
 * workerd hands console output to Miniflare asynchronously, so a line can arrive just after the
 * response: wait (briefly) until `count` lines match.
 */
async function settled(logs: readonly string[], match: (line: Line) => boolean, count = 1): Promise<Line[]> {
  await until(() => decisions(logs).filter(match).length >= count);
  await sleep(50); // and no further line of the same request follows
  return decisions(logs).filter(match);
}

async function subOf(client: HttpClient, gateUrl: string): Promise<string> {
  const me = (await (await client.get(`${gateUrl}/_auth/me`, { accept: "application/json" })).json()) as { sub: string };
  return me.sub;
}

describe("one structured line per decision, tied to the request by cf-ray", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ vars: { SESSION_CHECK_INTERVAL: "1" }, provider: { accessTokenTTL: 30 } });
  });
  afterAll(() => stack.close());

  function linesFor(ray: string, count = 1): Promise<Line[]> {
    return settled(stack.gate.logs, (line) => line.ray === ray, count);
  }

  it("login started and callback ok: the ray, method, path, outcome and a hash of sub — not the sub itself", async () => {
    const client = new HttpClient();
    const first = await client.get(`${stack.gate.url}/reports?year=2026`, { ...NAVIGATE, "cf-ray": "8f00aa0000000001-ARN" });
    expect(first.status).toBe(302);
    expect(await linesFor("8f00aa0000000001-ARN")).toEqual([
      { event: "login_started", outcome: "redirect", ray: "8f00aa0000000001-ARN", method: "GET", path: "/reports", pkce: true },
    ]);

    const callbackUrl = await loginThroughProvider(first.headers.get("location")!, {});
    const callback = await client.get(callbackUrl, { ...NAVIGATE, "cf-ray": "8f00aa0000000002-ARN" });
    expect(callback.status).toBe(302);
    const sub = await subOf(client, stack.gate.url);
    expect(await linesFor("8f00aa0000000002-ARN")).toEqual([
      {
        event: "login_ok",
        outcome: "ok",
        ray: "8f00aa0000000002-ARN",
        method: "GET",
        path: "/_auth/callback",
        user: userHash(sub),
        refresh_token: true,
      },
    ]);
  });

  it("a declined login is logged as login_failed with its reason code, and the page shows the same reference", async () => {
    const client = new HttpClient();
    const first = await client.get(`${stack.gate.url}/`, NAVIGATE);
    const callbackUrl = await loginThroughProvider(first.headers.get("location")!, { deny: true });
    const callback = await client.get(callbackUrl, { ...NAVIGATE, "cf-ray": "8f00aa0000000003-ARN" });
    expect(callback.status).toBe(403);
    expect(await callback.text()).toContain("8f00aa0000000003-ARN");
    const [line, ...rest] = await linesFor("8f00aa0000000003-ARN");
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ event: "login_failed", outcome: "failed", code: "access_denied", status: 403, path: "/_auth/callback" });
  });

  it("a callback that matches no pending login is login_failed / login_expired", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/callback?code=abc&state=${"s".repeat(43)}`, {
      ...NAVIGATE,
      "cf-ray": "8f00aa0000000004-ARN",
    });
    expect(response.status).toBe(400);
    expect(await linesFor("8f00aa0000000004-ARN")).toEqual([
      expect.objectContaining({ event: "login_failed", outcome: "failed", code: "login_expired", status: 400 }),
    ]);
  });

  it("without cf-ray (local runs) the lines and the page share a generated reference", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/callback?state=local-run`, NAVIGATE);
    const body = await response.text();
    const reference = /<code>([^<]+)<\/code>/.exec(body)?.[1];
    const [line] = await settled(stack.gate.logs, (entry) => entry.ray === reference);
    expect(line!.ray).toMatch(/^[0-9a-f-]{36}$/);
    expect(body).toContain(String(line!.ray));
  });

  it("refresh ok at a session check, with the user's hash", async () => {
    const { client } = await stack.signIn("/", "petrov");
    const sub = await subOf(client, stack.gate.url);
    await sleep(1100);
    const response = await client.get(`${stack.gate.url}/after-check`, { ...NAVIGATE, "cf-ray": "8f00aa0000000005-ARN" });
    expect(response.status).toBe(200);
    expect(await linesFor("8f00aa0000000005-ARN")).toEqual([
      { event: "refresh_ok", outcome: "ok", ray: "8f00aa0000000005-ARN", method: "GET", path: "/after-check", user: userHash(sub) },
    ]);
  });

  it("refresh failed (the account was deleted at the provider) ends the session: two lines, both with the user's hash", async () => {
    const { client } = await stack.signIn("/", "phone");
    const sub = await subOf(client, stack.gate.url);
    stack.provider.removeUser("phone");
    await sleep(1100);
    const response = await client.get(`${stack.gate.url}/after-delete`, { ...NAVIGATE, "cf-ray": "8f00aa0000000006-ARN" });
    expect(response.status).toBe(302); // back to login
    const lines = await linesFor("8f00aa0000000006-ARN", 2);
    expect(lines.slice(0, 2)).toEqual([
      expect.objectContaining({ event: "refresh_failed", outcome: "failed", fatal: true, user: userHash(sub) }),
      expect.objectContaining({ event: "session_revoked", outcome: "ended", reason: expect.any(String), user: userHash(sub) }),
    ]);
  });

  it("logout is one line with the user's hash, then one for the revocation of its tokens", async () => {
    const { client } = await stack.signIn();
    const sub = await subOf(client, stack.gate.url);
    const response = await client.postForm(`${stack.gate.url}/_auth/logout`, {}, { "sec-fetch-site": "same-origin", "cf-ray": "8f00aa0000000007-ARN" });
    expect(response.status).toBe(303);
    // Then, after the response, the revocation of its tokens at the provider (never the tokens).
    expect(await linesFor("8f00aa0000000007-ARN", 2)).toEqual([
      {
        event: "logout",
        outcome: "ok",
        ray: "8f00aa0000000007-ARN",
        method: "POST",
        path: "/_auth/logout",
        user: userHash(sub),
        had_session: true,
        at_provider: false,
      },
      {
        event: "tokens_revoked",
        outcome: "ok",
        ray: "8f00aa0000000007-ARN",
        method: "POST",
        path: "/_auth/logout",
        user: userHash(sub),
        why: "logout",
        revoked: "access_token refresh_token",
      },
    ]);
  });

  it("never logs a token, an authorization code, a cookie value, a secret, the raw sub or the e-mail", async () => {
    const client = new HttpClient();
    const first = await client.get(`${stack.gate.url}/secret-check`, NAVIGATE);
    const callbackUrl = new URL(await loginThroughProvider(first.headers.get("location")!, {}));
    await client.get(callbackUrl, NAVIGATE);
    const sub = await subOf(client, stack.gate.url);
    const cookie = client.jar.get("127.0.0.1", "kg_session")!;
    const logs = stack.gate.logs.join("\n");
    const forbidden = [
      callbackUrl.searchParams.get("code")!,
      callbackUrl.searchParams.get("state")!,
      cookie,
      stack.secrets.OIDC_CLIENT_SECRET,
      stack.secrets.SESSION_SECRETS,
      JSON.parse(stack.secrets.ASSERTION_SIGNING_KEY).d as string,
      sub,
      "demo@example.kontur.ru",
    ];
    for (const value of forbidden) expect(logs).not.toContain(value);
    expect(logs).not.toMatch(/eyJ[\w-]+\.eyJ/); // no JWT (id_token, assertion)
  });
});

describe("forbidden and provider errors are logged once, with their reason", () => {
  it("a signed-in user outside the allow-lists: one forbidden line with the user's hash", async () => {
    const stack = await startStack({ vars: { ALLOWED_EMAILS: "someone.else@example.ru" } });
    try {
      const { client } = await stack.signIn();
      const response = await client.get(`${stack.gate.url}/private`, { ...NAVIGATE, "cf-ray": "8f00aa0000000008-ARN" });
      expect(response.status).toBe(403);
      const lines = await settled(stack.gate.logs, (line) => line.ray === "8f00aa0000000008-ARN");
      expect(lines).toEqual([expect.objectContaining({ event: "forbidden", outcome: "denied", code: "forbidden", status: 403, path: "/private" })]);
      expect(lines[0]!.user).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await stack.close();
    }
  });

  it("an unreachable provider: provider_error naming the failed step, outcome error", async () => {
    const secrets = await generateSecrets();
    const gate = await startGate(loopbackGateVars({ issuer: `http://localhost:${await freePort()}`, clientId: "x", secrets }));
    try {
      const response = await new HttpClient().get(`${gate.url}/page`, { ...NAVIGATE, "cf-ray": "8f00aa0000000009-ARN" });
      expect(response.status).toBe(503);
      const lines = await settled(gate.logs, (line) => line.ray === "8f00aa0000000009-ARN");
      expect(lines).toEqual([
        expect.objectContaining({ event: "provider_error", outcome: "error", code: "provider_unavailable", status: 503, path: "/page" }),
      ]);
      expect(String(lines[0]!.reason)).toContain("Discovery at http://localhost:");
    } finally {
      await gate.close();
    }
  });

  it("a misconfigured gate logs config_invalid with the request's ray and the setting names", async () => {
    const gate = await startGate({ OIDC_CLIENT_ID: "x" });
    try {
      await new HttpClient().get(`${gate.url}/`, { ...NAVIGATE, "cf-ray": "8f00aa000000000a-ARN" });
      const [line] = await settled(gate.logs, (entry) => entry.ray === "8f00aa000000000a-ARN");
      expect(line).toMatchObject({ event: "config_invalid", outcome: "error", path: "/" });
      expect(String(line!.problems)).toContain("SESSION_SECRETS: is required");
    } finally {
      await gate.close();
    }
  });
});
