import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
// The settings the gate reads: the READMEs and docs/configuration.md must list exactly these.
import { SETTING_NAMES } from "../../src/config/reader.ts";
import { repoRoot } from "../../tools/lib/wrangler-files.mjs";

const read = (name: string) => readFile(join(repoRoot, name), "utf8");

/** The documents under docs/, each in English (docs/X.md) and Russian (docs/ru/X.md). */
const DOCS = ["configuration", "operations", "origins", "performance", "security", "storage-schema"];

interface Pair {
  readonly en: string;
  readonly ru: string;
  /** The link each language's file must carry to the other. */
  readonly toRussian: string;
  readonly toEnglish: string;
}

const PAIRS: Pair[] = [
  { en: "README.md", ru: "README.ru.md", toRussian: "[Русский](README.ru.md)", toEnglish: "[English](README.md)" },
  ...DOCS.map((name) => ({
    en: `docs/${name}.md`,
    ru: `docs/ru/${name}.md`,
    toRussian: `[Русский](ru/${name}.md)`,
    toEnglish: `[English](../${name}.md)`,
  })),
  // The development provider has its own README pair (its options and how it plays Kontur).
  {
    en: "tools/dev-provider/README.md",
    ru: "tools/dev-provider/README.ru.md",
    toRussian: "[Русский](README.ru.md)",
    toEnglish: "[English](README.md)",
  },
];

const withoutCodeBlocks = (markdown: string) => markdown.replace(/```[\s\S]*?```/g, "");

/** Everything in backticks: setting names, values, commands, paths, headers, log fields. */
function inlineCode(markdown: string): Set<string> {
  // Placeholders are translated (`https://<your host>/…` → `https://<ваш хост>/…`).
  return new Set([...withoutCodeBlocks(markdown).matchAll(/`([^`\n]+)`/g)].map((match) => match[1]!.replace(/<[^<>]+>/g, "<…>")));
}

function outline(markdown: string) {
  const prose = withoutCodeBlocks(markdown);
  return {
    sections: prose.match(/^#{2,3} /gm)?.length ?? 0,
    tableRows: prose.match(/^\|/gm)?.length ?? 0,
    codeBlocks: markdown.match(/^```/gm)?.length ?? 0,
    // Numbered items that open in bold: the deploy steps, the troubleshooting list.
    numberedItems: prose.match(/^\d+\. \*\*/gm)?.length ?? 0,
  };
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** Relative links of a Markdown file whose target file or heading does not exist. */
async function brokenLinks(file: string): Promise<string[]> {
  const markdown = await read(file);
  const broken: string[] = [];
  for (const [, target] of withoutCodeBlocks(markdown).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/.test(target!)) continue;
    const [path, fragment] = target!.split("#") as [string, string | undefined];
    const linked = path === "" ? file : join(dirname(file), path);
    if (!existsSync(join(repoRoot, linked))) {
      broken.push(target!);
      continue;
    }
    if (fragment === undefined || !linked.endsWith(".md")) continue;
    const headings = withoutCodeBlocks(await read(linked)).match(/^#{1,6} .*$/gm) ?? [];
    if (!headings.some((heading) => anchor(heading.replace(/^#+ /, "")) === fragment)) broken.push(target!);
  }
  return broken;
}

/** The setting names in the first cell of every row of the tables whose header starts with `header`. */
function settingRows(markdown: string, header: RegExp): string[] {
  const names: string[] = [];
  let inTable = false;
  for (const line of withoutCodeBlocks(markdown).split("\n")) {
    if (!line.startsWith("|")) {
      inTable = false;
      continue;
    }
    if (header.test(line)) inTable = true;
    else if (inTable) names.push(...[...(line.split("|")[1] ?? "").matchAll(/`([A-Z][A-Z_]+)`/g)].map((match) => match[1]!));
  }
  return names;
}

const SETTINGS_HEADER = /^\| (setting|настройка) \|/;

describe.each(PAIRS)("$en (English) and $ru (Russian) say the same", ({ en, ru, toRussian, toEnglish }) => {
  it("same sections, tables, code blocks and numbered steps", async () => {
    const [english, russian] = await Promise.all([read(en), read(ru)]);
    expect(outline(russian), `${ru} must follow ${en} section by section: translate what changed`).toEqual(outline(english));
  });

  it("every name, value and command of the English text is in the Russian one", async () => {
    const [english, russian] = await Promise.all([read(en), read(ru)]);
    const inRussian = inlineCode(russian);
    const missing = [...inlineCode(english)].filter((code) => !inRussian.has(code));
    expect(missing, `${en} has these and ${ru} does not: translate the new text into ${ru}`).toEqual([]);
  });

  it("each links to the other", async () => {
    expect(await read(en)).toContain(toRussian);
    expect(await read(ru)).toContain(toEnglish);
  });

  it("every relative link points at a file and heading that exist", async () => {
    expect(await brokenLinks(en), en).toEqual([]);
    expect(await brokenLinks(ru), ru).toEqual([]);
  });
});

describe("the documentation index", () => {
  it("docs/ holds exactly the documents above, each with its Russian twin", async () => {
    const english = (await readdir(join(repoRoot, "docs"))).filter((name) => name.endsWith(".md"));
    const russian = await readdir(join(repoRoot, "docs/ru"));
    expect(english.sort()).toEqual(DOCS.map((name) => `${name}.md`));
    expect(russian.sort()).toEqual(DOCS.map((name) => `${name}.md`));
  });

  it("each README links every document in its own language", async () => {
    const [english, russian] = await Promise.all([read("README.md"), read("README.ru.md")]);
    for (const name of DOCS) {
      expect(english, `README.md links docs/${name}.md`).toContain(`(docs/${name}.md)`);
      expect(russian, `README.ru.md links docs/ru/${name}.md`).toContain(`(docs/ru/${name}.md)`);
    }
  });
});

describe("every setting the gate reads is documented, and nothing else", () => {
  const expected = [...SETTING_NAMES].sort();

  it.each(["README.md", "README.ru.md"])("%s: the settings table lists exactly SETTING_NAMES", async (file) => {
    expect(settingRows(await read(file), SETTINGS_HEADER).sort()).toEqual(expected);
  });

  it.each(["docs/configuration.md", "docs/ru/configuration.md"])("%s: the settings tables list exactly SETTING_NAMES", async (file) => {
    expect(settingRows(await read(file), SETTINGS_HEADER).sort()).toEqual(expected);
  });
});
