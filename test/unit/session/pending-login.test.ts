import { describe, expect, it } from "vitest";
import { base64urlDecode } from "../../../src/config";
import { importKeyring } from "../../../src/session/seal";
import { MAX_PENDING_LOGINS, storePendingLogin, takePendingLogin, type PendingLoginCookie } from "../../../src/session/pending-login";
import { randomSecret } from "../fixtures";

const http = { secure: false };
const https = { secure: true };

function login(state: string, iat = Math.floor(Date.now() / 1000)): PendingLoginCookie {
  return { state, nonce: `nonce-${state}`, codeVerifier: `verifier-${state}`, returnTo: `/after/${state.slice(0, 4)}`, iat };
}

function state(): string {
  return randomSecret();
}

/** What a browser would send back: the name=value part of each Set-Cookie that was not a deletion. */
function cookieJar(setCookies: string[], jar = new Map<string, string>()): Map<string, string> {
  for (const header of setCookies) {
    const [pair = ""] = header.split(";");
    const [name = "", value = ""] = pair.split("=");
    if (/Max-Age=0/i.test(header)) jar.delete(name);
    else jar.set(name, value);
  }
  return jar;
}

const header = (jar: Map<string, string>) => [...jar].map(([name, value]) => `${name}=${value}`).join("; ");

describe("pending logins: the browser carries them but cannot read or forge them", () => {
  it("two tabs start two logins and both complete", async () => {
    const keys = await importKeyring([base64urlDecode(randomSecret())!]);
    const [a, b] = [state(), state()];
    const jar = cookieJar(await storePendingLogin(keys, http, "", login(a), Date.now()));
    cookieJar(await storePendingLogin(keys, http, header(jar), login(b), Date.now()), jar);
    const now = Math.floor(Date.now() / 1000);
    expect((await takePendingLogin(keys, http, header(jar), a, now))?.login.nonce).toBe(`nonce-${a}`);
    expect((await takePendingLogin(keys, http, header(jar), b, now))?.login.nonce).toBe(`nonce-${b}`);
  });

  it("uses __Host- cookies with Secure on https and Max-Age of 30 minutes", async () => {
    const keys = await importKeyring([base64urlDecode(randomSecret())!]);
    const [setCookie] = await storePendingLogin(keys, https, "", login(state()), Date.now());
    expect(setCookie).toMatch(/^__Host-kg_login_/);
    expect(setCookie).toContain("Secure");
    expect(setCookie).toContain("HttpOnly");
    expect(setCookie).toContain("SameSite=Lax");
    expect(setCookie).toContain("Path=/");
    expect(setCookie).toContain("Max-Age=1800");
    expect(setCookie).not.toContain("Domain");
  });

  it("a state that matches no cookie finds nothing (forged or another browser's state)", async () => {
    const keys = await importKeyring([base64urlDecode(randomSecret())!]);
    const jar = cookieJar(await storePendingLogin(keys, http, "", login(state()), Date.now()));
    expect(await takePendingLogin(keys, http, header(jar), state(), Math.floor(Date.now() / 1000))).toBeUndefined();
  });

  it("a cookie renamed to another state's name does not open (the seal binds the whole state)", async () => {
    const keys = await importKeyring([base64urlDecode(randomSecret())!]);
    const real = state();
    const jar = cookieJar(await storePendingLogin(keys, http, "", login(real), Date.now()));
    const value = [...jar.values()][0];
    const forgedState = real.slice(0, 16) + "X".repeat(real.length - 16);
    const forged = `kg_login_${Math.floor(Date.now() / 1000).toString(36)}_${forgedState.slice(0, 16)}=${value}`;
    expect(await takePendingLogin(keys, http, forged, forgedState, Math.floor(Date.now() / 1000))).toBeUndefined();
  });

  it("a pending login 29 minutes old still completes (logins with certificates or 2FA take long)", async () => {
    const keys = await importKeyring([base64urlDecode(randomSecret())!]);
    const s = state();
    const created = Math.floor(Date.now() / 1000) - 29 * 60;
    const jar = cookieJar(await storePendingLogin(keys, http, "", login(s, created), Date.now()));
    expect((await takePendingLogin(keys, http, header(jar), s, Math.floor(Date.now() / 1000)))?.login.returnTo).toBe(`/after/${s.slice(0, 4)}`);
  });

  it("a pending login older than 30 minutes is refused", async () => {
    const keys = await importKeyring([base64urlDecode(randomSecret())!]);
    const s = state();
    const created = Math.floor(Date.now() / 1000) - 31 * 60;
    const jar = cookieJar(await storePendingLogin(keys, http, "", login(s, created), Date.now()));
    expect(await takePendingLogin(keys, http, header(jar), s, Math.floor(Date.now() / 1000))).toBeUndefined();
  });

  it(`keeps at most ${MAX_PENDING_LOGINS} pending logins, dropping the oldest`, async () => {
    const keys = await importKeyring([base64urlDecode(randomSecret())!]);
    const jar = new Map<string, string>();
    const states: string[] = [];
    const start = Math.floor(Date.now() / 1000) - 100;
    for (let i = 0; i < 10; i++) {
      const s = state();
      states.push(s);
      cookieJar(await storePendingLogin(keys, http, header(jar), login(s, start + i), Date.now()), jar);
    }
    expect(jar.size).toBe(MAX_PENDING_LOGINS);
    const now = Math.floor(Date.now() / 1000);
    expect(await takePendingLogin(keys, http, header(jar), states[9]!, now)).toBeDefined();
    expect(await takePendingLogin(keys, http, header(jar), states[0]!, now)).toBeUndefined();
  });
});
