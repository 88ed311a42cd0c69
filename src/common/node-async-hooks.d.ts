/**
 * The part of `node:async_hooks` that workerd provides under the `nodejs_als` compatibility flag
 * (wrangler.toml) and src/common/log.ts uses. Declared here because src/ is typed with the Workers types
 * only: Node's own types would hide Workers-specific type errors.
 */
declare module "node:async_hooks" {
  export class AsyncLocalStorage<T> {
    run<R>(store: T, callback: () => R): R;
    getStore(): T | undefined;
  }
}
