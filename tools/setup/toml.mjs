// Writes wrangler.toml for `npm run setup`: the top-level keys, the SESSIONS KV binding and
// [vars] are regenerated from the answers; every other section ([observability], other bindings,
// [env.*], …) is kept exactly as it was, and vars that setup does not ask about stay.

import { tomlString } from '../lib/wrangler-files.mjs';

/** @typedef {import('../lib/wrangler-files.mjs').Section} Section */
/** @typedef {import('../lib/wrangler-files.mjs').TomlValue} TomlValue */

/** Top-level keys the Worker needs when the file is new. */
const DEFAULT_TOP = { main: 'src/index.ts', compatibility_date: '2026-04-26', compatibility_flags: ['nodejs_als'] };

/** @param {TomlValue} value @returns {string} */
function tomlValue(value) {
  if (typeof value === 'string') return tomlString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  return `{ ${Object.entries(value).map(([key, item]) => `${key} = ${tomlValue(item)}`).join(', ')} }`;
}

/**
 * @param {Section[]} sections  the current file (empty for a new one)
 * @param {{ name: string, vars: Record<string, string>, kvId: string,
 *   routes: { pattern: string, zone: string }[] }} answers
 *   vars with an empty value are left out
 */
export function renderWranglerToml(sections, answers) {
  const top = sections[0]?.values ?? {};
  const out = [
    '# kontur-gate: Kontur (Контур.ID) login in front of a web site.',
    '# Written by `npm run setup`; run it again to change these settings (other edits are kept).',
    '# Secrets (OIDC_CLIENT_SECRET, SESSION_SECRETS, ASSERTION_SIGNING_KEY) never go here: they are in',
    '# .dev.vars for `npx wrangler dev` and Worker secrets (`npx wrangler secret bulk .dev.vars`) in production.',
    `name = ${tomlString(answers.name)}`,
  ];
  const topValues = { ...DEFAULT_TOP, ...top };
  for (const [key, value] of Object.entries(topValues)) {
    if (key === 'name' || key === 'routes' || key === 'route') continue;
    out.push(`${key} = ${tomlValue(value)}`);
  }
  if (answers.routes.length > 0) {
    out.push('# The hostnames the gate protects; each needs its redirect URI registered at Контур.Интегратор.');
    out.push('routes = [');
    for (const route of answers.routes) out.push(`  { pattern = ${tomlString(route.pattern)}, zone_name = ${tomlString(route.zone)} },`);
    out.push(']');
  }
  out.push('');

  const kvBlock = [
    '# Session records (refresh tokens, revocation): `npx wrangler kv namespace create SESSIONS`.',
    '[[kv_namespaces]]',
    'binding = "SESSIONS"',
    `id = ${tomlString(answers.kvId)}`,
  ].join('\n') + '\n\n';
  const managed = new Set(Object.keys(answers.vars));
  const varsBlock = (/** @type {Record<string, TomlValue>} */ existing) => {
    const lines = ['[vars]'];
    for (const [key, value] of Object.entries(answers.vars)) if (value !== '') lines.push(`${key} = ${tomlString(value)}`);
    for (const [key, value] of Object.entries(existing)) if (!managed.has(key)) lines.push(`${key} = ${tomlValue(value)}`);
    return `${lines.join('\n')}\n\n`;
  };

  let wroteKv = false;
  let wroteVars = false;
  let hasObservability = false;
  const rest = [];
  for (const section of sections.slice(1)) {
    if (section.array && section.name === 'kv_namespaces' && section.values.binding === 'SESSIONS') {
      if (!wroteKv) rest.push(kvBlock);
      wroteKv = true;
    } else if (!section.array && section.name === 'vars') {
      rest.push(varsBlock(section.values));
      wroteVars = true;
    } else {
      if (section.name === 'observability') hasObservability = true;
      rest.push(section.text.endsWith('\n\n') ? section.text : `${section.text}\n`);
    }
  }
  if (!wroteKv) rest.unshift(kvBlock);
  if (!wroteVars) rest.push(varsBlock({}));
  if (!hasObservability) rest.push('# Workers Logs: keeps the gate\'s JSON log lines (one per decision).\n[observability]\nenabled = true\n');
  return `${out.join('\n')}\n${rest.join('').replace(/\n+$/, '\n')}`;
}
