// The CPU probes of tools/bench/workers/cpu.js, by name (shared with tools/bench/bench.mjs, which runs in Node and
// cannot import cpu.js: that one imports src/ TypeScript and runs only bundled, in workerd).
export const PROBES = /** @type {const} */ (["passthroughRequest", "gateRequest", "gatePublicRequest", "cookieOpen", "policy", "headerRewrite", "assertionSigning"]);

/** @typedef {(typeof PROBES)[number]} Probe */
