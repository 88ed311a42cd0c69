/**
 * Property tests (fast-check) of the three functions every attacker reaches first: the cookie
 * opener, the path canonicaliser and the return-target validator. Whatever the input, they never
 * throw, never open a value the gate did not seal for that place, never call an ambiguous path
 * public, and never return a target off the site. Run counts are bounded; a failure prints the
 * seed and the shrunk counter-example.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { base64urlDecode, parseConfig, type Config } from "../../src/config";
import { importKeyring, open, seal, type Keyring } from "../../src/session/seal";
import { isPublicPath } from "../../src/policy/access";
import { canonicalPath } from "../../src/policy/path";
import { safeReturnPath } from "../../src/policy/return-path";
import { openSessionCookie, sealSessionCookie, type SessionCookie } from "../../src/session/cookie";
import { randomSecret, validSettings } from "./fixtures";

const SITE = "https://site.example";
const HOST = new URL(SITE).host;
const RUNS = { numRuns: 300 };

async function keyring(): Promise<Keyring> {
  return importKeyring([base64urlDecode(randomSecret())!]);
}

/** Characters that carry meaning in sealed values, URLs and paths, plus the odd ones out. */
const TRICKY = ["/", "\\", ".", "%", ":", "@", "?", "#", "&", "=", ";", " ", "\t", "\n", "\r", "\0", "\u007f", "\u0085", "\u3002", "\uff0e", "\u2215", "\ufeff", "~", "-", "_", "A", "z", "0", "9", "e", "E"];
const trickyString = (maxLength: number) => fc.array(fc.constantFrom(...TRICKY), { maxLength }).map((chars) => chars.join(""));
/** Mostly tricky characters, sometimes anything at all (any UTF-16, lone surrogates included). */
const hostile = (maxLength: number) => fc.oneof(trickyString(maxLength), fc.string({ unit: "binary", maxLength }), fc.string({ maxLength }));

function session(now: number): SessionCookie {
  return { v: 1, sid: "sid-".padEnd(43, "x"), user: { sub: "user-1", email: "a@example.ru" }, iat: now, exp: now + 3600, chk: now, seen: now };
}

/** One edit of a string: a character replaced, removed or inserted. */
const edit = fc.record({ kind: fc.constantFrom("replace", "remove", "insert"), at: fc.nat(), char: fc.constantFrom(...TRICKY) });
function applyEdit(text: string, { kind, at, char }: { kind: string; at: number; char: string }): string {
  const i = at % (text.length + 1);
  if (kind === "insert") return text.slice(0, i) + char + text.slice(i);
  if (i === text.length) return text;
  return text.slice(0, i) + (kind === "replace" ? char : "") + text.slice(i + 1);
}

