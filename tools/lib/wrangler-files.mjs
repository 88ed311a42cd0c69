// The two files a deployment is made of, read and written by `npm run setup` and read by
// `npm run check`: wrangler.toml (vars, KV binding, routes) and .dev.vars (secrets for
// `wrangler dev`, dotenv format). The tests and the benchmark read the repository's own
// wrangler.toml through the same reader (workerCompat), so every runtime they start behaves alike.
//
// wrangler.toml is read with a small TOML reader that covers what wrangler files use (tables,
// arrays of tables, strings, booleans, numbers, arrays and inline tables, comments); a file it
// cannot read is reported with its line number, never guessed at. It is written section by
// section: the parts setup manages are regenerated, every other section is kept as it was.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { writePrivate } from './secrets.mjs';

/** The repository's root (tools/lib/ → ../../). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The KV id wrangler.toml ships with: fine for `wrangler dev`, refused by `wrangler deploy`. */
export const PLACEHOLDER_KV_ID = '00000000000000000000000000000000';

/**
 * @typedef {string | number | boolean | TomlArray | TomlTable} TomlValue
 * @typedef {TomlValue[]} TomlArray
 * @typedef {{ [key: string]: TomlValue }} TomlTable
 * @typedef {{ header: string | undefined, name: string | undefined, array: boolean, text: string,
 *   values: Record<string, TomlValue> }} Section
 *   header: the `[name]` / `[[name]]` line (undefined for the top level); text: the raw lines
 */

/**
 * Reads `text` into sections, each with its raw text and its parsed key/value pairs.
 * @param {string} text
 * @returns {Section[]}
 */
export function readSections(text) {
  /** @type {Section[]} */
  const sections = [{ header: undefined, name: undefined, array: false, text: '', values: {} }];
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  for (let index = 0; index < lines.length; index += 1) {
    const line = /** @type {string} */ (lines[index]);
    const header = /^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(?:#.*)?$/.exec(line);
    if (header) {
      sections.push({ header: line, name: header[2], array: header[1] === '[[', text: `${line}\n`, values: {} });
      continue;
    }
    const section = /** @type {Section} */ (sections.at(-1));
    section.text += `${line}\n`;
    const stripped = line.trim();
    if (stripped === '' || stripped.startsWith('#')) continue;
    const pair = /^\s*([A-Za-z0-9_-]+|"[^"]*")\s*=\s*(.*)$/.exec(line);
    if (!pair) throw new Error(`wrangler.toml line ${index + 1}: cannot read ${JSON.stringify(stripped)}`);
    // A value may go on over several lines (an array); take lines until it parses.
    let source = /** @type {string} */ (pair[2]);
    let parsed;
    for (;;) {
      try {
        parsed = parseValue(source);
        break;
      } catch (error) {
        if (index + 1 >= lines.length || !/^\s*\[/.test(/** @type {string} */ (pair[2]))) {
          throw new Error(`wrangler.toml line ${index + 1}: ${/** @type {Error} */ (error).message}`);
        }
        index += 1;
        source += `\n${lines[index]}`;
        section.text += `${lines[index]}\n`;
      }
    }
    const key = /** @type {string} */ (pair[1]).replace(/^"|"$/g, '');
    section.values[key] = parsed;
  }
  return sections;
}

/**
 * One TOML value with nothing after it but a comment.
 * @param {string} source
 */
function parseValue(source) {
  const reader = { text: source, at: 0 };
  const value = readValue(reader);
  skipSpace(reader);
  if (reader.at < reader.text.length) throw new Error(`unexpected ${JSON.stringify(reader.text.slice(reader.at, reader.at + 20))}`);
  return value;
}

/** @param {{ text: string, at: number }} r */
function skipSpace(r) {
  for (;;) {
    while (r.at < r.text.length && /\s/.test(/** @type {string} */ (r.text[r.at]))) r.at += 1;
    if (r.text[r.at] !== '#') return;
    while (r.at < r.text.length && r.text[r.at] !== '\n') r.at += 1;
  }
}

/** @param {{ text: string, at: number }} r @returns {TomlValue} */
function readValue(r) {
  skipSpace(r);
  const rest = r.text.slice(r.at);
  let match;
  if ((match = /^"((?:[^"\\\n]|\\.)*)"/.exec(rest))) {
    r.at += match[0].length;
    // TOML basic strings use JSON's escapes (plus \U, which wrangler files do not need).
    return JSON.parse(`"${match[1]}"`);
  }
  if ((match = /^'([^'\n]*)'/.exec(rest))) {
    r.at += match[0].length;
    return /** @type {string} */ (match[1]);
  }
  if ((match = /^(true|false)\b/.exec(rest))) {
    r.at += match[0].length;
    return match[1] === 'true';
  }
  if ((match = /^[+-]?\d[\d_]*(\.\d+)?\b/.exec(rest))) {
    r.at += match[0].length;
    return Number(match[0].replace(/_/g, ''));
  }
  if (rest.startsWith('[')) {
    r.at += 1;
    /** @type {TomlValue[]} */
    const items = [];
    for (;;) {
      skipSpace(r);
      if (r.text[r.at] === ']') {
        r.at += 1;
        return items;
      }
      items.push(readValue(r));
      skipSpace(r);
      if (r.text[r.at] === ',') r.at += 1;
      else if (r.text[r.at] !== ']') throw new Error('an array needs , or ]');
    }
  }
  if (rest.startsWith('{')) {
    r.at += 1;
    /** @type {Record<string, TomlValue>} */
    const table = {};
    for (;;) {
      skipSpace(r);
      if (r.text[r.at] === '}') {
        r.at += 1;
        return table;
      }
      const key = /^([A-Za-z0-9_-]+|"[^"]*")\s*=/.exec(r.text.slice(r.at));
      if (!key) throw new Error('an inline table needs key = value');
      r.at += key[0].length;
      table[/** @type {string} */ (key[1]).replace(/^"|"$/g, '')] = readValue(r);
      skipSpace(r);
      if (r.text[r.at] === ',') r.at += 1;
      else if (r.text[r.at] !== '}') throw new Error('an inline table needs , or }');
    }
  }
  throw new Error(`cannot read the value ${JSON.stringify(rest.slice(0, 20))}`);
}

