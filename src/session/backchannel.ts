/**
 * OpenID Connect Back-Channel Logout 1.0: the provider POSTs a `logout_token` (a JWT it signed)
 * and the gate ends the sessions it names — those created from the provider session `sid`, or
 * every session of `sub`. Every check of §2.6 comes before anything is ended: a token that fails
 * one ends nothing.
 * @see https://openid.net/specs/openid-connect-backchannel-1_0.html#Validation
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import type { Config } from "../config";
import { GateError } from "../common/errors";
import { log, logUser } from "../common/log";
import type { OidcClient } from "../oidc/client";
import { describe, idTokenAlg } from "../oidc/decisions";
import { recordsToRevoke, revokeTokens, type EndingSession } from "./revoke";
import type { Keyring } from "./seal";
import { endSessions, indexedHost, sessionsOfProviderSid, sessionsOfUser } from "./user-index";

/** The `events` member that makes a JWT a logout token (§2.4). */
export const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";
/** A logout token older than this (seconds since `iat`) is refused; its `jti` is remembered as long. */
export const LOGOUT_TOKEN_MAX_AGE = 300;
/** Allowed clock difference with the provider (seconds). */
const CLOCK_SKEW = 60;
/** Far above a real logout token (~1 KB): refuse to spend crypto on junk. */
const MAX_TOKEN_LENGTH = 8192;
/** Cloudflare KV refuses expirations shorter than this (seconds). */
const KV_MIN_TTL = 60;

/** What back-channel logout needs of the gate's runtime. */
export interface BackchannelRuntime {
  readonly config: Pick<Config, "clientId" | "oidcTimeout">;
  readonly oidc: Pick<OidcClient, "provider" | "revoke">;
  /** Opens the ended sessions' records, whose tokens are then revoked. */
  readonly keyring: Keyring;
  /** Epoch milliseconds. */
  readonly clock: () => number;
}

/** The provider's key set per isolate, fetched by jose when a `kid` is new (with a cooldown). */
const keySets = new WeakMap<object, { uri: string; keys: ReturnType<typeof createRemoteJWKSet> }>();

function keySet(rt: BackchannelRuntime, jwksUri: string): ReturnType<typeof createRemoteJWKSet> {
  const cached = keySets.get(rt.oidc);
  if (cached?.uri === jwksUri) return cached.keys;
  const keys = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: rt.config.oidcTimeout * 1000 });
  keySets.set(rt.oidc, { uri: jwksUri, keys });
  return keys;
}

function invalid(message: string): GateError {
  return new GateError("logout_token_invalid", message);
}

/** The validated claims a logout ends sessions by. */
export interface LogoutClaims {
  readonly sub: string | undefined;
  readonly sid: string | undefined;
  readonly jti: string;
  readonly iat: number;
}

/**
 * The claim checks of §2.6 after the signature, `iss`, `aud` and `exp` (jose's): `iat` neither in
 * the future nor older than LOGOUT_TOKEN_MAX_AGE, the back-channel event, no `nonce`, `sub` or
 * `sid`, and a `jti`. Pure, so each refusal has a table test.
 */
export function logoutClaims(payload: JWTPayload, now: number): LogoutClaims {
  const { iat, jti, sub } = payload;
  const sid: unknown = payload.sid;
  if (typeof iat !== "number") throw invalid('The logout token has no "iat"');
  if (iat > now + CLOCK_SKEW) throw invalid('The logout token\'s "iat" is in the future (check the clocks)');
  if (now - iat > LOGOUT_TOKEN_MAX_AGE) throw invalid(`The logout token is older than ${LOGOUT_TOKEN_MAX_AGE} s`);
  const events = payload.events;
  const event: unknown = typeof events === "object" && events !== null ? (events as Record<string, unknown>)[BACKCHANNEL_EVENT] : undefined;
  if (typeof event !== "object" || event === null) throw invalid(`The logout token's "events" lacks the member ${BACKCHANNEL_EVENT}`);
  // A nonce would make it an id_token; accepting one would let an id_token pass as a logout token (§2.4).
  if (payload.nonce !== undefined) throw invalid('The logout token carries a "nonce"');
  if (sub !== undefined && (typeof sub !== "string" || sub === "")) throw invalid('The logout token\'s "sub" is not a string');
  if (sid !== undefined && (typeof sid !== "string" || sid === "")) throw invalid('The logout token\'s "sid" is not a string');
  if (sub === undefined && sid === undefined) throw invalid('The logout token has neither "sub" nor "sid"');
  if (typeof jti !== "string" || jti === "") throw invalid('The logout token has no "jti"');
  return { sub, sid: sid as string | undefined, jti, iat };
}

