/**
 * Asking the provider about the user again, at each session check (`SESSION_REVALIDATE=userinfo`):
 * userinfo with the session's access token. Kontur gives no guarantee that the profile stays the
 * same, and without `offline_access` nothing else would ever ask it again: 401/403 (token revoked,
 * account disabled or deleted, consent withdrawn) ends the session, 200 brings the current claims,
 * an outage leaves the session as it is. Also when a session that needs its access token (to pass
 * it on, or to ask userinfo) has one that has expired with no refresh token to renew it.
 */
import type { Config } from "../config";
import { log, logUser } from "../common/log";
import { describe, userinfoFailure } from "../oidc/decisions";
import { userClaims, type UserClaims } from "../oidc/claims";
import { carriedFits } from "./cookie";
import type { SessionRuntime } from "./request";
import type { SessionRecord } from "./store";

export type Revalidation =
  /** Nothing was asked (`off`, or no userinfo endpoint): the claims stay. */
  | { kind: "unchanged" }
  | { kind: "ok"; user: UserClaims }
  | { kind: "ended"; reason: "revoked_at_provider" | "identity_changed" }
  /** The provider could not be asked: the session goes on, the check is retried soon. */
  | { kind: "unavailable" };

/** Whether the session lives on its access token: passed to the origin, or used to ask userinfo. */
export function needsAccessToken(config: Config): boolean {
  return config.passAccessToken || config.sessionRevalidate === "userinfo";
}

export function accessTokenExpired(record: Pick<SessionRecord, "accessTokenExpiresAt">, at: number): boolean {
  return record.accessTokenExpiresAt !== undefined && record.accessTokenExpiresAt <= at;
}

/**
 * The `chk` to give a session checked at `at`: normally `at`; earlier when its access token, which
 * it needs and cannot refresh, expires before the next check would come — so that the check falls
 * due the moment the token expires and ends the session then, not up to an interval later.
 */
export function checkedAt(config: Config, record: Pick<SessionRecord, "accessTokenExpiresAt" | "refreshToken">, at: number): number {
  if (record.refreshToken !== undefined || record.accessTokenExpiresAt === undefined || !needsAccessToken(config)) return at;
  return Math.min(at, record.accessTokenExpiresAt - config.sessionCheckInterval);
}

/** Asks userinfo about the record's user; `current` is the claims the session has now. */
export async function revalidate(rt: SessionRuntime, record: SessionRecord, current: UserClaims): Promise<Revalidation> {
  const { config } = rt;
  if (config.sessionRevalidate === "off") return { kind: "unchanged" };
  let answer: Awaited<ReturnType<SessionRuntime["oidc"]["userinfo"]>>;
  try {
    answer = await rt.oidc.userinfo(record.accessToken, record.sub);
  } catch (error) {
    const failure = userinfoFailure(error);
    if (failure === "revoked") return { kind: "ended", reason: "revoked_at_provider" };
    if (failure === "identity_changed") return { kind: "ended", reason: "identity_changed" };
    log("provider_error", { step: "userinfo", reason: describe(error) });
    return { kind: "unavailable" };
  }
  if (answer === undefined) return { kind: "unchanged" };
  // The provider's answer is the profile now: a claim it no longer gives is gone from the session.
  const user = userClaims({ ...answer, sub: record.sub }, config.claimHeaders.map(({ claim }) => claim));
  if (!carriedFits(user, config.passAccessToken ? record.accessToken : undefined)) {
    // Keeping the claims the session has beats a cookie the browser would drop.
    await logUser("claims_updated", record.sub, { applied: false, reason: "the new claims are too large for the session cookie" });
    return { kind: "unchanged" };
  }
  if (!sameClaims(user, current)) await logUser("claims_updated", record.sub, { applied: true });
  return { kind: "ok", user };
}

function sameClaims(a: UserClaims, b: UserClaims): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
