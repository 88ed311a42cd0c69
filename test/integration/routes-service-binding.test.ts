/**
 * A route whose upstream is `service:BINDING`: an origin Worker in the same workerd, reached only
 * through the service binding, gets the request with the identity and an assertion for the URL
 * the visitor asked for.
 */
import { importJWK, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient } from "../helpers/http.ts";
import { NAVIGATE, startStack, type Stack } from "../helpers/stack.ts";

/** The origin Worker: answers with what it received. */
const ORIGIN_WORKER = `
export default {
  async fetch(request) {
    const headers = Object.fromEntries(request.headers);
    return Response.json({ worker: "origin", method: request.method, url: request.url, headers, body: await request.text() });
  },
};
`;

interface Echo {
  worker: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

describe("ROUTES: an origin Worker behind a service binding", () => {
  let stack: Stack;
  beforeAll(async () => {
    const routes = [
      { name: "worker", path: "/worker/*", origin: "service:ORIGIN_WORKER" },
      { name: "worker-docs", path: "/worker-docs/*", access: "public", origin: "service:ORIGIN_WORKER" },
    ];
    stack = await startStack({ vars: { ROUTES: JSON.stringify(routes) }, gate: { services: { ORIGIN_WORKER } } });
  });
  afterAll(() => stack?.close());

  it("a signed-in request goes through the binding, named, with an assertion whose aud is the site's origin", async () => {
    const { client } = await stack.signIn("/worker/page");
    const response = await client.request(`${stack.gate.url}/worker/page?x=1`, { method: "POST", headers: { ...NAVIGATE, "content-type": "text/plain" }, body: "hello" });
    expect(response.status).toBe(200);
    const echo = (await response.json()) as Echo;
    expect(echo).toMatchObject({ worker: "origin", method: "POST", url: `${stack.gate.url}/worker/page?x=1`, body: "hello" });
    expect(echo.headers["x-forwarded-user"]).toBeDefined();
    expect(echo.headers.cookie ?? "").not.toContain("kg_session");
    const key = await importJWK(stack.secrets.assertionPublicJwk, "ES256");
    const { payload } = await jwtVerify(echo.headers["x-auth-assertion"]!, key, { issuer: stack.gate.url, audience: stack.gate.url });
    expect(payload).toMatchObject({ route: "worker", htm: "POST", htu: `${stack.gate.url}/worker/page?x=1` });
    // Nothing went to the ordinary origin.
    expect(stack.originRequests("/worker")).toEqual([]);
  });

  it("a visitor is sent to log in; a public route on the binding is served without identity", async () => {
    const visitor = new HttpClient();
    expect((await visitor.get(`${stack.gate.url}/worker/page`, NAVIGATE)).status).toBe(302);
    const open = await visitor.get(`${stack.gate.url}/worker-docs/a`, { ...NAVIGATE, "x-forwarded-user": "forged" });
    expect(open.status).toBe(200);
    const echo = (await open.json()) as Echo;
    expect(echo.worker).toBe("origin");
    expect(echo.headers["x-forwarded-user"]).toBeUndefined();
  });
});
