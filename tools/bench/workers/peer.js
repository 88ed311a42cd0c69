// The closest peer of the gate, for the benchmark: @hono/oidc-auth protecting the same origin in
// a minimal Hono proxy, set up the way its README shows. Its session is a JWT (HS256 by default)
// in the `oidc-auth` cookie holding the claims and the refresh token; it refreshes at the token
// endpoint once OIDC_AUTH_REFRESH_INTERVAL has passed and needs no storage. The proxy passes the
// user on in X-Forwarded-User / X-Forwarded-Email (unsigned: the peer has no assertion).
//
// Settings (Worker vars): OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_AUTH_SECRET,
// OIDC_SCOPES, OIDC_AUTH_REFRESH_INTERVAL, ORIGIN_URL.
import { Hono } from "hono";
import { getAuth, oidcAuthMiddleware, processOAuthCallback } from "@hono/oidc-auth";

/** @type {Hono<{ Bindings: { ORIGIN_URL: string } }>} */
const app = new Hono();

app.get("/callback", (c) => processOAuthCallback(c));
app.use("*", oidcAuthMiddleware());
app.all("*", async (c) => {
  const auth = await getAuth(c);
  const url = new URL(c.req.url);
  const origin = new URL(c.env.ORIGIN_URL);
  url.protocol = origin.protocol;
  url.host = origin.host;
  const headers = new Headers(c.req.raw.headers);
  headers.set("x-forwarded-user", auth?.sub ?? "");
  if (auth?.email) headers.set("x-forwarded-email", auth.email);
  const response = await fetch(new Request(url, { method: c.req.method, headers, body: c.req.raw.body, redirect: "manual" }));
  // The middleware sets Cache-Control on the way out: the origin's headers must be mutable.
  return new Response(response.body, response);
});

export default app;
