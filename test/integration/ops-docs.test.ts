import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/worker-config.ts";

const read = (name: string) => readFile(join(repoRoot, name), "utf8");

/** Everything in backticks: setting names, values, commands, paths, headers, log fields. */
function inlineCode(markdown: string): Set<string> {
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  // Placeholders are translated (`https://<your host>/…` → `https://<ваш хост>/…`).
  return new Set([...prose.matchAll(/`([^`\n]+)`/g)].map((match) => match[1]!.replace(/<[^<>]+>/g, "<…>")));
}

function outline(markdown: string) {
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  return {
    sections: prose.match(/^#{2,3} /gm)?.length ?? 0,
    tableRows: prose.match(/^\|/gm)?.length ?? 0,
    codeBlocks: markdown.match(/^```/gm)?.length ?? 0,
    troubleshooting: prose.match(/^\d+\. \*\*/gm)?.length ?? 0,
  };
}

describe("README.md (English) and README.ru.md (Russian) say the same", () => {
  it("same sections, tables, code blocks and troubleshooting items", async () => {
    const [en, ru] = await Promise.all([read("README.md"), read("README.ru.md")]);
    expect(outline(ru), "README.ru.md must follow README.md section by section: translate what changed").toEqual(outline(en));
  });

  it("every name, value and command of the English README is in the Russian one", async () => {
    const [en, ru] = await Promise.all([read("README.md"), read("README.ru.md")]);
    const russian = inlineCode(ru);
    const missing = [...inlineCode(en)].filter((code) => !russian.has(code));
    expect(missing, "README.md has these and README.ru.md does not: translate the new text into README.ru.md").toEqual([]);
  });

  it("each links to the other", async () => {
    expect(await read("README.md")).toContain("[Русский](README.ru.md)");
    expect(await read("README.ru.md")).toContain("[English](README.md)");
  });
});
