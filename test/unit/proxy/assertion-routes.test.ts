import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import type { AssertionKeyJwk } from "../../../src/config";
import { AssertionSigner } from "../../../src/proxy/assertion";
import { signingJwk } from "../fixtures";

const T = 1_900_000_000;
const user = Object.freeze({ sub: "guid-1", email: "demo@example.kontur.ru" });
const base = { issuer: "https://site.example", audience: "https://origin.example", user, authTime: T - 100 };

describe("X-Auth-Assertion on ROUTES: `route` and `auth_time`", () => {
  it("a per-request assertion names the route that decided it, whichever the session's previous one was", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    const request = { method: "GET", url: "https://origin.example/x" };
    const admin = decodeJwt(await signer.sign({ ...base, ...request, route: "admin" }, T));
    const docs = decodeJwt(await signer.sign({ ...base, ...request, route: "docs" }, T));
    const global = decodeJwt(await signer.sign({ ...base, ...request }, T));
    expect([admin.route, docs.route, global.route]).toEqual(["admin", "docs", undefined]);
    expect([admin.auth_time, global.auth_time]).toEqual([T - 100, T - 100]);
    expect(decodeJwt(await signer.sign({ ...base, ...request, authTime: undefined }, T)).auth_time).toBeUndefined();
  });

  it("ASSERTION_MODE=session: an assertion made for one route is not reused on another, nor after a step-up", async () => {
    const signer = await AssertionSigner.create((await signingJwk()) as AssertionKeyJwk);
    const admin = await signer.signForSession({ ...base, route: "admin" }, T, T + 3600);
    expect(await signer.signForSession({ ...base, route: "admin" }, T + 1, T + 3600)).toBe(admin);
    const docs = await signer.signForSession({ ...base, route: "docs" }, T + 1, T + 3600);
    expect(decodeJwt(docs).route).toBe("docs");
    const steppedUp = await signer.signForSession({ ...base, route: "docs", authTime: T }, T + 2, T + 3600);
    expect(decodeJwt(steppedUp).auth_time).toBe(T);
  });
});
