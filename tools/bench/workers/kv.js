// KV for the benchmark's gate build: a counter around whatever SESSIONS namespace the gate gets,
// and an in-isolate stand-in for `workerd serve`, which has no KV of its own. The stand-in keeps
// values in a Map with KV's expiry rule; it exists only so a real login can create a real session
// record there, and so checks can read it back. The counts answer "how many KV calls per request".

/** Call counts by operation; reset between measurements through the gate's /__bench/ endpoints. */
export function newKvCounts() {
  return { get: 0, put: 0, delete: 0, list: 0 };
}

/**
 * A namespace that counts every call, then hands it to `inner`.
 * @param {KVNamespace} inner
 * @param {ReturnType<typeof newKvCounts>} counts
 * @returns {KVNamespace}
 */
export function countingKv(inner, counts) {
  return new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (typeof property === "string" && property in counts) {
        const operation = /** @type {keyof typeof counts} */ (property);
        return (/** @type {unknown[]} */ ...args) => {
          counts[operation] += 1;
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
}

/**
 * The smallest KV the gate needs: text values, `expirationTtl`, `get`/`put`/`delete`.
 * @returns {KVNamespace}
 */
export function memoryKv() {
  /** @type {Map<string, { value: string, expiresAt: number }>} */
  const entries = new Map();
  const kv = {
    /** @param {string} key @param {string | { type?: string }} [options] */
    async get(key, options) {
      const type = typeof options === "string" ? options : (options?.type ?? "text");
      if (type !== "text") throw new TypeError(`memoryKv supports text values only (asked for ${type})`);
      const entry = entries.get(key);
      if (entry === undefined) return null;
      if (entry.expiresAt <= Date.now()) {
        entries.delete(key);
        return null;
      }
      return entry.value;
    },
    /** @param {string} key @param {unknown} value @param {{ expirationTtl?: number }} [options] */
    async put(key, value, options = {}) {
      if (typeof value !== "string") throw new TypeError("memoryKv stores strings only");
      const ttl = options.expirationTtl;
      if (ttl !== undefined && ttl < 60) throw new RangeError("KV refuses an expirationTtl under 60 seconds");
      entries.set(key, { value, expiresAt: ttl === undefined ? Infinity : Date.now() + ttl * 1000 });
    },
    /** @param {string} key */
    async delete(key) {
      entries.delete(key);
    },
    async list() {
      throw new TypeError("memoryKv does not list: the gate never lists keys");
    },
  };
  return /** @type {KVNamespace} */ (/** @type {unknown} */ (kv));
}
