// Where the benchmark's bare Workers forward a request: its own path and query, on ORIGIN_URL's
// scheme and host.

/** @param {string} requestUrl @param {string | undefined} originUrl */
export function atOrigin(requestUrl, originUrl) {
  const url = new URL(requestUrl);
  const origin = new URL(originUrl ?? "");
  url.protocol = origin.protocol;
  url.host = origin.host;
  return url;
}
