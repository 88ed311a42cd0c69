/**
 * `npm run sessions` without wrangler: which sessions each selector finds in a listing of SESSIONS,
 * what the table shows of them, and the refusal of a bad command line, which comes before any
 * wrangler is started. The listings are shaped as docs/storage-schema.md says the gate writes its
 * keys; ops-sessions.test.ts shows the command on a real gate's keys, through wrangler dev's state.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../tools/lib/wrangler-files.mjs";
import { emailHash, findSessions, formatSessions, retryWhileBusy, runSessions, tombstones, USAGE, UsageError, userHash } from "../../tools/sessions/sessions.mjs";

const run = promisify(execFile);
const NOW = 1_780_000_000;
const DEMO_SUB = "6f1c2a9e-4b7d-4e0a-9c1f-2d3b4a5c6e7f";
const OTHER_SUB = "b2e4d6f8-1a3c-4e5f-8a7b-9c0d1e2f3a4b";

interface Listed {
  name: string;
  metadata?: unknown;
}

/**
 * The keys of one session as `wrangler kv key list` lists them: the record (metadata `w`, its last
 * write), the user index entry and, when the provider gave a `sid`, its index entry.
 */
function sessionKeys(sid: string, sub: string, entry: { iat: number; host: string; email?: string; ph?: string; w?: number }): Listed[] {
  const user = userHash(sub);
  const { iat, host, email, ph, w } = entry;
  return [
    { name: `session:${sid}`, ...(w === undefined ? {} : { metadata: { w } }) },
    { name: `user:${user}:${sid}`, metadata: { v: 1, iat, exp: iat + 3600, host, ...(email === undefined ? {} : { eh: emailHash(email) }), ...(ph === undefined ? {} : { ph }) } },
    ...(ph === undefined ? [] : [{ name: `psid:${ph}:${sid}`, metadata: { u: user } }]),
  ];
}

const SID = { newer: "a".repeat(43), older: "b".repeat(43), other: "c".repeat(43), ended: "d".repeat(43), future: "e".repeat(43) };
const PH = "f".repeat(32);
const LISTING: Listed[] = [
  ...sessionKeys(SID.newer, DEMO_SUB, { iat: NOW - 100, host: "a.example", email: "demo@example.ru", ph: PH, w: NOW - 10 }),
  ...sessionKeys(SID.older, DEMO_SUB, { iat: NOW - 200, host: "b.example" }),
  ...sessionKeys(SID.other, OTHER_SUB, { iat: NOW - 150, host: "a.example", email: "petrov@example.ru", w: NOW - 20 }),
  // An index entry whose record is gone: a session that ended already (logout, expiry).
  { name: `user:${userHash(DEMO_SUB)}:${SID.ended}`, metadata: { v: 1, iat: NOW - 50, exp: NOW + 3550, host: "a.example" } },
  // An entry of a version this tool does not know, beside its record: never guessed at.
  { name: `session:${SID.future}`, metadata: { w: NOW } },
  { name: `user:${userHash(DEMO_SUB)}:${SID.future}`, metadata: { v: 2, iat: NOW - 60, exp: NOW + 3540, host: "a.example" } },
  // What else lives in the namespace.
  { name: `tombstone:${SID.ended}` },
  { name: `jti:${"0".repeat(64)}` },
];

describe("npm run sessions: the hashes it selects by", () => {
  it("the user hash is the gate's (16 hex digits of SHA-256 of sub, as src/common/log.ts's test pins it)", () => {
    expect(userHash("abc")).toBe("ba7816bf8f01cfea");
  });

  it("the e-mail hash is of the trimmed, lowercased address (printf %s demo@example.ru | sha256sum | cut -c1-16)", () => {
    expect(emailHash("demo@example.ru")).toBe("aa695f3c87907c35");
    expect(emailHash("  Demo@EXAMPLE.ru ")).toBe("aa695f3c87907c35");
  });
});

describe("npm run sessions: what a listing gives each selector", () => {
  it("--sub: that user's live sessions, oldest first, each with every key it has", () => {
    expect(findSessions({ sub: DEMO_SUB }, LISTING)).toEqual([
      { sid: SID.older, user: userHash(DEMO_SUB), host: "b.example", iat: NOW - 200, exp: NOW + 3400, lastWrite: undefined, keys: [`session:${SID.older}`, `user:${userHash(DEMO_SUB)}:${SID.older}`] },
      {
        sid: SID.newer,
        user: userHash(DEMO_SUB),
        host: "a.example",
        iat: NOW - 100,
        exp: NOW + 3500,
        lastWrite: NOW - 10,
        keys: [`session:${SID.newer}`, `user:${userHash(DEMO_SUB)}:${SID.newer}`, `psid:${PH}:${SID.newer}`],
      },
    ]);
  });

  it("--email: the address in any case and spacing; a session indexed without an address never matches", () => {
    expect(findSessions({ email: " DEMO@Example.RU " }, LISTING).map((s) => s.sid)).toEqual([SID.newer]);
    expect(findSessions({ email: "petrov@example.ru" }, LISTING).map((s) => s.sid)).toEqual([SID.other]);
    expect(findSessions({ email: "nobody@example.ru" }, LISTING)).toEqual([]);
  });

  it("--all: every live session, oldest first", () => {
    expect(findSessions({}, LISTING).map((s) => s.sid)).toEqual([SID.older, SID.other, SID.newer]);
  });

  it("an empty namespace has no sessions", () => {
    expect(findSessions({}, [])).toEqual([]);
  });
});

