/**
 * The connection to the provider that every flow shares: discovery (cached per isolate, single
 * flight, again after an hour), the options of every outbound call (a timeout, the shared JWKS
 * cache, http only for a loopback issuer), client authentication, and the id_token signature
 * check with a one-time JWKS refresh for a key the provider rotated unannounced.
 */
import * as oauth from "oauth4webapi";
import type { Config } from "../config";
import { GateError } from "../common/errors";
import { idTokenAlg, usesPkce } from "./decisions";

/** How long discovery is trusted before it is fetched again. */
const DISCOVERY_TTL_MS = 60 * 60 * 1000;

/** What every outbound call gets: a timeout, the shared JWKS cache, and http only for loopback. */
export interface CallOptions {
  signal: AbortSignal;
  [oauth.jwksCache]: oauth.JWKSCacheInput;
  [oauth.allowInsecureRequests]?: boolean;
}

export interface Provider {
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly usePkce: boolean;
}

export function unavailable(what: string, error: unknown): GateError {
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : "unknown error";
  return new GateError("provider_unavailable", `${what} failed (${reason})`);
}

export class ProviderConnection {
  protected discovered: { provider: Provider; until: number } | undefined;
  protected discovering: Promise<Provider> | undefined;
  /** oauth4webapi keeps the provider's JWKS here between calls. */
  protected jwks: oauth.JWKSCacheInput = {};
  protected readonly clientAuth: oauth.ClientAuth;

  constructor(
    protected readonly config: Config,
    /** Epoch milliseconds; the runtime's clock, so tests can move time. */
    protected readonly clock: () => number = Date.now,
  ) {
    this.clientAuth =
      config.clientAuth === "client_secret_basic" ? oauth.ClientSecretBasic(config.clientSecret) : oauth.ClientSecretPost(config.clientSecret);
  }

  protected seconds(): number {
    return Math.floor(this.clock() / 1000);
  }

  protected options(): CallOptions {
    return {
      // oauth4webapi has no default timeout.
      signal: AbortSignal.timeout(this.config.oidcTimeout * 1000),
      [oauth.jwksCache]: this.jwks,
      // Only a loopback development issuer gets here with http:// (enforced in src/config.ts).
      ...(this.config.allowHttpIssuer ? { [oauth.allowInsecureRequests]: true } : {}),
    };
  }

  /** Discovery, fetched once per isolate and again after an hour; failures are not cached. */
  async provider(): Promise<Provider> {
    if (this.discovered && this.discovered.until > this.clock()) return this.discovered.provider;
    // Single flight: a burst of first requests triggers one discovery fetch.
    this.discovering ??= this.discover().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  private async discover(): Promise<Provider> {
    let as: oauth.AuthorizationServer;
    try {
      const response = await oauth.discoveryRequest(this.config.issuer, { ...this.options(), algorithm: "oidc" });
      as = await oauth.processDiscoveryResponse(this.config.issuer, response);
    } catch (error) {
      throw unavailable(`Discovery at ${this.config.issuer.href}`, error);
    }
    const alg = idTokenAlg(as);
    if (alg === undefined || as.authorization_endpoint === undefined || as.token_endpoint === undefined || as.jwks_uri === undefined) {
      throw new GateError(
        "provider_unavailable",
        `Discovery at ${this.config.issuer.href} lacks an authorization, token or JWKS endpoint, or an asymmetric id_token algorithm`,
      );
    }
    const provider: Provider = {
      as,
      client: { client_id: this.config.clientId, id_token_signed_response_alg: alg },
      usePkce: usesPkce(this.config.pkce, as),
    };
    this.discovered = { provider, until: this.clock() + DISCOVERY_TTL_MS };
    return provider;
  }


  /**
   * Checks the id_token's signature. oauth4webapi reads the JWKS again for a `kid` it does not know
   * only once its copy is a minute old, so logins would fail for a minute after the provider
   * rotates its signing key without announcing it ahead (rp-key-rotation-op-sign-key). This
   * id_token came straight from the token endpoint, so an unknown key is the provider's new one:
   * fetch the JWKS again, once. oauth4webapi keeps the JWKS per AuthorizationServer object, hence
   * the copy that replaces the cached one.
   */
  protected async verifySignature(as: oauth.AuthorizationServer, response: Response): Promise<void> {
    try {
      await oauth.validateApplicationLevelSignature(as, response, this.options());
    } catch (error) {
      if (!(error instanceof oauth.OperationProcessingError && error.code === oauth.KEY_SELECTION)) throw error;
      const fresh: oauth.AuthorizationServer = { ...as };
      this.jwks = {};
      if (this.discovered?.provider.as === as) this.discovered = { ...this.discovered, provider: { ...this.discovered.provider, as: fresh } };
      await oauth.validateApplicationLevelSignature(fresh, response, this.options());
    }
  }
}
