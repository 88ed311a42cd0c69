/**
 * The user's claims the gate passes on: what the provider said about the user (the id_token's
 * claims completed by userinfo's), reduced to the profile fields Kontur documents (OIDC Core §5.1)
 * and the claims `CLAIM_HEADERS` names. Everything else is dropped to keep the cookie small.
 * @see https://openid.net/specs/openid-connect-core-1_0.html#StandardClaims
 */

export interface UserClaims {
  readonly sub: string;
  readonly email?: string;
  /** Present (and `false`) only when the provider says the address is not verified. */
  readonly email_verified?: false;
  readonly name?: string;
  readonly given_name?: string;
  readonly family_name?: string;
  readonly middle_name?: string;
  readonly phone_number?: string;
  /** A claim named in `CLAIM_HEADERS`, as text. */
  readonly [claim: string]: string | false | undefined;
}

/** The profile claims every session keeps. */
const PROFILE_CLAIMS = ["email", "name", "given_name", "family_name", "middle_name", "phone_number"];

/**
 * The claims a session keeps: the profile claims when they are non-empty strings, `email_verified`
 * only as an explicit "no", and the `extra` ones (from `CLAIM_HEADERS`) when they are strings,
 * numbers or booleans, as text.
 */
export function userClaims(claims: { readonly sub: string; readonly [claim: string]: unknown }, extra: readonly string[] = []): UserClaims {
  const user: Record<string, string | false> = { sub: claims.sub };
  for (const name of PROFILE_CLAIMS) {
    const value = claims[name];
    if (typeof value === "string" && value !== "") user[name] = value;
  }
  // Some providers send the boolean as a string; anything but an explicit "no" is not recorded.
  if (claims.email_verified === false || claims.email_verified === "false") user.email_verified = false;
  for (const name of extra) {
    const value = claims[name];
    if (name === "sub" || name in user) continue;
    if ((typeof value === "string" && value !== "") || typeof value === "number" || typeof value === "boolean") user[name] = String(value);
  }
  return user as UserClaims;
}

/** A claim of the session as text, or undefined (absent, or not text). */
export function claimText(user: UserClaims, claim: string): string | undefined {
  const value = user[claim];
  return typeof value === "string" ? value : undefined;
}
