// Minimal HTML form extraction for walking the provider's pages over HTTP without a browser.
// It understands the simple markup this project's dev pages (and oidc-provider's) produce; it is
// not a general HTML parser.

/**
 * @typedef {object} ParsedForm
 * @property {string} action  absolute URL
 * @property {string} method  upper case
 * @property {string | undefined} id
 * @property {Record<string, string>} fields  named inputs with their current values
 */

/**
 * @param {string} html
 * @param {string | URL} baseUrl  the page's URL, to resolve relative actions
 * @returns {ParsedForm[]}
 */
export function parseForms(html, baseUrl) {
  /** @type {ParsedForm[]} */
  const forms = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = parseAttributes(match[1] ?? '');
    /** @type {Record<string, string>} */
    const fields = {};
    for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const attrs = parseAttributes(input[1] ?? '');
      if (attrs.name !== undefined) fields[attrs.name] = attrs.value ?? '';
    }
    forms.push({
      action: new URL(attributes.action ?? '', baseUrl).href,
      method: (attributes.method ?? 'get').toUpperCase(),
      id: attributes.id,
      fields,
    });
  }
  return forms;
}

/** @param {string} source @returns {Record<string, string | undefined>} */
function parseAttributes(source) {
  /** @type {Record<string, string | undefined>} */
  const attributes = {};
  for (const match of source.matchAll(/([\w:.-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>/]+)))?/g)) {
    const value = match[2] ?? match[3] ?? match[4];
    attributes[/** @type {string} */ (match[1]).toLowerCase()] = value === undefined ? '' : decodeEntities(value);
  }
  return attributes;
}

/** @type {Record<string, string>} */
const NAMED_ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** @param {string} text */
function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, /** @type {string} */ entity) => {
    const lower = entity.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number(lower.slice(1)));
    return NAMED_ENTITIES[lower] ?? '';
  });
}
