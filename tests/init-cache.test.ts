// The init cache (issue 17, cold start): a new database starts from a cached dump of an initialized one
// instead of running initdb. No server needed; each test has its own cache directory (OMINIPG_CACHE_DIR).
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { Ominipg } from "../src/index.js";
import { InitCache, cacheRoots } from "../src/local/init-cache.js";
import { tarEntries } from "../src/local/pgdata-tar.js";
import { pgliteTemplate, tempDir, unreachableUrl } from "./harness/index.js";
import { fixtureArgs, setEnv, type Env } from "./process-helpers.js";

const DIST = path.join(import.meta.dirname, "..", "dist", "index.js");

/** Point the cache at a new empty directory for the rest of the test. */
function freshCache(): string {
  const root = path.join(tempDir("ominipg-init-cache-"), "cache");
  const before = setEnv({ OMINIPG_CACHE_DIR: root, OMINIPG_INIT_CACHE: undefined });
  onTestFinished(() => void setEnv(before));
  return root;
}

interface EntryState {
  names: string[];
  dumpIno: number;
  dumpMtime: number;
  manifest: { key: string; size: number; sha256: string };
  dumpSha256: string;
}

/** What the cache root holds: its entry names, and the one entry's files. */
function entryState(root: string): EntryState {
  const names = fs.readdirSync(root).sort();
  const entry = path.join(root, names[0]!);
  const dump = path.join(entry, "pgdata.tar");
  const stat = fs.statSync(dump);
  return {
    names,
    dumpIno: stat.ino,
    dumpMtime: stat.mtimeMs,
    manifest: JSON.parse(fs.readFileSync(path.join(entry, "manifest.json"), "utf8")),
    dumpSha256: createHash("sha256").update(fs.readFileSync(dump)).digest("hex"),
  };
}

/** A copy of the entry in `root` with one byte of its dump flipped, in a new root beside it. */
function damagedCopy(root: string): { root: string; state: EntryState } {
  const copy = fs.mkdtempSync(`${root}-damaged-`);
  fs.chmodSync(copy, 0o700);
  const [name] = fs.readdirSync(root);
  fs.cpSync(path.join(root, name!), path.join(copy, name!), { recursive: true });
  const dump = path.join(copy, name!, "pgdata.tar");
  const bytes = fs.readFileSync(dump);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = bytes[middle]! ^ 0xff;
  fs.writeFileSync(dump, bytes);
  return { root: copy, state: entryState(copy) };
}

async function clientId(db: Ominipg): Promise<string> {
  const { rows } = await db.query<{ value: string }>(`SELECT value FROM _ominipg_meta WHERE key = 'client_id'`);
  return rows[0]!.value;
}

async function systemIdentifier(db: Ominipg): Promise<string> {
  const { rows } = await db.query<{ id: string }>(`SELECT system_identifier::text AS id FROM pg_control_system()`);
  return rows[0]!.id;
}

async function pool(db: Ominipg): Promise<string> {
  return (await db.query<{ v: string }>(`SELECT current_setting('shared_buffers') AS v`)).rows[0]!.v;
}

async function roundTrip(db: Ominipg, value: string): Promise<unknown[]> {
  await db.query(`CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)`);
  await db.query(`INSERT INTO t VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`, [value]);
  return (await db.query(`SELECT v FROM t`)).rows;
}

