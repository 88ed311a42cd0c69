/**
 * The provider conversation's flows, thin over oauth4webapi: the authorization URL, the callback
 * (code exchange, id_token validation, userinfo), refresh, userinfo, token revocation and
 * RP-initiated logout, over the shared connection of ./provider.ts (discovery, call options, the
 * signature check). Every protocol check is oauth4webapi's; this module only adds what it leaves
 * to the caller (future `iat`, `sub` continuity on refresh). Its decisions are the pure functions
 * of ./decisions.ts; this file is the I/O around them.
 */
import * as oauth from "oauth4webapi";
import { GateError } from "../common/errors";
import { log } from "../common/log";
import {
  describe,
  isAuthTimeFailure,
  isPkceRefusal,
  isRecentAuthentication,
  isTransient,
  mergedProfile,
  RefreshError,
  refreshFailure,
  tokenFields,
  userinfoFailure,
  type LoginTokens,
  type RefreshedTokens,
  type Tokens,
} from "./decisions";
import { ProviderConnection, unavailable, type Provider } from "./provider";

/** Allowed clock difference for the id_token `iat` (seconds). */
const CLOCK_SKEW = 60;

/** What the browser must not see or change between the login redirect and the callback. */
export interface PendingLogin {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string | undefined;
  /**
   * Step-up: the `max_age` sent (seconds); the id_token's `auth_time` must then be at most this
   * old (OIDC Core §3.1.2.1), or the login fails closed.
   */
  readonly maxAge?: number;
}

