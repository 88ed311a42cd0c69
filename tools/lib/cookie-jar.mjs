// A tiny cookie jar for walking browser flows from Node: the development provider's login walk,
// the benchmark's logins and the integration tests' HTTP client (test/helpers/http.ts) all keep
// their cookies here.
//
// Just enough of RFC 6265 for loopback tests: cookies are host-only (keyed by hostname, so
// `localhost` and `127.0.0.1` stay apart, as in a browser), path-matched, replaced by name+path,
// and removed by `Max-Age<=0` or a past `Expires`. Like Chromium on loopback it sends `Secure`
// (and `__Host-`) cookies over plain http, and it ignores ports (browsers do too). Domain,
// SameSite and Secure are recorded, not enforced: the browser tests cover those attributes.

/**
 * @typedef {object} StoredCookie
 * @property {string} name
 * @property {string} value
 * @property {string} host
 * @property {string} path
 * @property {number} expiresAt   ms since epoch; Infinity for session cookies
 * @property {boolean} httpOnly
 * @property {boolean} secure
 * @property {string | undefined} sameSite
 */

export class CookieJar {
  /** @type {StoredCookie[]} */
  cookies = [];

  /**
   * Stores the `Set-Cookie` headers of a response received from `url`.
   * @param {string | URL} url
   * @param {Response | Headers} responseOrHeaders
   */
  store(url, responseOrHeaders) {
    const headers = responseOrHeaders instanceof Headers ? responseOrHeaders : responseOrHeaders.headers;
    for (const line of headers.getSetCookie()) this.setCookie(url, line);
  }

  /**
   * Parses and stores one `Set-Cookie` header value.
   * @param {string | URL} url
   * @param {string} line
   */
  setCookie(url, line) {
    const { hostname, pathname } = new URL(url);
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) return;
    /** @type {StoredCookie} */
    const cookie = {
      name: pair.slice(0, eq).trim(),
      value: pair.slice(eq + 1).trim(),
      host: hostname,
      path: defaultPath(pathname),
      expiresAt: Infinity,
      httpOnly: false,
      secure: false,
      sameSite: undefined,
    };
    /** @type {number | undefined} */
    let maxAge;
    for (const attribute of attributes) {
      const [rawKey = '', ...rest] = attribute.split('=');
      const key = rawKey.trim().toLowerCase();
      const value = rest.join('=').trim();
      if (key === 'path' && value.startsWith('/')) cookie.path = value;
      else if (key === 'max-age') {
        // RFC 6265 §5.2.2: a Max-Age that is not an integer is ignored.
        if (/^-?\d+$/.test(value)) maxAge = Number(value);
      } else if (key === 'expires') {
        const at = Date.parse(value);
        if (!Number.isNaN(at)) cookie.expiresAt = at;
      } else if (key === 'httponly') cookie.httpOnly = true;
      else if (key === 'secure') cookie.secure = true;
      else if (key === 'samesite') cookie.sameSite = value.toLowerCase();
      // Domain is ignored on purpose: everything here is host-only on loopback.
    }
    // Max-Age wins over Expires wherever it stands (RFC 6265 §5.3); zero or negative deletes.
    if (maxAge !== undefined) cookie.expiresAt = maxAge <= 0 ? 0 : Date.now() + maxAge * 1000;
    this.#remove((c) => c.host === cookie.host && c.name === cookie.name && c.path === cookie.path);
    if (cookie.expiresAt > Date.now()) this.cookies.push(cookie);
  }

  /**
   * The live cookies that would be sent to `url`, longest path first (as browsers order them).
   * @param {string | URL} url
   * @returns {StoredCookie[]}
   */
  list(url) {
    const { hostname, pathname } = new URL(url);
    const now = Date.now();
    this.cookies = this.cookies.filter((c) => c.expiresAt > now);
    return this.cookies
      .filter((c) => c.host === hostname && pathMatches(pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
  }

  /**
   * Value for a `Cookie` request header, or undefined when nothing matches.
   * @param {string | URL} url
   */
  header(url) {
    const list = this.list(url);
    return list.length ? list.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  /**
   * A live cookie's value for a hostname (any path), e.g. to tamper with it or check it is gone.
   * @param {string} hostname
   * @param {string} name
   */
  get(hostname, name) {
    const now = Date.now();
    return this.cookies.find((c) => c.host === hostname && c.name === name && c.expiresAt > now)?.value;
  }

  /**
   * Sets a session cookie by hand, replacing one of the same name and path.
   * @param {string} hostname
   * @param {string} name
   * @param {string} value
   * @param {string} [path]
   */
  set(hostname, name, value, path = '/') {
    this.#remove((c) => c.host === hostname && c.name === name && c.path === path);
    this.cookies.push({ name, value, host: hostname, path, expiresAt: Infinity, httpOnly: false, secure: false, sameSite: undefined });
  }

  /**
   * Removes a cookie (every path), or all of a host's cookies when no name is given.
   * @param {string} hostname
   * @param {string} [name]
   */
  delete(hostname, name) {
    this.#remove((c) => c.host === hostname && (name === undefined || c.name === name));
  }

  /**
   * `fetch` with `redirect: 'manual'` that sends and stores this jar's cookies.
   * @param {string | URL} url
   * @param {RequestInit} [init]
   */
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers);
    const cookie = this.header(url);
    if (cookie && !headers.has('cookie')) headers.set('cookie', cookie);
    const response = await fetch(url, { redirect: 'manual', ...init, headers });
    this.store(url, response);
    return response;
  }

  clear() {
    this.cookies = [];
  }

  /** @param {(cookie: StoredCookie) => boolean} drop */
  #remove(drop) {
    this.cookies = this.cookies.filter((c) => !drop(c));
  }
}

/** RFC 6265 §5.1.4 default path: the directory of the request path. @param {string} pathname */
function defaultPath(pathname) {
  if (!pathname.startsWith('/')) return '/';
  const last = pathname.lastIndexOf('/');
  return last <= 0 ? '/' : pathname.slice(0, last);
}

/** RFC 6265 §5.1.4 path-match. @param {string} requestPath @param {string} cookiePath */
function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/';
}
