import { describe, expect, it } from "vitest";
import { importKeyring, open, seal } from "../../../src/session/seal";
import { base64urlDecode } from "../../../src/config";
import { randomSecret } from "../fixtures";

async function keyring(...secrets: string[]) {
  return importKeyring(secrets.map((secret) => base64urlDecode(secret)!));
}

describe("sealing: what the browser holds, it can neither read nor change", () => {
  it("round-trips a value", async () => {
    const keys = await keyring(randomSecret());
    const sealed = await seal(keys, "session", { sub: "Иванов", n: 1 });
    expect(await open(keys, "session", sealed)).toEqual({ value: { sub: "Иванов", n: 1 }, current: true });
  });

  it("hides the content", async () => {
    const keys = await keyring(randomSecret());
    const sealed = await seal(keys, "session", { email: "demo@example.kontur.ru" });
    expect(sealed).not.toContain("demo");
    expect(atob(sealed.split(".")[2]!.replace(/-/g, "+").replace(/_/g, "/"))).not.toContain("demo");
  });

  it("refuses a value sealed for another purpose (a login cookie replayed as a session)", async () => {
    const keys = await keyring(randomSecret());
    const sealed = await seal(keys, "login:abc", { sub: "x" });
    expect(await open(keys, "kg_session", sealed)).toBeUndefined();
  });

  it("refuses every single-character tamper", async () => {
    const keys = await keyring(randomSecret());
    const sealed = await seal(keys, "p", { sub: "x" });
    for (let i = 0; i < sealed.length; i += 3) {
      const replacement = sealed[i] === "A" ? "B" : "A";
      expect(await open(keys, "p", sealed.slice(0, i) + replacement + sealed.slice(i + 1))).toBeUndefined();
    }
  });

  it("refuses truncated, extended and garbage values", async () => {
    const keys = await keyring(randomSecret());
    const sealed = await seal(keys, "p", { sub: "x" });
    for (const bad of [sealed.slice(0, -1), sealed.slice(0, 20), `${sealed}.x`, `${sealed}A`, "", ".", "1..", "1.a.b", "\u0000\uffff", "1.%%%.%%%"]) {
      expect(await open(keys, "p", bad)).toBeUndefined();
    }
  });

  it("refuses a value sealed with an unknown key", async () => {
    const sealed = await seal(await keyring(randomSecret()), "p", { sub: "x" });
    expect(await open(await keyring(randomSecret()), "p", sealed)).toBeUndefined();
  });
});

describe("sealing: key rotation", () => {
  it("opens values sealed with an older key, and says they need re-sealing", async () => {
    const oldKey = randomSecret();
    const sealed = await seal(await keyring(oldKey), "p", { n: 1 });
    const rotated = await keyring(randomSecret(), oldKey);
    expect(await open(rotated, "p", sealed)).toEqual({ value: { n: 1 }, current: false });
    const resealed = await seal(rotated, "p", { n: 1 });
    expect(await open(rotated, "p", resealed)).toEqual({ value: { n: 1 }, current: true });
  });

  it("stops opening them once the old key is removed", async () => {
    const oldKey = randomSecret();
    const newKey = randomSecret();
    const sealed = await seal(await keyring(oldKey), "p", { n: 1 });
    expect(await open(await keyring(newKey), "p", sealed)).toBeUndefined();
  });
});