/** A TOML basic string: JSON's string syntax is valid TOML. @param {string} value */
export function tomlString(value) {
  return JSON.stringify(value);
}

/**
 * What setup and check need from wrangler.toml.
 * @param {Section[]} sections
 */
export function wranglerFacts(sections) {
  const top = /** @type {Section} */ (sections[0]);
  const vars = sections.find((s) => s.name === 'vars' && !s.array)?.values ?? {};
  // ROUTES may also be written as [[vars.ROUTES]] tables; the Worker then gets them as one array.
  const routeTables = sections.filter((s) => s.array && s.name === 'vars.ROUTES').map((s) => s.values);
  const kv = sections.find((s) => s.name === 'kv_namespaces' && s.array && s.values.binding === 'SESSIONS');
  const routes = [];
  const rawRoutes = top.values.routes ?? (top.values.route === undefined ? [] : [top.values.route]);
  for (const route of Array.isArray(rawRoutes) ? rawRoutes : []) {
    if (typeof route === 'string') routes.push({ pattern: route, zone: undefined });
    else if (route && typeof route === 'object' && !Array.isArray(route) && typeof route.pattern === 'string') {
      routes.push({ pattern: route.pattern, zone: typeof route.zone_name === 'string' ? route.zone_name : undefined });
    }
  }
  return {
    name: typeof top.values.name === 'string' ? top.values.name : undefined,
    /** @type {Record<string, string>} vars as strings, the way the Worker sees them */
    vars: Object.fromEntries([
      ...Object.entries(vars).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]),
      ...(routeTables.length > 0 ? [['ROUTES', JSON.stringify(routeTables)]] : []),
    ]),
    kvId: kv && typeof kv.values.id === 'string' ? kv.values.id : undefined,
    routes,
    observability: sections.some((s) => s.name === 'observability' && s.values.enabled === true),
  };
}

/**
 * Reads `<dir>/wrangler.toml`; undefined when there is none.
 * @param {string} file
 */
export async function readWranglerToml(file) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT') return undefined;
    throw error;
  }
  return readSections(text);
}

/**
 * Reads a dotenv file (.dev.vars): `NAME=value`, `NAME="value"` (JSON escapes) or `NAME='value'`,
 * `#` comments. Empty when the file does not exist.
 * @param {string} file
 * @returns {Promise<Record<string, string>>}
 */
export async function readDotenv(file) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT') return {};
    throw error;
  }
  /** @type {Record<string, string>} */
  const values = {};
  text.split(/\r?\n/).forEach((line, index) => {
    const stripped = line.trim();
    if (stripped === '' || stripped.startsWith('#')) return;
    const pair = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(stripped);
    if (!pair) throw new Error(`${file} line ${index + 1}: expected NAME=value`);
    const raw = /** @type {string} */ (pair[2]);
    let value = raw;
    if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) value = JSON.parse(raw);
    else if (raw.startsWith("'") && raw.endsWith("'") && raw.length >= 2) value = raw.slice(1, -1);
    values[/** @type {string} */ (pair[1])] = value;
  });
  return values;
}

/**
 * Writes .dev.vars (mode 0600): one `NAME='value'` line each (the form wrangler reads without
 * expanding anything inside), after a comment.
 * @param {string} file
 * @param {Record<string, string>} values
 * @param {string} comment
 */
export async function writeDotenv(file, values, comment) {
  const lines = Object.entries(values).map(([name, value]) => {
    if (/['\n$]/.test(value)) throw new Error(`${name} has a character .dev.vars cannot carry (', $ or a newline)`);
    return `${name}='${value}'`;
  });
  await writePrivate(file, `${comment.split('\n').map((line) => `# ${line}`).join('\n')}\n${lines.join('\n')}\n`);
}

/**
 * The compatibility settings of the repository's wrangler.toml, so the unit tests' workerd, the
 * Miniflare-hosted gate, the benchmark's workerd and `wrangler dev/deploy` all run the Worker under
 * the same runtime behaviour. Only these two top-level keys are returned: the rest (vars, KV ids)
 * must not leak into tests.
 * @param {string} [file]
 * @returns {{ compatibilityDate: string, compatibilityFlags: string[] }}
 */
export function workerCompat(file = join(repoRoot, 'wrangler.toml')) {
  const top = readSections(readFileSync(file, 'utf8'))[0]?.values ?? {};
  const date = top.compatibility_date;
  if (typeof date !== 'string') throw new Error(`${file} has no top-level compatibility_date`);
  const flags = top.compatibility_flags ?? [];
  if (!Array.isArray(flags) || !flags.every((flag) => typeof flag === 'string')) {
    throw new Error(`${file}: compatibility_flags must be an array of strings`);
  }
  return { compatibilityDate: date, compatibilityFlags: /** @type {string[]} */ (flags) };
}
