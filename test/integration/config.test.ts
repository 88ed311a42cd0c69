import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSecrets, loopbackGateVars, startGate, type Gate } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { freePort } from "../../tools/lib/listen.mjs";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

describe("wrong configuration fails at the first request, naming the setting", () => {
  let gate: Gate;
  let secretValue: string;
  beforeAll(async () => {
    const secrets = await generateSecrets();
    secretValue = "short-secret-value";
    gate = await startGate({
      OIDC_CLIENT_SECRET: secrets.OIDC_CLIENT_SECRET,
      SESSION_SECRETS: secretValue,
      ASSERTION_SIGNING_KEY: secrets.ASSERTION_SIGNING_KEY,
      SESSION_TTL: "forever",
      OIDC_ISSUER: "http://identity.example",
    });
  });
  afterAll(() => gate.close());

  it("every page is a plain-text 500 listing every wrong setting and the fix", async () => {
    const response = await new HttpClient().get(`${gate.url}/any/page`, NAVIGATE);
    expect(response.status).toBe(500);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain("OIDC_CLIENT_ID: is required");
    expect(text).toContain("SESSION_SECRETS: key #1");
    expect(text).toContain("SESSION_TTL: must be whole seconds");
    expect(text).toContain("OIDC_ISSUER: uses http://; use https://, or set OIDC_ALLOW_HTTP=true");
    expect(text).not.toContain(secretValue);
    expect(text).not.toMatch(/\n\s+at .+\(/); // no stack trace
  });

  it("logs the problems without any secret value", async () => {
    await new HttpClient().get(`${gate.url}/`, NAVIGATE);
    const logs = gate.logs.join("\n");
    expect(logs).toContain("config_invalid");
    expect(logs).toContain("OIDC_CLIENT_ID");
    expect(logs).not.toContain(secretValue);
  });

  it("/_auth/health answers 503 with the names of the wrong settings only", async () => {
    const response = await new HttpClient().get(`${gate.url}/_auth/health`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      status: "misconfigured",
      settings: ["OIDC_ISSUER", "SESSION_TTL", "OIDC_CLIENT_ID", "SESSION_SECRETS"],
    });
  });
});

describe("health", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it("is 200 when configured and the provider's discovery is reachable", async () => {
    const response = await new HttpClient().get(`${stack.gate.url}/_auth/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("is 503 with Retry-After when the provider is unreachable, and a login gets a clear 503 page", async () => {
    const port = await freePort();
    const secrets = await generateSecrets();
    const gate = await startGate(loopbackGateVars({ issuer: `http://localhost:${await freePort()}`, clientId: "x", secrets, originUrl: stack.origin.url }), { port });
    try {
      const health = await new HttpClient().get(`${gate.url}/_auth/health`);
      expect(health.status).toBe(503);
      expect(health.headers.get("retry-after")).toBe("30");
      const login = await new HttpClient().get(`${gate.url}/page`, { ...NAVIGATE, "accept-language": "en" });
      expect(login.status).toBe(503);
      expect(login.headers.get("retry-after")).toBe("30");
      expect(await login.text()).toContain("Sign-in service unavailable");
    } finally {
      await gate.close();
    }
  });
});
