import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

// The unit project's promise to its tests: they run inside workerd, with WebCrypto and an empty
// SESSIONS KV namespace, just like the deployed Worker.
describe("unit harness", () => {
  it("has the SESSIONS KV binding", async () => {
    const { SESSIONS } = env as unknown as { SESSIONS: KVNamespace };
    await SESSIONS.put("harness", "ok", { expirationTtl: 60 });
    expect(await SESSIONS.get("harness")).toBe("ok");
  });

  it("has WebCrypto with P-256 signing", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const data = new TextEncoder().encode("x");
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, data);
    expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, signature, data)).toBe(true);
  });
});
