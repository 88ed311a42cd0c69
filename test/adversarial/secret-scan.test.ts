/**
 * The scan every adversarial file ends with must be able to fail: fed a log line or a page that
 * holds a secret, it reports it.
 */
import { describe, expect, it } from "vitest";
import { generateSecrets } from "../helpers/gate.ts";
import { SecretScan } from "./harness.ts";

describe("the secret scan catches what it must", () => {
  async function scanWith(lines: string[]) {
    const scan = new SecretScan();
    const secrets = await generateSecrets();
    const issued = ["Zm9vYmFyLWF1dGhvcml6YXRpb24tY29kZQ", "opaque-access-token-0123456789"];
    scan.addGate("gate", lines, secrets);
    scan.addProvider({ secrets: () => issued });
    scan.add("kg_session cookie", "1.AbCdEfGh.c2VhbGVkLWNvb2tpZS12YWx1ZQ");
    return { scan, secrets, issued };
  }

  it("is clean for lines that hold codes, paths and reasons only", async () => {
    const { scan } = await scanWith(['log: {"event":"login_failed","code":"login_rejected","path":"/_auth/callback"}']);
    expect(scan.findings()).toEqual([]);
  });

  it("reports an authorization code, an opaque token, a cookie value, the client secret and a session key in the log", async () => {
    const lines: string[] = [];
    const { scan, secrets, issued } = await scanWith(lines);
    lines.push(`log: {"reason":"code ${issued[0]}"}`, `log: {"token":"${issued[1]}"}`, "log: cookie 1.AbCdEfGh.c2VhbGVkLWNvb2tpZS12YWx1ZQ");
    lines.push(`error: secret=${secrets.OIDC_CLIENT_SECRET}`, `error: key=${secrets.SESSION_SECRETS}`);
    expect(scan.findings()).toHaveLength(5);
  });

  it("reports any JWT in the log, whoever issued it", async () => {
    const { scan } = await scanWith(["log: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"]);
    expect(scan.findings()).toEqual([expect.stringContaining("holds a JWT")]);
  });

  it("reports a secret on a page", async () => {
    const { scan, issued } = await scanWith([]);
    scan.addPage("http://127.0.0.1/_auth/callback", `<a href="/_auth/callback?code=${issued[0]}">retry</a>`);
    expect(scan.findings()).toEqual([expect.stringContaining("the answer to http://127.0.0.1/_auth/callback")]);
  });
});