describe("the cookie opener never throws and never opens what it did not seal", () => {
  it("open(): arbitrary strings are never a sealed value", async () => {
    const keys = await keyring();
    await fc.assert(
      fc.asyncProperty(hostile(300), async (input) => {
        expect(await open(keys, "kg_session", input)).toBeUndefined();
      }),
      RUNS,
    );
  });

  it("open(): strings shaped like sealed values (version, key id, base64url) are not either", async () => {
    const keys = await keyring();
    const shaped = fc.tuple(fc.constantFrom("1", "0", "2", ""), fc.constantFrom(keys[0]!.id, "AAAAAAAA", ""), fc.base64String({ maxLength: 400 }));
    await fc.assert(
      fc.asyncProperty(shaped, async ([version, keyId, data]) => {
        const candidate = `${version}.${keyId}.${data.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
        expect(await open(keys, "kg_session", candidate)).toBeUndefined();
      }),
      RUNS,
    );
  });

  it("open(): every single edit of a sealed value is refused; the untouched value still opens", async () => {
    const keys = await keyring();
    const sealed = await seal(keys, "kg_session", { n: 1 });
    await fc.assert(
      fc.asyncProperty(edit, async (change) => {
        const edited = applyEdit(sealed, change);
        const opened = await open(keys, "kg_session", edited);
        if (edited === sealed) expect(opened?.value).toEqual({ n: 1 });
        else expect(opened).toBeUndefined();
      }),
      RUNS,
    );
  });

  it("open(): only the spelling the gate wrote opens, not another last character that decodes to the same bytes", async () => {
    // The random edits above found this: base64url's last character has unused low bits, and the
    // native decoder ignores them.
    const keys = await keyring();
    let tried = 0;
    for (let n = 0; n < 12; n += 1) {
      const sealed = await seal(keys, "kg_session", { n: "x".repeat(n) });
      for (const last of "AEIMQUYcgkosw048".replace(sealed.at(-1)!, "")) {
        tried += 1;
        expect(await open(keys, "kg_session", sealed.slice(0, -1) + last)).toBeUndefined();
      }
    }
    expect(tried).toBeGreaterThan(150);
  });

  it("seal(): the same value sealed twice never gives the same text (a fresh IV each time; mod_auth_openidc CVE-2021-32791)", async () => {
    const keys = await keyring();
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        expect(await seal(keys, "kg_session", value)).not.toBe(await seal(keys, "kg_session", value));
      }),
      { numRuns: 100 },
    );
  });

  it("open(): a value sealed for one purpose never opens for another", async () => {
    const keys = await keyring();
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), async (purpose, other) => {
        fc.pre(purpose !== other);
        expect(await open(keys, other, await seal(keys, purpose, { p: purpose }))).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });

  it("openSessionCookie(): arbitrary cookies are no session, and a session cookie edited anywhere is none either", async () => {
    const keys = await keyring();
    const sealed = await sealSessionCookie(keys, session(Math.floor(Date.now() / 1000)), HOST);
    await fc.assert(
      fc.asyncProperty(fc.option(hostile(5000), { nil: undefined }), edit, async (input, change) => {
        expect(await openSessionCookie(keys, input, HOST)).toBeUndefined();
        const edited = applyEdit(sealed, change);
        if (edited !== sealed) expect(await openSessionCookie(keys, edited, HOST)).toBeUndefined();
      }),
      RUNS,
    );
  });

  it("openSessionCookie(): a value sealed by another deployment is no session", async () => {
    const mine = await keyring();
    await fc.assert(
      fc.asyncProperty(fc.constant(null), async () => {
        const theirs = await keyring();
        expect(await openSessionCookie(mine, await sealSessionCookie(theirs, session(0), HOST), HOST)).toBeUndefined();
      }),
      { numRuns: 20 },
    );
  });
});

describe("the path canonicaliser never throws and never calls an ambiguous path public", () => {
  let config: Config;
  const publicPrefix = "/static/";

  async function publicConfig(): Promise<Config> {
    config ??= parseConfig(await validSettings({ PUBLIC_PATHS: "/static/*, /favicon.ico" }));
    return config;
  }

  it("canonicalPath() and isPublicPath() take any string", async () => {
    const cfg = await publicConfig();
    fc.assert(
      fc.property(hostile(200), (input) => {
        const path = canonicalPath(input);
        expect(typeof path.ambiguous).toBe("boolean");
        expect(typeof isPublicPath(path, cfg)).toBe("boolean");
      }),
      RUNS,
    );
  });

  it("a public path, as the URL parser hands it over, decodes under a public pattern without any trick in it", async () => {
    const cfg = await publicConfig();
    fc.assert(
      fc.property(fc.constantFrom("/static/", "/static", "/favicon.ico", "/", "/x/../static/", "/%73tatic/"), hostile(60), (prefix, rest) => {
        let pathname: string;
        try {
          pathname = new URL(`${prefix}${rest}`, SITE).pathname;
        } catch {
          return;
        }
        const path = canonicalPath(pathname);
        if (!isPublicPath(path, cfg)) return;
        expect(path.ambiguous).toBe(false);
        // Read the way a decoding origin reads it, it is still under a public pattern ...
        const decoded = decodeURIComponent(pathname);
        expect(decoded === "/favicon.ico" || decoded.startsWith(publicPrefix)).toBe(true);
        // ... with nothing in it an origin could resolve into another directory.
        expect(decoded).not.toMatch(/\\|\/\.\.?(\/|$)|\/\/|[\u0000-\u001f\u007f]/);
        expect(pathname).not.toMatch(/%2f|%5c|%00/i);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("the return-target validator never throws and never leads off the site", () => {
  /** Where a browser goes with this Location, after stripping what browsers strip. */
  function landing(target: string): URL {
    return new URL(target.replace(/[\t\n\r]/g, ""), SITE);
  }

  it("safeReturnPath() takes any string and always yields a path on the site", () => {
    fc.assert(
      fc.property(fc.oneof(hostile(100), fc.webUrl(), fc.webPath(), fc.constant(undefined), fc.constant(null)), (input) => {
        const target = safeReturnPath(input, SITE);
        expect(target.startsWith("/")).toBe(true);
        expect(target).not.toMatch(/^\/[/\\]/);
        expect(target).not.toMatch(/[\\\t\n\r\u0000-\u001f\u007f]/);
        expect(landing(target).origin).toBe(SITE);
      }),
      { numRuns: 2000 },
    );
  });

  it("prefixing any input with the site's own slash does not help it off-site either", () => {
    fc.assert(
      fc.property(fc.constantFrom("/", "//", "/\\", "\\/", "/%2F", "/\t/", "https:", "/.."), hostile(60), (prefix, rest) => {
        const target = safeReturnPath(`${prefix}${rest}`, SITE);
        expect(landing(target).origin).toBe(SITE);
        expect(target).not.toMatch(/^\/[/\\]/);
      }),
      { numRuns: 2000 },
    );
  });

  it("an on-site path survives unchanged (the validator does not just return `/` for everything)", () => {
    fc.assert(
      fc.property(fc.webPath().filter((p) => p.startsWith("/") && !p.startsWith("//") && !/[\\\s]/.test(p)), (path) => {
        // Dot segments are resolved first; if that leaves `//host`, it is no path on the site.
        const resolved = new URL(path, SITE).pathname;
        expect(safeReturnPath(path, SITE)).toBe(resolved.startsWith("//") ? "/" : resolved);
      }),
      { numRuns: 300 },
    );
  });
});

it("fixtures: randomSecret gives distinct keys (the properties above do not share a key by accident)", () => {
  expect(randomSecret()).not.toBe(randomSecret());
});
