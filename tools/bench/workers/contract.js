// The contract's own cost, with none of the gate's logic: the bare pass-through plus what
// CONTRACT.md makes the gate send and do on a signed-in request. The identity headers and the
// X-Forwarded-* set carry the values the gate set on a real request (CONTRACT_HEADERS, JSON, read
// from the gate's /echo by the benchmark); the session cookie is dropped; the origin is fetched
// with `cache: "no-store"` (a personal answer bypasses Cloudflare's cache); the answer is copied to
// add `Cache-Control: private`. Nothing is opened, decided or signed, so its row shows what any
// Worker that honours the contract pays in that runtime before doing any work of its own.

import { atOrigin } from "./origin-url.js";

/** @type {{ source: string, headers: [string, string][] } | undefined} */
let parsed;

/** @param {string} source */
function contractHeaders(source) {
  if (parsed?.source !== source) parsed = { source, headers: Object.entries(JSON.parse(source)) };
  return parsed.headers;
}

export default {
  /** @param {Request} request @param {{ ORIGIN_URL?: string, CONTRACT_HEADERS?: string }} env */
  async fetch(request, env) {
    const url = atOrigin(request.url, env.ORIGIN_URL);
    const headers = new Headers(request.headers);
    headers.delete("cookie");
    for (const [name, value] of contractHeaders(env.CONTRACT_HEADERS ?? "{}")) headers.set(name, value);
    // `cache` is missing from the default @cloudflare/workers-types entry point (as in src/proxy/forward.ts).
    /** @type {RequestInit & { cache: "no-store" }} */
    const init = { method: request.method, headers, body: request.body, redirect: "manual", cache: "no-store" };
    const response = await fetch(url, init);
    const copy = new Response(response.body, response);
    copy.headers.set("cache-control", "private");
    return copy;
  },
};