/** Verifies the signature (the provider's JWKS, its id_token algorithm pinned), `iss`, `aud` and `exp`. */
async function verified(rt: BackchannelRuntime, token: string, now: number): Promise<JWTPayload> {
  let provider: Awaited<ReturnType<OidcClient["provider"]>>;
  try {
    provider = await rt.oidc.provider();
  } catch (error) {
    throw new GateError("provider_unavailable", `Back-channel logout cannot reach discovery (${describe(error)})`);
  }
  const { as } = provider;
  const alg = idTokenAlg(as);
  if (alg === undefined || as.jwks_uri === undefined) throw new GateError("provider_unavailable", "Discovery lists no JWKS or asymmetric algorithm");
  try {
    const { payload } = await jwtVerify(token, keySet(rt, as.jwks_uri), {
      issuer: as.issuer,
      audience: rt.config.clientId,
      algorithms: [alg],
      currentDate: new Date(now * 1000),
      clockTolerance: CLOCK_SKEW,
    });
    return payload;
  } catch (error) {
    // The provider's keys could not be fetched: an outage, not a bad token.
    if (error instanceof joseErrors.JWKSTimeout || (error instanceof Error && !(error instanceof joseErrors.JOSEError))) {
      throw new GateError("provider_unavailable", `The provider's JWKS cannot be fetched (${describe(error)})`);
    }
    throw invalid(`The logout token does not verify (${describe(error)})`);
  }
}

/** The KV key remembering a used `jti` (hashed: the value is the provider's). */
async function jtiKey(jti: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(jti)));
  return `jti:${Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Validates `token` and ends the sessions it names; returns how many. Their tokens are revoked at
 * the provider after the response (`waitUntil`). A refused token throws `logout_token_invalid`
 * (400), a provider or KV that fails `provider_unavailable` (503).
 */
export async function backchannelLogout(
  rt: BackchannelRuntime,
  kv: KVNamespace,
  token: string,
  now: number,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<number> {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid("The logout_token is missing or too long");
  const claims = logoutClaims(await verified(rt, token, now), now);
  const key = await jtiKey(claims.jti);
  let ended: number;
  let revoking: number;
  try {
    if ((await kv.get(key)) !== null) throw invalid('The logout token\'s "jti" was seen before (a replay)');
    const sessions =
      claims.sid === undefined ? await sessionsOfUser(kv, claims.sub ?? "") : await sessionsOfProviderSid(kv, claims.sid, claims.sub);
    // The provider-sid index does not keep the host a record is sealed for; the user index does.
    // Only revocation needs it: a failed read leaves that session's tokens, never the session.
    const ending = await Promise.all(
      sessions.map(async (session): Promise<EndingSession | undefined> => {
        const host = "entry" in session ? session.entry.host : await indexedHost(kv, session.user, session.sid).catch(() => undefined);
        return host === undefined ? undefined : { sid: session.sid, host };
      }),
    );
    const records = await recordsToRevoke(kv, rt.keyring, ending.filter((session) => session !== undefined));
    ended = await endSessions(kv, sessions, now);
    revoking = records.length;
    for (const record of records) waitUntil(revokeTokens(rt, record, "backchannel"));
    // Remembered once the sessions are ended, so that a provider retrying after a KV failure is not
    // taken for a replay; kept until the token would be refused as too old anyway.
    await kv.put(key, "", { expirationTtl: Math.max(KV_MIN_TTL, claims.iat + LOGOUT_TOKEN_MAX_AGE + CLOCK_SKEW - now) });
  } catch (error) {
    if (error instanceof GateError) throw error;
    throw new GateError("provider_unavailable", `Back-channel logout could not use KV (${describe(error)})`);
  }
  const fields = { channel: "backchannel", by: claims.sid === undefined ? "sub" : "sid", ended, revoking };
  if (claims.sub === undefined) log("logout", fields);
  else await logUser("logout", claims.sub, fields);
  return ended;
}
