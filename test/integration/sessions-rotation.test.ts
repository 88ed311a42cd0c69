import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { DEMO_USERS } from "../../tools/dev-provider/provider.mjs";
import { generateSecrets, randomSecret } from "../helpers/gate.ts";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE } from "../helpers/stack.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { clearedSession, issuedSessionCookie } from "../helpers/session-cookie.ts";
import { startSessionStack, type SessionStack } from "../helpers/sessions.ts";

const DEMO_SUB = DEMO_USERS[0]!.claims.sub;

/** The id of the key that sealed a value (`1.<key id>.<data>`). */
function sealedBy(sealed: string | null | undefined): string | undefined {
  return sealed?.split(".")[1];
}

let stack: SessionStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe("SESSION_SECRETS rotation: nobody is logged out by a new key", () => {
  it("a new first key keeps old cookies and records readable, and re-seals them with the new key", async () => {
    const [oldKey, newKey] = [randomSecret(), randomSecret()];
    stack = await startSessionStack({ vars: { SESSION_SECRETS: oldKey, SESSION_CHECK_INTERVAL: "1" } });
    const { client } = await stack.signIn();
    const [recordKey] = await stack.sessionKeys();
    const oldCookieKey = sealedBy(client.jar.get("127.0.0.1", "kg_session"));
    const oldRecordKey = sealedBy(await stack.current.kv.get(recordKey!));
    expect(oldCookieKey).toBe(oldRecordKey);

    await stack.restart({ SESSION_SECRETS: `${newKey},${oldKey}` });
    await sleep(1100);
    const response = await client.get(`${stack.gate.url}/after-new-key`, NAVIGATE);
    expect(response.status).toBe(200);
    expect(stack.originRequests("/after-new-key")[0]!.headers["x-forwarded-user"]).toBe(DEMO_SUB);
    const newCookieKey = sealedBy(issuedSessionCookie(response));
    expect(newCookieKey).toBeDefined();
    expect(newCookieKey).not.toBe(oldCookieKey);
    expect(sealedBy(await stack.current.kv.get(recordKey!))).toBe(newCookieKey);

    // Both are sealed with the new key now: the old one can go.
    await stack.restart({ SESSION_SECRETS: newKey });
    await sleep(1100);
    expect((await client.get(`${stack.gate.url}/old-key-removed`, NAVIGATE)).status).toBe(200);
  });

  it("removing a key sends exactly the sessions still sealed with it to login, without an error page", async () => {
    const [oldKey, newKey] = [randomSecret(), randomSecret()];
    stack = await startSessionStack({ vars: { SESSION_SECRETS: oldKey } });
    const { client: before } = await stack.signIn();
    await stack.restart({ SESSION_SECRETS: `${newKey},${oldKey}` });
    const { client: after } = await stack.signIn();
    await stack.restart({ SESSION_SECRETS: newKey });

    const stale = await before.get(`${stack.gate.url}/stale`, NAVIGATE);
    expect(stale.status).toBe(302);
    expect(stale.headers.get("location")).toContain("/connect/authorize");
    expect(clearedSession(stale)).toBe(true);
    const staleApi = await new HttpClient().get(`${stack.gate.url}/api/stale`, {
      accept: "application/json",
      cookie: `kg_session=${before.jar.get("127.0.0.1", "kg_session") ?? ""}`,
    });
    expect(staleApi.status).toBe(401);
    expect(stack.originRequests("/stale")).toEqual([]);

    expect((await after.get(`${stack.gate.url}/fresh`, NAVIGATE)).status).toBe(200);
    expect(stack.originRequests("/fresh")[0]!.headers["x-forwarded-user"]).toBe(DEMO_SUB);
  });
});

describe("assertion key rotation with an overlap", () => {
  it("with ASSERTION_PREVIOUS_PUBLIC_KEY, an origin verifying with /_auth/jwks.json accepts assertions of both keys, and only the new one after", async () => {
    stack = await startSessionStack();
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
    stack = await startSessionStack();
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
