// The floor of the benchmark: a Worker that only forwards each request to ORIGIN_URL (same path
// and query, method, headers and body, the same fetch call the gate makes) and returns the
// origin's answer as it is.

import { atOrigin } from "./origin-url.js";

export default {
  /** @param {Request} request @param {{ ORIGIN_URL?: string }} env */
  async fetch(request, env) {
    const url = atOrigin(request.url, env.ORIGIN_URL);
    return fetch(url, { method: request.method, headers: request.headers, body: request.body, redirect: "manual" });
  },
};