describe("the cache itself (no database)", () => {
  it("installs an entry whole, reads it back checked, and moves a damaged or partial one aside", async () => {
    const root = freshCache();
    const cache = InitCache.locate()!;
    expect(cache.root).toBe(root);
    expect(fs.statSync(root).mode & 0o777).toBe(0o700);
    expect(cache.read()).toBeUndefined();

    const dump = new Uint8Array(100_000).map((_, i) => i % 251);
    expect(await cache.write(dump)).toBe(true);
    expect(Buffer.from(cache.read()!)).toEqual(Buffer.from(dump));
    const first = entryState(root);
    expect(first.names).toEqual([cache.key]);
    expect(first.manifest).toMatchObject({ key: cache.key, size: dump.length, sha256: first.dumpSha256 });
    // A second writer finds the entry there: its own is dropped, the first stays as it was.
    expect(await cache.write(new Uint8Array(10))).toBe(false);
    expect(entryState(root)).toEqual(first);

    const damages: Record<string, (entry: string) => void> = {
      "a flipped byte": (entry) => {
        const file = path.join(entry, "pgdata.tar");
        const bytes = fs.readFileSync(file);
        bytes[50_000] = bytes[50_000]! ^ 0xff;
        fs.writeFileSync(file, bytes);
      },
      "a cut dump": (entry) => fs.truncateSync(path.join(entry, "pgdata.tar"), 4096),
      "no manifest (a partial entry)": (entry) => fs.rmSync(path.join(entry, "manifest.json")),
      "a cut manifest": (entry) => fs.truncateSync(path.join(entry, "manifest.json"), 20),
      "another key's manifest": (entry) => {
        const file = path.join(entry, "manifest.json");
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(cache.key, "pglite-0.0.0-000000000000"));
      },
    };
    for (const [what, damage] of Object.entries(damages)) {
      damage(cache.dir);
      expect(cache.read(), what).toBeUndefined();
      expect(fs.readdirSync(root), `${what}: moved aside and removed`).toEqual([]);
      expect(await cache.write(dump)).toBe(true);
    }
  });

  it("lives in the user's cache directory, or in the temp directory when the home cannot be written", () => {
    const uid = process.getuid!();
    expect(cacheRoots({ XDG_CACHE_HOME: "/x/cache", HOME: "/home/u" })).toEqual([
      "/x/cache/ominipg",
      path.join(os.tmpdir(), `ominipg-cache-${uid}`),
    ]);
    expect(cacheRoots({ HOME: "/home/u" })[0]).toBe("/home/u/.cache/ominipg");
    expect(cacheRoots({ OMINIPG_CACHE_DIR: "/somewhere", HOME: "/home/u" })).toEqual(["/somewhere"]);

    const tmp = tempDir("ominipg-init-tmp-");
    const before = setEnv({ TMPDIR: tmp });
    try {
      const home = path.join(tmp, "home");
      fs.writeFileSync(home, "a file, not a directory: nothing can be made under it");
      const cache = InitCache.locate({ HOME: home })!;
      expect(cache.root).toBe(path.join(tmp, `ominipg-cache-${uid}`));
      // A root others may write is never used: they could plant a database there.
      fs.chmodSync(cache.root, 0o777);
      expect(InitCache.locate({ HOME: home })).toBeUndefined();
    } finally {
      setEnv(before);
    }
  });
});

