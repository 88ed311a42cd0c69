import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSecrets, loopbackGateVars, startGate, type Gate } from "../helpers/gate.ts";
import { until } from "../helpers/gate-log.ts";
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

  it("every page is a plain-text 500 naming every wrong setting, and no value", async () => {
    const response = await new HttpClient().get(`${gate.url}/any/page`, NAVIGATE);
    expect(response.status).toBe(500);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    for (const name of ["OIDC_CLIENT_ID", "SESSION_SECRETS", "SESSION_TTL", "OIDC_ISSUER"]) expect(text).toContain(`- ${name}\n`);
    expect(text).toContain("config_invalid");
    expect(text).not.toContain("forever");
    expect(text).not.toContain("identity.example");
    expect(text).not.toContain(secretValue);
    expect(text).not.toMatch(/\n\s+at .+\(/); // no stack trace
  });

  it("logs each problem and its fix, with non-secret values but without any secret value", async () => {
    const before = gate.logs.length;
    await new HttpClient().get(`${gate.url}/`, NAVIGATE);
    // This request's own line: workerd hands log lines over asynchronously.
    await until(() => gate.logs.slice(before).some((line) => line.includes("config_invalid")));
    const logs = gate.logs.join("\n");
    expect(logs).toContain("config_invalid");
    expect(logs).toContain("OIDC_CLIENT_ID: is required");
    expect(logs).toContain("SESSION_SECRETS: key #1");
    expect(logs).toContain('SESSION_TTL: must be whole seconds or a number with s, m, h or d, like 90, 30m, 8h, 1d (got \\"forever\\")');
    expect(logs).toContain("OIDC_ISSUER: uses http://; use https://, or set OIDC_ALLOW_HTTP=true");
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
