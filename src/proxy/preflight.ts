/**
 * A CORS preflight, answered as the mode says (`CORS_PREFLIGHT`, or a route's own `cors_preflight`).
 * Whoever answers, the origin never gets the query, the cookies or a body: a method-blind origin
 * would act on them, as if the preflight were the request itself.
 */
import type { PreflightMode } from "../config";
import { preflightDecision, preflightFromOrigin, preflightRequestHeaders } from "../policy/cors";
import { forward } from "./forward";

export async function answerPreflight(
  request: Request,
  forwarded: Headers,
  upstream: { readonly url: URL; readonly binding?: Fetcher },
  corsOrigins: readonly string[],
  mode: PreflightMode,
): Promise<Response> {
  const decision = preflightDecision(request, corsOrigins, mode);
  if (decision.kind === "answer") return new Response(null, { status: decision.status, headers: decision.headers });
  const bare = new URL(upstream.url.href);
  bare.search = "";
  const answer = await forward(new Request(bare, { method: "OPTIONS" }), bare, preflightRequestHeaders(request.headers, forwarded), "shared", upstream.binding);
  // Only the status and the CORS headers go back; the origin's body is not read.
  await answer.body?.cancel();
  return preflightFromOrigin(answer);
}