describe("new databases from the cache", () => {
  let root: string;
  let before: Env;
  let work: string;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "ominipg-init-shared-"));
    root = path.join(work, "cache");
    before = setEnv({ OMINIPG_CACHE_DIR: root, OMINIPG_INIT_CACHE: undefined });
  });
  afterAll(() => {
    setEnv(before);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("the first new database stores the template; later ones, in memory or in a directory, reuse it untouched", async () => {
    const first = await Ominipg.connect({ url: ":memory:" });
    expect(await roundTrip(first, "first")).toEqual([{ v: "first" }]);
    await first.close();
    const made = entryState(root);
    expect(made.names).toHaveLength(1);
    expect(made.manifest.sha256).toBe(made.dumpSha256);
    const stored = fs.readFileSync(path.join(root, made.names[0]!, "pgdata.tar"));
    const entries = tarEntries(stored);
    expect(entries.length).toBeGreaterThan(100);
    // The WAL moved to a new segment before the dump: stored without its zeros, read back whole.
    const segments = entries.filter((e) => /^pg_wal\/[0-9A-F]{24}$/.test(e.name));
    expect(segments.map((e) => [e.data.length < 1024 * 1024, e.size])).toEqual([[true, 16 * 1024 * 1024]]);
    expect(stored.length).toBeLessThan(30 * 1024 * 1024);

    const memory = await Ominipg.connect({ url: ":memory:" });
    expect(await roundTrip(memory, "memory")).toEqual([{ v: "memory" }]);
    expect(await pool(memory)).toBe("32MB");
    await memory.close();
    const dir = path.join(work, "db");
    const disk = await Ominipg.connect({ url: dir });
    expect(await roundTrip(disk, "directory")).toEqual([{ v: "directory" }]);
    await disk.close();
    expect(fs.existsSync(path.join(dir, "postmaster.pid"))).toBe(false);
    expect(fs.statSync(path.join(dir, "pg_wal", segments[0]!.name.slice("pg_wal/".length))).size).toBe(
      16 * 1024 * 1024,
    );
    const again = await Ominipg.connect({ url: dir });
    expect((await again.query(`SELECT v FROM t`)).rows).toEqual([{ v: "directory" }]);
    expect(await pool(again)).toBe("32MB"); // in its postgresql.conf: ALTER SYSTEM still wins
    await again.query(`ALTER SYSTEM SET shared_buffers = '24MB'`);
    await again.close();
    const altered = await Ominipg.connect({ url: dir });
    expect(await pool(altered)).toBe("24MB");
    await altered.close();

    expect(entryState(root)).toEqual(made); // read, not rewritten; nothing left beside it
  });

  it("two databases made from the one template mint different client ids", async () => {
    const ids: string[] = [];
    const systems: string[] = [];
    for (const url of [":memory:", ":memory:", path.join(work, "a"), path.join(work, "b")]) {
      const db = await Ominipg.connect({ url, syncUrl: unreachableUrl() });
      ids.push(await clientId(db));
      systems.push(await systemIdentifier(db));
      await db.close();
    }
    expect(new Set(ids).size).toBe(4);
    // They are copies of one template: PostgreSQL's own identifier (set by initdb) is the same in all four.
    expect(new Set(systems).size).toBe(1);
    expect(fs.readdirSync(root)).toHaveLength(1);
  });

  it("is the same database as one made by initdb (every setting equal); initCache: false and a loadDataDir of the caller's leave the cache alone", async () => {
    // A damaged entry in the cache: consulted, it would be moved aside and made again.
    const damaged = damagedCopy(root);
    const settings = `SELECT name, setting FROM pg_settings
      WHERE name NOT IN ('data_directory', 'config_file', 'hba_file', 'ident_file') ORDER BY name`;
    const fromCache = await Ominipg.connect({ url: ":memory:" });
    const expected = (await fromCache.query(settings)).rows;
    expect(await pool(fromCache)).toBe("32MB");
    // Only the database PGlite opens: initdb's template0 and template1 are left out; a new database names its
    // template.
    const databases = `SELECT datname FROM pg_database ORDER BY datname`;
    expect((await fromCache.query(databases)).rows).toEqual([{ datname: "postgres" }]);
    await fromCache.query(`CREATE DATABASE other TEMPLATE postgres`);
    expect((await fromCache.query(databases)).rows).toEqual([{ datname: "other" }, { datname: "postgres" }]);
    const templateSystem = await systemIdentifier(fromCache);
    await fromCache.close();

    const cacheBefore = setEnv({ OMINIPG_CACHE_DIR: damaged.root });
    try {
      // initdb writes a 128MB pool in postgresql.conf, the template 32MB (and PostgreSQL sizes a few other
      // buffers from it): started with the same pool, every setting is equal.
      const initdb = await Ominipg.connect({ url: ":memory:", initCache: false, sharedBuffers: "32MB" });
      expect((await initdb.query(settings)).rows).toEqual(expected);
      expect(await systemIdentifier(initdb)).not.toBe(templateSystem); // initdb ran: not a copy
      expect(await roundTrip(initdb, "initdb")).toEqual([{ v: "initdb" }]);
      await initdb.close();
      const loaded = await Ominipg.connect({ url: path.join(work, "loaded"), loadDataDir: await pgliteTemplate() });
      expect(await roundTrip(loaded, "loaded")).toEqual([{ v: "loaded" }]);
      await loaded.close();
    } finally {
      setEnv(cacheBefore);
    }
    expect(entryState(damaged.root)).toEqual(damaged.state);
    await expect(Ominipg.connect({ url: ":memory:", initCache: "no" as never })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: "initCache must be true or false",
    });
  });

  it("a damaged template is never used: it is made again", async () => {
    const damaged = damagedCopy(root);
    const cacheBefore = setEnv({ OMINIPG_CACHE_DIR: damaged.root });
    try {
      const db = await Ominipg.connect({ url: ":memory:" });
      expect(await roundTrip(db, "after")).toEqual([{ v: "after" }]);
      await db.close();
    } finally {
      setEnv(cacheBefore);
    }
    const remade = entryState(damaged.root);
    expect(remade.names).toEqual(damaged.state.names);
    expect(remade.dumpSha256).not.toBe(damaged.state.dumpSha256);
    expect(remade.manifest.sha256).toBe(remade.dumpSha256);
  });
});

