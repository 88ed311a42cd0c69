import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_USERS } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, randomSecret } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE } from "../helpers/stack.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";

const DEMO_SUB = DEMO_USERS[0]!.claims.sub;

/**
 * The assertion key's rotation as an origin sees it over HTTP, and a wrong previous key refused at
 * start: one stack for the file, each test redeploying the gate with the settings it needs.
 * SESSION_SECRETS rotation (cookies and records re-sealed at the check, a removed key ending exactly
 * its sessions) is decided in test/unit/edge/app-session-life.test.ts.
 */
let stack: SessionStack;
beforeAll(async () => {
  stack = await startSessionStack();
});
afterAll(() => stack.close());

describe("assertion key rotation with an overlap", () => {
  it("with ASSERTION_PREVIOUS_PUBLIC_KEY, an origin verifying with /_auth/jwks.json accepts assertions of both keys, and only the new one after", async () => {
    const { client } = await stack.signIn();
    await client.get(`${stack.gate.url}/signed-by-old`, NAVIGATE);
    const oldAssertion = stack.originRequests("/signed-by-old")[0]!.headers["x-auth-assertion"] as string;
    // Step 1 of the README: keep the set the gate publishes now.
    const published = await (await client.get(`${stack.gate.url}/_auth/jwks.json`)).text();

    const next = await generateSecrets();
    await stack.restart({ ASSERTION_SIGNING_KEY: next.ASSERTION_SIGNING_KEY, ASSERTION_PREVIOUS_PUBLIC_KEY: published });
    await client.get(`${stack.gate.url}/signed-by-new`, NAVIGATE);
    const newAssertion = stack.originRequests("/signed-by-new")[0]!.headers["x-auth-assertion"] as string;
    const overlap = (await (await client.get(`${stack.gate.url}/_auth/jwks.json`)).json()) as JSONWebKeySet;
    expect(overlap.keys.map((key) => key.kid)).toEqual([next.assertionPublicJwk.kid, stack.secrets.assertionPublicJwk.kid]);
    expect(overlap.keys.every((key) => key.d === undefined)).toBe(true);

    const options = { issuer: stack.gate.url, audience: stack.origin.url, algorithms: ["ES256", "EdDSA"] };
    // As an origin does it: the gate's JWKS URL, fetched by jose.
    const remote = createRemoteJWKSet(new URL(`${stack.gate.url}/_auth/jwks.json`));
    expect((await jwtVerify(oldAssertion, remote, options)).payload.sub).toBe(DEMO_SUB);
    expect((await jwtVerify(newAssertion, remote, options)).payload.sub).toBe(DEMO_SUB);

    // Step 3: the previous key is removed; only the new key's assertions verify.
    await stack.restart({ ASSERTION_SIGNING_KEY: next.ASSERTION_SIGNING_KEY });
    const after = (await (await client.get(`${stack.gate.url}/_auth/jwks.json`)).json()) as JSONWebKeySet;
    expect(after.keys.map((key) => key.kid)).toEqual([next.assertionPublicJwk.kid]);
    await expect(jwtVerify(oldAssertion, createLocalJWKSet(after), options)).rejects.toThrow();
    expect((await jwtVerify(newAssertion, createLocalJWKSet(after), options)).payload.sub).toBe(DEMO_SUB);
  });

  it("a private key or a key that does not import in ASSERTION_PREVIOUS_PUBLIC_KEY is a configuration error naming the setting, never echoing the key", async () => {
    const other = await generateSecrets();
    const privateJwk = JSON.parse(other.ASSERTION_SIGNING_KEY) as Record<string, string>;
    await stack.restart({ ASSERTION_PREVIOUS_PUBLIC_KEY: other.ASSERTION_SIGNING_KEY });
    const refused = await new HttpClient().get(`${stack.gate.url}/`, NAVIGATE);
    expect(refused.status).toBe(500);
    const text = await refused.text();
    expect(text).toContain("ASSERTION_PREVIOUS_PUBLIC_KEY");
    expect(text).not.toContain(privateJwk.d!);

    const broken = { ...other.assertionPublicJwk, x: randomSecret(32) };
    await stack.restart({ ASSERTION_PREVIOUS_PUBLIC_KEY: JSON.stringify(broken) });
    const notImported = await new HttpClient().get(`${stack.gate.url}/`, NAVIGATE);
    expect(notImported.status).toBe(500);
    // The page names the setting; what is wrong with it (here the key's id) is in the log.
    expect(await notImported.text()).toContain("- ASSERTION_PREVIOUS_PUBLIC_KEY\n");
    const { logs } = stack.current;
    await expect.poll(() => logs.join("\n")).toContain(`ASSERTION_PREVIOUS_PUBLIC_KEY: the key \\"${broken.kid}\\" does not import`);
  });
});
