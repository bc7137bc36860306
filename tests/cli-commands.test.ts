import { execFile } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { cp } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, tempDir, unreachableUrl, type TestDatabase } from "./harness/index.js";

const CLI = path.join(import.meta.dirname, "..", "dist", "cli", "main.js");
const SCHEMA = `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text NOT NULL)`;
const PASSWORD = "Sup3r-Secret-pw";

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would (npm test builds it first). */
function cli(...args: string[]): Promise<CliRun> {
  const env = { ...process.env };
  delete env["OMINIPG_REMOTE_URL"];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number")
        return reject(new Error(`ominipg ${args.join(" ")}: ${err.message}\n${stderr}`));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

let remote: TestDatabase;
let workDir: string;
/** A closed data directory with three captured, unsynced inserts into items; copied per test. */
let pristine: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.build.json)`);
  remote = await createTestDatabase();
  await remote.sql.unsafe(SCHEMA);
  workDir = tempDir("ominipg-cli-");
  pristine = path.join(workDir, "pristine");
  const db = await Ominipg.connect({
    url: pristine,
    syncUrl: remote.url,
    schemaSQL: [SCHEMA],
  });
  await db.query(`INSERT INTO items VALUES (1, 'one'), (2, 'two')`);
  await db.query(`INSERT INTO items VALUES (3, 'three')`);
  await db.close();
});

afterAll(async () => {
  await remote?.drop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

let copies = 0;
async function dataDir(): Promise<string> {
  const dir = path.join(workDir, `copy-${++copies}`);
  await cp(pristine, dir, { recursive: true });
  return dir;
}

// Each test has its own data directory; running them side by side keeps the file fast.
describe.concurrent("ominipg CLI", () => {
  it("prints help with exit code 0, at top level and for every command", async ({ expect }) => {
    const top = await cli("--help");
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Usage: ominipg <command>/);
    const commands = ["status", "sync", "pull", "verify", "demo"];
    const runs = await Promise.all(commands.map((command) => cli(command, "--help")));
    runs.forEach((run, i) => {
      expect(run.code, commands[i]).toBe(0);
      expect(run.stdout).toContain(`Usage: ominipg ${commands[i]}`);
    });
  });

  it("reports a usage error in one line with exit code 2", async ({ expect }) => {
    const missing = await cli("sync");
    expect(missing.code).toBe(2);
    expect(lines(missing.stderr)).toEqual([
      expect.stringMatching(/^ominipg: missing the data directory argument <dir> \(see ominipg sync --help\)$/),
    ]);
    expect(missing.stdout).toBe("");
    const unknown = await cli("frobnicate");
    expect(unknown.code).toBe(2);
    expect(lines(unknown.stderr)).toEqual(['ominipg: unknown command "frobnicate" (see ominipg --help)']);
    const badBatch = await cli("sync", "dir", "--remote", remote.url, "--batch-size", "lots");
    expect(badBatch.code).toBe(2);
    expect(lines(badBatch.stderr)).toHaveLength(1);
    const badConflicts = await cli("sync", "dir", "--remote", remote.url, "--conflicts", "sometimes");
    expect(badConflicts.code).toBe(2);
    expect(lines(badConflicts.stderr)).toEqual([
      expect.stringContaining('--conflicts must be one of overwrite, remote-wins, merge, got "sometimes"'),
    ]);
  });

  it("status with a remote on a directory never opened with one: asks the remote, leaves the directory local", async ({
    expect,
  }) => {
    const dir = path.join(workDir, "local-only");
    const db = await Ominipg.connect({ url: dir, schemaSQL: [SCHEMA] });
    await db.query(`INSERT INTO items VALUES (7, 'local')`);
    await db.close();
    const run = await cli("status", dir, "--remote", remote.url);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/client id\s+none \(never opened with a remote/);
    expect(run.stdout).toMatch(/remote\s+postgres:\/\/.*\(reachable\)/);
    expect(run.stdout).toMatch(/on server\s+0 ledger rows of this client/);
    // Asked, even without a client id of its own.
    const down = await cli("status", dir, "--remote", unreachableUrl());
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/remote\s+postgres:\/\/.*\(unreachable\)/);
    // Still a local-only database: no sync tables, no client id.
    expect((await cli("status", dir)).stdout).toMatch(/client id\s+none \(never opened with a remote/);
    const again = await Ominipg.connect({ url: dir });
    try {
      const { rows } = await again.query<{ t: string | null }>(`SELECT to_regclass('public._sync_queue')::text AS t`);
      expect(rows).toEqual([{ t: null }]);
    } finally {
      await again.close();
    }
  });

  it("status, sync and verify a data directory", async ({ expect }) => {
    const dir = await dataDir();
    const before = await cli("status", dir);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/pending\s+3 changes/);
    expect(before.stdout).toMatch(/public\.items\s+priority 0\s+3 changes/);
    expect(before.stdout).toMatch(/last sync\s+never/);

    const synced = await cli("sync", dir, "--remote", remote.url, "--batch-size", "2");
    expect(synced.stderr).toBe("");
    expect(synced.code).toBe(0);
    expect(synced.stdout).toMatch(/^progress 0\/3 changes \(0%\)$/m);
    expect(synced.stdout).toMatch(/^progress 3\/3 changes \(100%\)$/m);
    expect(synced.stdout).toMatch(/pushed 3 changes/);
    expect(await remote.sql`SELECT id, name FROM items ORDER BY id`).toEqual([
      { id: 1, name: "one" },
      { id: 2, name: "two" },
      { id: 3, name: "three" },
    ]);

    const after = await cli("status", dir, "--remote", remote.url);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/pending\s+0 changes/);
    expect(after.stdout).toMatch(/last sync\s+\d{4}-\d\d-\d\dT.*3 changes pushed/);
    expect(after.stdout).toMatch(/remote\s+postgres:\/\/.*\(reachable\)/);
    expect(after.stdout).toMatch(/on server\s+0 ledger rows of this client/);

    const equal = await cli("verify", dir, "--remote", remote.url);
    expect(equal.code).toBe(0);
    expect(equal.stdout).toMatch(/public\.items\s+ok\s+3 rows/);

    await remote.sql`INSERT INTO items VALUES (100, 'remote only')`;
    const differ = await cli("verify", dir, "--remote", remote.url);
    expect(differ.code).toBe(1);
    expect(differ.stdout).toMatch(/public\.items\s+DIFFERS\s+3 local rows, 4 remote rows/);
    expect(differ.stdout).toContain("only remote: 1 row, keys [100]");
    await remote.sql`DELETE FROM items WHERE id = 100`;
  });

  it("pull brings remote changes into a directory", async ({ expect }) => {
    // Its own remote: the other tests run side by side on the shared one.
    const own = await createTestDatabase();
    try {
      const dir = path.join(workDir, "pull");
      const db = await Ominipg.connect({
        url: dir,
        syncUrl: own.url,
        schemaSQL: [SCHEMA],
      });
      await db.query(`INSERT INTO items VALUES (1, 'one')`);
      await db.sync();
      await db.close();
      await own.sql`INSERT INTO items VALUES (200, 'from the server')`;
      await own.sql`UPDATE items SET name = 'renamed' WHERE id = 1`;
      const pulled = await cli("pull", dir, "--remote", own.url);
      expect(pulled.stderr).toBe("");
      expect(pulled.code).toBe(0);
      expect(pulled.stdout).toMatch(/public\.items\s+\w+\s+2 written, 0 deleted, 0 held/);
      const again = await Ominipg.connect({ url: dir });
      expect((await again.query(`SELECT id, name FROM items ORDER BY id`)).rows).toEqual([
        { id: 1, name: "renamed" },
        { id: 200, name: "from the server" },
      ]);
      await again.close();

      // A local change the remote changed too: `sync --conflicts remote-wins` keeps the remote's and says so.
      const local = await Ominipg.connect({ url: dir, syncUrl: own.url, schemaSQL: [SCHEMA] });
      await local.query(`UPDATE items SET name = 'local' WHERE id = 200`);
      await local.close();
      await own.sql`UPDATE items SET name = 'remote' WHERE id = 200`;
      const settled = await cli("sync", dir, "--remote", own.url, "--conflicts", "remote-wins");
      expect(settled.stderr).toBe("");
      expect(settled.code).toBe(0);
      expect(settled.stdout).toContain("1 conflict with remote changes, settled and recorded in _ominipg_conflicts");
      expect(await own.sql`SELECT name FROM items WHERE id = 200`).toEqual([{ name: "remote" }]);
    } finally {
      await own.drop();
    }
  });

  it("sync and pull keep to what the app syncs: a table the app excludes is neither pushed nor pulled", async ({
    expect,
  }) => {
    const own = await createTestDatabase();
    try {
      const scratch = `CREATE TABLE IF NOT EXISTS scratch (id int PRIMARY KEY, v text)`;
      await own.sql.unsafe(`${SCHEMA}; ${scratch}`).simple();
      await own.sql`INSERT INTO scratch VALUES (1, 'remote copy')`;
      const dir = path.join(workDir, "scoped");
      const db = await Ominipg.connect({
        url: dir,
        syncUrl: own.url,
        schemaSQL: [SCHEMA, scratch],
        sync: { exclude: ["scratch"] },
      });
      await db.query(`INSERT INTO scratch VALUES (1, 'local only'), (2, 'local only')`);
      await db.query(`INSERT INTO items VALUES (7, 'seven')`);
      await db.close();

      const synced = await cli("sync", dir, "--remote", own.url);
      expect(synced.stderr).toBe("");
      expect(synced.code).toBe(0);
      const pulled = await cli("pull", dir, "--remote", own.url);
      expect(pulled.stderr).toBe("");
      expect(pulled.code).toBe(0);
      expect(pulled.stdout).not.toContain("scratch");
      expect(await own.sql`SELECT id, name FROM items`).toEqual([{ id: 7, name: "seven" }]);
      expect(await own.sql`SELECT id, v FROM scratch`).toEqual([{ id: 1, v: "remote copy" }]);
      const after = await Ominipg.connect({ url: dir });
      expect((await after.query(`SELECT id, v FROM scratch ORDER BY id`)).rows).toEqual([
        { id: 1, v: "local only" },
        { id: 2, v: "local only" },
      ]);
      await after.close();
    } finally {
      await own.drop();
    }
  });

  it("reports an unreachable remote in one line, exit code 1, without the password", async ({ expect }) => {
    const url = new URL(unreachableUrl());
    url.password = PASSWORD;
    const argsList = [
      ["sync", "--remote", url.href],
      ["status", "--remote", url.href],
      ["sync", "--remote", url.href, "--verbose"],
    ];
    const runs = await Promise.all(argsList.map(async (args) => cli(...args, await dataDir())));
    runs.forEach((run, i) => {
      const args = argsList[i]!;
      expect(run.code, args.join(" ")).toBe(1);
      expect(run.stdout + run.stderr).not.toContain(PASSWORD);
      if (!args.includes("--verbose"))
        expect(lines(run.stderr)).toEqual([expect.stringMatching(/^ominipg: .*(ECONNREFUSED|unreachable)/)]);
    });
  });

  it("refuses a directory held by a running app, naming the holder", async ({ expect }) => {
    const dir = await dataDir();
    const app = await Ominipg.connect({ url: dir });
    try {
      const run = await cli("status", dir);
      expect(run.code).toBe(1);
      expect(lines(run.stderr)).toEqual([
        expect.stringMatching(new RegExp(`^ominipg: the data directory .* is in use by process ${process.pid}`)),
      ]);
    } finally {
      await app.close();
    }
    const missing = await cli("status", path.join(workDir, "nope"));
    expect(missing.code).toBe(1);
    expect(lines(missing.stderr)).toEqual([expect.stringMatching(/^ominipg: no such directory: /)]);
  });
});
