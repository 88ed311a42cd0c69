/**
 * The user's claims the gate passes on: what the provider said about the user, reduced to the
 * profile fields Kontur documents (OIDC Core §5.1). Everything else is dropped to keep the cookie small.
 * @see https://openid.net/specs/openid-connect-core-1_0.html#StandardClaims
 */
import type { IDToken } from "oauth4webapi";

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
}

export function userClaims(claims: IDToken): UserClaims {
  const pick = (key: string): string | undefined => (typeof claims[key] === "string" && claims[key] !== "" ? (claims[key] as string) : undefined);
  return Object.fromEntries(
    Object.entries({
      sub: claims.sub,
      email: pick("email"),
      // Some providers send the boolean as a string; anything but an explicit "no" is not recorded.
      email_verified: claims.email_verified === false || claims.email_verified === "false" ? false : undefined,
      name: pick("name"),
      given_name: pick("given_name"),
      family_name: pick("family_name"),
      middle_name: pick("middle_name"),
      phone_number: pick("phone_number"),
    }).filter(([, value]) => value !== undefined),
  ) as unknown as UserClaims;
}