export class OidcClient extends ProviderConnection {
  /**
   * The authorization request (OIDC Core §3.1.2.1) and the secrets the callback will need; with
   * `maxAge`, a step-up: the provider must re-authenticate a user whose last sign-in is older.
   */
  async authorizationUrl(redirectUri: string, maxAge?: number): Promise<{ url: URL; pending: PendingLogin }> {
    const { as, usePkce } = await this.provider();
    const pending: PendingLogin = {
      state: oauth.generateRandomState(),
      // Kontur requires a nonce whenever `openid` is requested.
      nonce: oauth.generateRandomNonce(),
      codeVerifier: usePkce ? oauth.generateRandomCodeVerifier() : undefined,
      ...(maxAge === undefined ? {} : { maxAge }),
    };
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set("client_id", this.config.clientId);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("response_mode", "query");
    url.searchParams.set("redirect_uri", redirectUri);
    url.searchParams.set("scope", this.config.scopes.join(" "));
    url.searchParams.set("state", pending.state);
    url.searchParams.set("nonce", pending.nonce);
    if (pending.codeVerifier !== undefined) {
      url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(pending.codeVerifier));
      url.searchParams.set("code_challenge_method", "S256");
    }
    if (maxAge !== undefined) url.searchParams.set("max_age", String(maxAge));
    return { url, pending };
  }

  /**
   * Validates the authorization response and exchanges the code (RFC 6749 §4.1, OIDC Core §3.1.3).
   * The id_token is required, its nonce must match, and its signature is checked against the JWKS.
   */
  async callback(callbackUrl: URL, pending: PendingLogin, redirectUri: string): Promise<LoginTokens> {
    const tokens = await this.exchange(callbackUrl, pending, redirectUri);
    return { ...tokens, profile: await this.loginProfile(tokens) };
  }

  /**
   * The profile at login: userinfo with the new access token (IdentityServer's id_token of the code
   * flow carries no profile claims). A different `sub` refuses the login; any other failure is an
   * outage — never a login with a profile an allow-list has not seen.
   */
  private async loginProfile(tokens: Tokens) {
    try {
      return mergedProfile(tokens.claims, await this.userinfo(tokens.accessToken, tokens.claims.sub));
    } catch (error) {
      if (userinfoFailure(error) === "identity_changed") throw new GateError("login_rejected", "The userinfo response names another subject than the id_token");
      throw unavailable("The userinfo request", error);
    }
  }

  private async exchange(callbackUrl: URL, pending: PendingLogin, redirectUri: string): Promise<Tokens> {
    const { as, client } = await this.provider();
    for (const name of ["code", "state", "iss", "error"]) {
      // Two values for one parameter means someone spliced the URL; refuse before any exchange.
      if (callbackUrl.searchParams.getAll(name).length > 1) {
        throw new GateError("callback_invalid", `The callback carries the "${name}" parameter more than once`);
      }
    }
    let parameters: URLSearchParams;
    try {
      parameters = oauth.validateAuthResponse(as, client, callbackUrl, pending.state);
    } catch (error) {
      if (error instanceof oauth.AuthorizationResponseError) {
        if (error.error === "access_denied") throw new GateError("access_denied", "The user declined the login at the provider");
        throw new GateError("callback_invalid", `The provider answered the login with error "${error.error}"`);
      }
      throw new GateError("callback_invalid", `The callback is not a valid authorization response (${describe(error)})`);
    }
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        this.clientAuth,
        parameters,
        redirectUri,
        pending.codeVerifier ?? oauth.nopkce,
        this.options(),
      );
      const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
        expectedNonce: pending.nonce,
        requireIdToken: true,
        // oauth4webapi then requires `auth_time` and checks it, with its 30 s clock tolerance.
        ...(pending.maxAge === undefined ? {} : { maxAge: pending.maxAge }),
      });
      const tokens = await this.validated(as, response, result);
      // Exactly as the gate will judge the session on the route: a provider that ignored
      // max_age must not send the user round the step-up again and again.
      if (pending.maxAge !== undefined && !isRecentAuthentication(tokens.claims.auth_time, pending.maxAge, this.seconds())) {
        throw new GateError("step_up_failed", `The id_token's auth_time is older than the max_age of ${pending.maxAge}s the step-up asked for`);
      }
      return tokens;
    } catch (error) {
      if (error instanceof GateError) throw error;
      if (pending.maxAge !== undefined && isAuthTimeFailure(error)) {
        throw new GateError("step_up_failed", `The provider did not confirm a recent authentication (${describe(error)})`);
      }
      if (isTransient(error)) throw unavailable("The token request", error);
      if (isPkceRefusal(error, pending.codeVerifier !== undefined)) {
        throw new GateError(
          "login_rejected",
          "The code exchange carried a PKCE code_verifier and got invalid_grant: if the client is not set up for PKCE at the provider, set OIDC_PKCE=off",
        );
      }
      throw new GateError("login_rejected", `The code exchange or id_token was rejected (${describe(error)})`);
    }
  }


  /** Validates what oauth4webapi leaves to the caller: the id_token's signature and its `iat`. */
  private async validated(as: oauth.AuthorizationServer, response: Response, result: oauth.TokenEndpointResponse): Promise<Tokens> {
    const claims = oauth.getValidatedIdTokenClaims(result);
    if (claims === undefined) throw new GateError("login_rejected", "The token response has no id_token");
    await this.verifySignature(as, response);
    if (claims.iat > this.seconds() + CLOCK_SKEW) {
      throw new GateError("login_rejected", "The id_token was issued in the future (check the clocks)");
    }
    return { claims, ...tokenFields(result, this.seconds()) };
  }

  /**
   * Uses a refresh token (RFC 6749 §6). Kontur's are one-time: the returned one replaces it. A new
   * id_token must name the same subject and issuer, or the session is someone else's now. Only
   * `invalid_grant` and a changed identity are fatal; every other failure is `unavailable`.
   */
  async refresh(refreshToken: string, subject: string): Promise<RefreshedTokens> {
    let provider: Provider;
    try {
      provider = await this.provider();
    } catch (error) {
      throw new RefreshError("unavailable", describe(error));
    }
    const { as, client } = provider;
    let response: Response;
    let result: oauth.TokenEndpointResponse;
    try {
      response = await oauth.refreshTokenGrantRequest(as, client, this.clientAuth, refreshToken, this.options());
      result = await oauth.processRefreshTokenResponse(as, client, response);
    } catch (error) {
      throw refreshFailure(error);
    }
    const claims = oauth.getValidatedIdTokenClaims(result);
    if (claims !== undefined) {
      if (claims.sub !== subject) throw new RefreshError("identity_changed", "The refreshed id_token names another subject");
      await this.refreshedSignature(as, response);
    }
    return { claims, ...tokenFields(result, this.seconds()) };
  }

  /**
   * Checks the refreshed id_token's signature. The provider has replaced the refresh token by now,
   * so a JWKS that cannot be fetched must not make the gate throw the answer away (the next check
   * would get `invalid_grant`): the id_token came straight from the token endpoint, whose TLS
   * connection authenticates it (OIDC Core §3.1.3.7, item 6). A signature that fails is fatal.
   */
  private async refreshedSignature(as: oauth.AuthorizationServer, response: Response): Promise<void> {
    try {
      await this.verifySignature(as, response);
    } catch (error) {
      if (!isTransient(error)) throw new RefreshError("identity_changed", `The refreshed id_token's signature does not verify (${describe(error)})`);
      log("provider_error", { step: "refresh_jwks", reason: describe(error), signature_checked: false });
    }
  }

  /**
   * UserInfo (OIDC Core §5.3) with an access token; the answer must name `subject`. Undefined when
   * discovery lists no userinfo endpoint. Failures are thrown as they are: `userinfoFailure` says
   * what they mean.
   */
  async userinfo(accessToken: string, subject: string): Promise<oauth.UserInfoResponse | undefined> {
    const { as, client } = await this.provider();
    if (as.userinfo_endpoint === undefined) return undefined;
    const response = await oauth.userInfoRequest(as, client, accessToken, this.options());
    return oauth.processUserInfoResponse(as, client, subject, response);
  }

  /**
   * Revokes a token (RFC 7009 §2) with the configured client authentication. False when discovery
   * lists no revocation endpoint; a refusal or an outage is thrown.
   */
  async revoke(token: string, hint: "access_token" | "refresh_token"): Promise<boolean> {
    const { as, client } = await this.provider();
    if (as.revocation_endpoint === undefined) return false;
    const response = await oauth.revocationRequest(as, client, this.clientAuth, token, {
      ...this.options(),
      additionalParameters: { token_type_hint: hint },
    });
    await oauth.processRevocationResponse(response);
    return true;
  }

  /** RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2), when discovery lists the endpoint. */
  async endSessionUrl(idTokenHint: string | undefined, postLogoutRedirectUri: string): Promise<URL | undefined> {
    const { as } = await this.provider();
    if (as.end_session_endpoint === undefined) return undefined;
    const url = new URL(as.end_session_endpoint);
    url.searchParams.set("client_id", this.config.clientId);
    url.searchParams.set("post_logout_redirect_uri", postLogoutRedirectUri);
    if (idTokenHint !== undefined) url.searchParams.set("id_token_hint", idTokenHint);
    return url;
  }
}
