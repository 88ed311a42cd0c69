/**
 * Revoking a session's tokens at the provider (RFC 7009) when the session ends by the user's word:
 * logout, a new login in the same browser, sign out everywhere, back-channel logout. Kontur's
 * refresh token lives 15 days and its access token an hour; without this both would stay usable
 * after the user left. Runs after the response (`waitUntil`), each call bounded by `OIDC_TIMEOUT`;
 * the outcome is logged, never the token.
 */
import { log, logUser } from "../common/log";
import { describe } from "../oidc/decisions";
import type { OidcClient } from "../oidc/client";
import type { Keyring } from "./seal";
import { SessionStore, type SessionRecord } from "./store";

/**
 * At most this many sessions ended by one request get their tokens revoked: two subrequests each,
 * and a Worker invocation may make 50 on the free plan. The others end all the same; their tokens
 * stay usable at the provider until they expire, held by no one (their records are gone).
 */
export const MAX_REVOKED_SESSIONS = 20;

/** A session ended away from its own browser, and the host it was created on (its record is sealed for it). */
export interface EndingSession {
  readonly sid: string;
  readonly host: string;
}

/**
 * The records of sessions about to be ended by sign out everywhere or back-channel logout, read
 * before they are deleted so that their tokens can be revoked afterwards. A record that cannot be
 * read or opened is skipped: ending the session matters more than revoking its tokens.
 */
export async function recordsToRevoke(kv: KVNamespace, keyring: Keyring, sessions: readonly EndingSession[]): Promise<SessionRecord[]> {
  const records = await Promise.all(
    sessions.slice(0, MAX_REVOKED_SESSIONS).map(({ sid, host }) =>
      // The index keeps the host with its port; records are sealed for the host name alone.
      new SessionStore(kv, keyring, new URL(`http://${host}`).hostname).get(sid).then(
        (found) => found?.record,
        () => undefined,
      ),
    ),
  );
  return records.filter((record): record is SessionRecord => record !== undefined);
}

/**
 * Revokes the access token, then the refresh token (revoking the refresh token first may revoke
 * the access token with it, and the provider could no longer tell the two apart in its answer).
 */
export async function revokeTokens(rt: { readonly oidc: Pick<OidcClient, "revoke"> }, record: Pick<SessionRecord, "sub" | "accessToken" | "refreshToken">, why: string): Promise<void> {
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
