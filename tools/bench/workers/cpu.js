// CPU per request inside workerd: one probe — a step of the gate's authenticated hot path, or a
// whole request through the gate or the bare pass-through Worker with the origin replaced by an
// in-memory answer (no I/O) — run N times in a row inside the isolate. The benchmark reads
// workerd's own CPU time (/proc) before and after, and divides by N.
//
// Why loops and process CPU time: a Worker's clock is coarse (whole milliseconds under `workerd
// serve`; in production it stands still between I/O events, against timing side channels), so one
// request cannot be timed from inside; and wall time on a shared machine counts other processes'
// work too, CPU time does not.
import { runtimeFor } from "../../../src/edge/runtime.ts";
import { isGateCookie } from "../../../src/edge/gate.ts";
import { isAllowed, isPublicPath } from "../../../src/policy/access.ts";
import { canonicalPath } from "../../../src/policy/path.ts";
import { upstreamUrl } from "../../../src/proxy/forward.ts";
import { addIdentity, sanitizedHeaders } from "../../../src/proxy/headers.ts";
import { cookieScope, sessionCookieName } from "../../../src/session/cookie.ts";
import { openCachedSessionCookie } from "../../../src/session/cookie-cache.ts";
import passthrough from "./passthrough.js";
import { PROBES } from "./probes.js";

/** @typedef {import('./gate.js').BenchEnv} BenchEnv */
/** A Worker's fetch handler, as the probes call it. @typedef {{ fetch(request: Request, env: BenchEnv, ctx: ExecutionContext): Promise<Response> }} Handler */

const ORIGIN_BODY = "hello from the origin\n";

/** @param {string | null} header @param {string} name */
function cookieValue(header, name) {
  for (const pair of (header ?? "").split(";")) {
    const [key, ...value] = pair.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

/**
 * Everything a probe needs, built once per call from the request's own headers and cookie.
 * @param {Handler} gate
 * @param {BenchEnv} env
 * @param {ExecutionContext} ctx
 * @param {Request} request
 */
async function setUp(gate, env, ctx, request) {
  const query = new URL(request.url).searchParams;
  const url = new URL(query.get("path") ?? "/bench", request.url);
  const publicUrl = new URL(query.get("public") ?? "/public/bench", request.url);
  const headers = new Headers(request.headers);
  const anonymous = new Headers(headers);
  anonymous.delete("cookie");

  const rt = await runtimeFor(env);
  // Epoch seconds by the runtime's clock, as the request context takes them.
  const now = () => Math.floor(rt.clock() / 1000);
  const scope = cookieScope(url);
  const raw = cookieValue(headers.get("cookie"), sessionCookieName(scope));
  if (raw === undefined) throw new Error("the request carries no session cookie");
  const opened = await openCachedSessionCookie(rt.keyring, raw, url.hostname);
  if (opened === undefined) throw new Error("the request carries no valid session cookie");
  const user = opened.cookie.user;
  const upstream = upstreamUrl(url, rt.config.originUrl);
  const claims = { issuer: url.origin, audience: upstream.origin, user, method: "GET", url: upstream.href };
  const assertion = await rt.signer.sign(claims, now());

  /** @param {Handler} handler @param {URL} target @param {Headers} requestHeaders */
  const through = async (handler, target, requestHeaders) => {
    const response = await handler.fetch(new Request(target, { headers: requestHeaders }), env, ctx);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${target.pathname} answered ${response.status} in the CPU loop`);
  };
  return {
    passthroughRequest: () => through(passthrough, url, headers),
    gateRequest: () => through(gate, url, headers),
    gatePublicRequest: () => through(gate, publicUrl, anonymous),
    cookieOpen: () => openCachedSessionCookie(rt.keyring, raw, url.hostname),
    policy: () => isPublicPath(canonicalPath(url.pathname), rt.config) || isAllowed(user, rt.config),
    headerRewrite: () => addIdentity(sanitizedHeaders(headers, url, isGateCookie), { user, assertion, accessToken: undefined }),
    assertionSigning: () => rt.signer.sign(claims, now()),
  };
}

/**
 * `request` is GET /__bench/cpu?probe=…&n=…&path=…&public=… carrying the browser's headers and the
 * session cookie. Runs the probe n times after n/10 warm-up runs; answers how many runs in all and
 * how long they took by the isolate's clock.
 * @param {Handler} gate
 * @param {BenchEnv} env
 * @param {ExecutionContext} ctx
 * @param {Request} request
 */
export async function measureCpu(gate, env, ctx, request) {
  const query = new URL(request.url).searchParams;
  const name = query.get("probe") ?? "";
  const n = Number(query.get("n") ?? "1000");
  const known = PROBES.find((probe) => probe === name);
  if (known === undefined || !Number.isInteger(n) || n < 1) throw new Error(`unknown probe ${name} or bad n`);
  const probe = (await setUp(gate, env, ctx, request))[known];

  const realFetch = globalThis.fetch;
  globalThis.fetch = async () => new Response(ORIGIN_BODY, { headers: { "content-type": "text/plain; charset=utf-8" } });
  try {
    const warmUp = Math.ceil(n / 10);
    for (let i = 0; i < warmUp; i += 1) await probe();
    const started = performance.now();
    for (let i = 0; i < n; i += 1) await probe();
    return { probe: name, runs: warmUp + n, measuredRuns: n, wallMs: performance.now() - started };
  } finally {
    globalThis.fetch = realFetch;
  }
}
