// In-memory storage adapter for the development OpenID provider.
//
// oidc-provider ships a memory adapter too, but it prints a "development-only" warning on every
// start and keeps an LRU of 1000 entries shared by all providers in the process (a load test would
// silently evict sessions). This one is per provider instance, unbounded and quiet: every artifact
// lives until it expires or the provider is closed.

/**
 * @typedef {{ payload: Record<string, any>, expiresAt: number }} Entry
 */

/**
 * Returns an adapter factory (`adapter` option of oidc-provider) whose artifacts all live in one
 * Map, so that a provider instance owns its data and `clear()` drops it.
 * @param {object} [options]
 * @param {() => boolean} [options.keepGrantTokens]  when true at the moment oidc-provider revokes
 *   a grant's tokens or destroys a consumed one, they are kept (see provider.mjs: reuse of codes
 *   and refresh tokens)
 * @param {(model: string) => Error} [options.alreadyConsumed]  error thrown when a code or refresh
 *   token is consumed a second time: oidc-provider checks `consumed` on a copy loaded earlier, so
 *   two racing requests could both pass that check; consuming here is the atomic step
 */
export function createMemoryStore({
  keepGrantTokens = () => false,
  alreadyConsumed = (model) => new Error(`${model} already consumed`),
} = {}) {
  /** @type {Map<string, Entry>} */
  const entries = new Map();
  /** @type {Map<string, Set<string>>} grantId -> keys of tokens/codes issued under it */
  const byGrant = new Map();
  /** @type {Map<string, string>} secondary indexes: session uid / user code -> key */
  const index = new Map();

  /** @param {string} key */
  const read = (key) => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry.payload;
  };

  class Adapter {
    /** @param {string} model oidc-provider model name (Session, AccessToken, Grant, ...) */
    constructor(model) {
      this.model = model;
    }

    /** @param {string} id */
    key(id) {
      return `${this.model}:${id}`;
    }

    /**
     * @param {string} id
     * @param {Record<string, any>} payload
     * @param {number} [expiresIn] seconds
     */
    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      // The provider already applies its own clock tolerance when it reads tokens; keep entries a
      // few seconds longer than their lifetime so that an "expired" answer comes from the provider
      // (with its proper error) rather than from a vanished record.
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + (expiresIn + 30) * 1000 : Infinity;
      entries.set(key, { payload, expiresAt });
      if (payload.grantId) {
        if (!byGrant.has(payload.grantId)) byGrant.set(payload.grantId, new Set());
        byGrant.get(payload.grantId)?.add(key);
      }
      if (this.model === 'Session' && payload.uid) index.set(`uid:${payload.uid}`, key);
      if (payload.userCode) index.set(`userCode:${payload.userCode}`, key);
    }

    /** @param {string} id */
    async find(id) {
      return read(this.key(id));
    }

    /** @param {string} uid */
    async findByUid(uid) {
      const key = index.get(`uid:${uid}`);
      return key ? read(key) : undefined;
    }

    /** @param {string} userCode */
    async findByUserCode(userCode) {
      const key = index.get(`userCode:${userCode}`);
      return key ? read(key) : undefined;
    }

    /** @param {string} id */
    async consume(id) {
      const payload = read(this.key(id));
      if (!payload) return;
      if (payload.consumed) throw alreadyConsumed(this.model);
      payload.consumed = Math.floor(Date.now() / 1000);
    }

    /** @param {string} id */
    async destroy(id) {
      // A reused token is destroyed by oidc-provider before it answers invalid_grant; keep it
      // while keepGrantTokens() says so, so every later reuse is recognised as a reuse too.
      if (keepGrantTokens() && read(this.key(id))?.consumed) return;
      entries.delete(this.key(id));
    }

    /** @param {string} grantId */
    async revokeByGrantId(grantId) {
      if (keepGrantTokens()) return;
      for (const key of byGrant.get(grantId) ?? []) entries.delete(key);
      byGrant.delete(grantId);
    }
  }

  return {
    /** @param {string} model */
    adapter: (model) => new Adapter(model),
    clear() {
      entries.clear();
      byGrant.clear();
      index.clear();
    },
  };
}
