// Declarations for the three packages the tools use that ship no types (and have no @types
// package in the lockfile): each declares only the part of the API the tools call, so checkJs
// checks those calls instead of treating the whole module as untyped.

declare module "autocannon" {
  interface Options {
    url: string;
    headers?: Record<string, string>;
    /** Seconds. */
    duration: number;
    connections: number;
  }
  interface Result {
    /** Seconds the run took, as autocannon measured it. */
    duration: number;
    requests: { total: number };
    "2xx": number;
    non2xx: number;
    errors: number;
    timeouts: number;
  }
  interface Instance {
    /** Every response: its status, body size and time in milliseconds. */
    on(event: "response", listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void): Instance;
  }
  function autocannon(options: Options, done: (error: Error | null, result: Result) => void): Instance;
  export default autocannon;
}

declare module "workerd" {
  const workerd: {
    /** Path of the workerd binary shipped inside the package. */
    default: string;
    version: string;
  };
  export default workerd;
}

declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse, RequestListener } from "node:http";

  /** Koa's context as oidc-provider passes it to middleware, events and policies. */
  export interface KoaContext {
    req: IncomingMessage;
    res: ServerResponse;
    method: string;
    path: string;
    status: number;
    body: unknown;
    type: string;
    request: { body?: unknown };
    oidc?: { route?: string; client?: { clientId: string }; params?: Record<string, unknown>; entities?: Record<string, unknown> };
    set(name: string, value: string): void;
    get(name: string): string;
    redirect(url: string): void;
  }
  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

  export interface InteractionDetails {
    uid: string;
    grantId?: string;
    params: Record<string, unknown> & { client_id: string; scope?: string };
    prompt: { name: string; details?: { missingOIDCClaims?: string[] } & Record<string, unknown> };
  }

  export class Grant {
    constructor(properties: { accountId: string; clientId: string });
    static find(id: string): Promise<Grant | undefined>;
    accountId: string;
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    save(): Promise<string>;
  }

  export class Provider {
    constructor(issuer: string, configuration: object);
    /** The context of the request being handled (AsyncLocalStorage). */
    static readonly ctx: KoaContext | undefined;
    readonly Grant: typeof Grant;
    readonly Client: { find(id: string): Promise<unknown> };
    callback(): RequestListener;
    use(middleware: Middleware): void;
    on(event: string, listener: (ctx: KoaContext, error?: unknown) => void): void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionResult(req: IncomingMessage, res: ServerResponse, result: object, options?: { mergeWithLastSubmission?: boolean }): Promise<string>;
  }

  class OIDCProviderError extends Error {
    constructor(description?: string, detail?: string);
    status: number;
    error: string;
    error_description?: string;
    /** false: answer with an error page instead of redirecting back to the client. */
    allow_redirect?: boolean;
  }
  export const errors: {
    InvalidGrant: typeof OIDCProviderError;
    InvalidRequest: typeof OIDCProviderError;
  };
}
