/**
 * Revoking a session's tokens at the provider (RFC 7009) when the session ends by the user's word:
 * logout, or a new login in the same browser. Kontur's refresh token lives 15 days and its access
 * token an hour; without this both would stay usable after the user left. Runs after the response
 * (`waitUntil`), each call bounded by `OIDC_TIMEOUT`; the outcome is logged, never the token.
 */
import { log, logUser } from "../common/log";
import { describe } from "../oidc/decisions";
import type { SessionRuntime } from "./request";
import type { SessionRecord } from "./store";

/**
 * Revokes the access token, then the refresh token (revoking the refresh token first may revoke
 * the access token with it, and the provider could no longer tell the two apart in its answer).
 */
export async function revokeTokens(rt: Pick<SessionRuntime, "oidc">, record: Pick<SessionRecord, "sub" | "accessToken" | "refreshToken">, why: string): Promise<void> {
  const tokens: Array<["access_token" | "refresh_token", string]> = [["access_token", record.accessToken]];
  if (record.refreshToken !== undefined) tokens.push(["refresh_token", record.refreshToken]);
  const revoked: string[] = [];
  for (const [hint, token] of tokens) {
    try {
      if (!(await rt.oidc.revoke(token, hint))) {
        await logUser("tokens_revoked", record.sub, { why, revoked: "none", reason: "the provider lists no revocation_endpoint" });
        return;
      }
      revoked.push(hint);
    } catch (error) {
      log("provider_error", { step: "revocation", why, token_type: hint, reason: describe(error) });
    }
  }
  await logUser("tokens_revoked", record.sub, { why, revoked: revoked.join(" ") || "none" });
}