describe("several processes", () => {
  it("making the template at once all succeed and leave one valid entry; OMINIPG_INIT_CACHE=0 leaves it alone", async () => {
    if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: build first (npm run build)`);
    const root = freshCache();
    const work = tempDir("ominipg-init-procs-");
    const untouched = path.join(work, "untouched-cache");
    const children: { url: string; env: Env }[] = [
      { url: ":memory:", env: {} },
      { url: path.join(work, "dir"), env: {} },
      { url: ":memory:", env: { OMINIPG_INIT_CACHE: "0", OMINIPG_CACHE_DIR: untouched } },
    ];
    const runs = await Promise.all(
      children.map(
        ({ url, env }) =>
          new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
            const options = { env: { ...process.env, ...env }, timeout: 90_000 };
            execFile(process.execPath, fixtureArgs("new-database.mjs", url), options, (err, stdout, stderr) =>
              resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
            );
          }),
      ),
    );
    runs.forEach((run, i) => {
      const { url } = children[i]!;
      expect(run.stderr, url).toBe("");
      expect(run.code, url).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual([{ v: url }]);
    });
    const state = entryState(root);
    expect(state.names).toHaveLength(1); // one entry, no temporary directory left behind
    expect(state.manifest.sha256).toBe(state.dumpSha256);
    expect(InitCache.locate()!.read()).toBeDefined();
    expect(fs.existsSync(untouched)).toBe(false);
  }, 120_000);
});

describe("a new directory made without the init cache", () => {
  // initdb (the cache off) or a loadDataDir's files: made in memory and written out with PG_VERSION last, so a
  // process killed as soon as PG_VERSION shows leaves a directory that opens (or none: then it is made anew).
  for (const how of ["initCache off", "loadDataDir"] as const) {
    it(`${how}: killed while it is made, the directory opens again`, async () => {
      if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: build first (npm run build)`);
      const work = tempDir("ominipg-init-kill-");
      const dump = path.join(work, "dump.tar");
      if (how === "loadDataDir") fs.writeFileSync(dump, Buffer.from(await (await pgliteTemplate()).arrayBuffer()));
      for (let attempt = 0; attempt < 2; attempt++) {
        const dir = path.join(work, `db-${attempt}`);
        const args =
          how === "loadDataDir" ? fixtureArgs("new-database.mjs", dir, dump) : fixtureArgs("new-database.mjs", dir);
        const env = { ...process.env, ...(how === "initCache off" ? { OMINIPG_INIT_CACHE: "0" } : {}) };
        const child = spawn(process.execPath, args, { stdio: "ignore", env });
        const exited = new Promise((resolve) => child.on("exit", resolve));
        await new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            if (fs.existsSync(path.join(dir, "PG_VERSION")) || child.exitCode !== null) {
              clearInterval(poll);
              resolve();
            }
          }, 1);
        });
        child.kill("SIGKILL");
        await exited;
        const db = await Ominipg.connect({ url: dir, initCache: false });
        expect((await db.query(`SELECT 1 AS one`)).rows, dir).toEqual([{ one: 1 }]);
        await db.close();
      }
    }, 120_000);
  }
});