describe("npm run sessions: revoke leaves a tombstone for each session it ends", () => {
  it("one `tombstone:<sid>` per session record, the epoch second as the value, living as long as the gate's own", () => {
    // The gate's TOMBSTONE_TTL as written in its source (this Node-side test cannot import the
    // Worker's modules), so the tool's copy cannot drift from it unnoticed.
    const store = readFileSync(join(repoRoot, "src/session/store.ts"), "utf8");
    const TOMBSTONE_TTL = Number(/^export const TOMBSTONE_TTL = (\d+);$/m.exec(store)?.[1]);
    expect(TOMBSTONE_TTL).toBeGreaterThan(0);
    const keys = findSessions({ sub: DEMO_SUB }, LISTING).flatMap((session) => session.keys);
    expect(tombstones(keys, NOW)).toEqual([
      { key: `tombstone:${SID.older}`, value: String(NOW), expiration_ttl: TOMBSTONE_TTL },
      { key: `tombstone:${SID.newer}`, value: String(NOW), expiration_ttl: TOMBSTONE_TTL },
    ]);
  });
});

describe("npm run sessions: local state that wrangler dev holds for a moment", () => {
  const busy = () => new Error("wrangler kv bulk delete failed (exit 1):\n… SQLite failed; NOSENTRY database is locked: SQLITE_BUSY");
  /** A wrangler run that fails `failures` times with `error()`, then answers "done". */
  const flaky = (failures: number, error: () => Error) => {
    let calls = 0;
    const run = async () => {
      calls += 1;
      if (calls <= failures) throw error();
      return "done";
    };
    return { run, calls: () => calls };
  };

  it("a busy database is tried again, with growing pauses, until the command goes through", async () => {
    const command = flaky(2, busy);
    expect(await retryWhileBusy(command.run, { delayMs: 1 })).toBe("done");
    expect(command.calls()).toBe(3);
  });

  it("gives up after the last attempt with wrangler's own message", async () => {
    const command = flaky(10, busy);
    await expect(retryWhileBusy(command.run, { attempts: 3, delayMs: 1 })).rejects.toThrow(/SQLITE_BUSY/);
    expect(command.calls()).toBe(3);
  });

  it("any other failure is not retried", async () => {
    const command = flaky(1, () => new Error("wrangler kv bulk put failed (exit 1):\nno namespace bound to SESSIONS"));
    await expect(retryWhileBusy(command.run, { delayMs: 1 })).rejects.toThrow(/no namespace/);
    expect(command.calls()).toBe(1);
  });
});

describe("npm run sessions: the table", () => {
  it("shows the user hash, the session id's first 8 characters, host and times — nothing else", () => {
    const table = formatSessions(findSessions({}, LISTING));
    const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
    expect(table.split("\n")).toEqual([
      "user              session   host       started               last check            expires",
      `${userHash(DEMO_SUB)}  bbbbbbbb  b.example  ${iso(NOW - 200)}  -                     ${iso(NOW + 3400)}`,
      `${userHash(OTHER_SUB)}  cccccccc  a.example  ${iso(NOW - 150)}  ${iso(NOW - 20)}  ${iso(NOW + 3450)}`,
      `${userHash(DEMO_SUB)}  aaaaaaaa  a.example  ${iso(NOW - 100)}  ${iso(NOW - 10)}  ${iso(NOW + 3500)}`,
    ]);
  });
});

describe("npm run sessions: a bad command line is refused before wrangler is started", () => {
  /** A wrangler configuration that does not exist: wrangler, had it been started, would fail on it (exit 1). */
  const NO_CONFIG = ["--config", "/nonexistent/kontur-gate/wrangler.toml"];

  it("exits 2 with the reason and the usage", async () => {
    const refused = await run(process.execPath, ["tools/sessions/sessions.mjs", "revoke", ...NO_CONFIG], { cwd: repoRoot, timeout: 30_000 }).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(refused?.code).toBe(2);
    expect(refused?.stderr).toContain("exactly one of --email, --sub, --all");
    expect(refused?.stderr).toContain(USAGE);
  });

  it.each([
    ["no selector", ["revoke"]],
    ["two selectors", ["list", "--sub", DEMO_SUB, "--all"]],
    ["an unknown command", ["delete", "--all"]],
    ["no command", ["--all"]],
    ["two commands", ["list", "revoke", "--all"]],
  ])("%s", async (_name, argv) => {
    // Had wrangler been started first, its refusal of the missing configuration would come instead.
    await expect(runSessions([...argv, ...NO_CONFIG])).rejects.toThrow(UsageError);
  });

  it("--help prints the usage without starting anything", async () => {
    expect(await runSessions(["--help"])).toBe(USAGE);
  });
});
