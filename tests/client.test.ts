import { PGlite } from "@electric-sql/pglite";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConfigError,
  LocalDatabaseError,
  Ominipg,
  OminipgError,
  SchemaError,
  SyncError,
  ClosedError,
} from "../src/index.js";
import type { Driver } from "../src/core/driver.js";
import { createTestDatabase, pgliteTemplate, tempDir, unreachableUrl, type TestDatabase } from "./harness/index.js";
import { fixtureArgs } from "./process-helpers.js";

function memoryDb(extra: Parameters<typeof Ominipg.connect>[0] = {}) {
  return Ominipg.connect(extra);
}

describe("query()", () => {
  it("returns rows, rowCount and fields with PostgreSQL's types", async () => {
    const db = await memoryDb();
    await db.query(
      `CREATE TABLE t (id int8 PRIMARY KEY, j jsonb, ts timestamptz, b bytea, n numeric, big int8, arr int[], u uuid)`,
    );
    const ins = await db.query(
      `INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
      [
        1,
        { a: [1, "x"] },
        new Date("2024-01-02T03:04:05.678Z"),
        new Uint8Array([0, 255]),
        "12345678901234567890.5",
        "9007199254740993",
        [1, 2],
        "2f1c5b36-2d1d-4f5e-9a0e-1b2c3d4e5f60",
      ],
    );
    expect(ins).toMatchObject({ rows: [], rowCount: 2, fields: [], command: "INSERT" });
    const { rows, rowCount, fields } = await db.query(`SELECT * FROM t ORDER BY id`);
    expect(rowCount).toBe(2);
    expect(fields.map((f) => f.name)).toEqual(["id", "j", "ts", "b", "n", "big", "arr", "u"]);
    expect(rows[0]).toEqual({
      id: 1,
      j: { a: [1, "x"] },
      ts: new Date("2024-01-02T03:04:05.678Z"),
      b: new Uint8Array([0, 255]),
      n: "12345678901234567890.5",
      big: 9007199254740993n, // int8: a number while exact, a bigint beyond 2^53
      arr: [1, 2],
      u: "2f1c5b36-2d1d-4f5e-9a0e-1b2c3d4e5f60",
    });
    expect(rows[1]).toMatchObject({ id: 2, j: null, b: null });
    await db.close();
  });

  it("runs a multi-statement script and returns the last statement's result", async () => {
    const db = await memoryDb();
    const r = await db.query(`CREATE TABLE s (x int); INSERT INTO s VALUES (1), (2); SELECT sum(x) AS total FROM s`);
    expect(r.rows).toEqual([{ total: 3 }]);
    await db.close();
  });

  it("passes PostgreSQL errors through with code, message, detail and position", async () => {
    const db = await memoryDb();
    await db.query(`CREATE TABLE e (id int PRIMARY KEY)`);
    await db.query(`INSERT INTO e VALUES (1)`);
    const dup = await db.query(`INSERT INTO e VALUES ($1)`, [1]).catch((e) => e);
    expect(dup).toMatchObject({ code: "23505", detail: "Key (id)=(1) already exists." });
    expect(dup.message).toMatch(/duplicate key value violates unique constraint "e_pkey"/);
    const syntax = await db.query(`SELEC 1`).catch((e) => e);
    expect(syntax).toMatchObject({ code: "42601", position: "1" });
    const missing = await db.query(`SELECT nope FROM e`).catch((e) => e);
    expect(missing).toMatchObject({ code: "42703", position: "8" });
    const params = await db.query(`SELECT $1::int + $2::int`, [1]).catch((e) => e);
    expect(params.code).toBe("08P01");
    expect(params).not.toBeInstanceOf(OminipgError);
    await db.close();
  });

  it('returns rows as arrays with rowMode: "array", keeping same-named columns apart', async () => {
    const db = await memoryDb({ syncUrl: unreachableUrl(), sync: { retry: { attempts: 1 } } });
    db.on("error", () => {});
    await db.query(`CREATE TABLE r (id int PRIMARY KEY, v text)`);
    const ins = await db.query(`INSERT INTO r VALUES (1, 'a') RETURNING id, v AS id`, [], { rowMode: "array" });
    expect(ins.rows).toEqual([[1, "a"]]);
    expect(ins.fields.map((f) => f.name)).toEqual(["id", "id"]);
    const sel = await db.query(`SELECT 1 AS x, 2 AS x`, [], { rowMode: "array" });
    expect(sel.rows).toEqual([[1, 2]]);
    const script = await db.query(`SELECT 0; SELECT id, v FROM r`, [], { rowMode: "array" });
    expect(script.rows).toEqual([[1, "a"]]);
    await db.close();
  });

  it("rejects bad arguments with a typed error", async () => {
    const db = await memoryDb();
    await expect(db.query(42 as unknown as string)).rejects.toBeInstanceOf(ConfigError);
    await expect(db.query("SELECT 1", "x" as unknown as unknown[])).rejects.toBeInstanceOf(ConfigError);
    await db.close();
  });
});

describe("transactions", () => {
  it("transaction() commits, rolls back on throw and returns the callback's value", async () => {
    const db = await memoryDb();
    await db.query(`CREATE TABLE a (id int PRIMARY KEY)`);
    const value = await db.transaction(async (tx) => {
      await tx.query(`INSERT INTO a VALUES (1)`);
      return "done";
    });
    expect(value).toBe("done");
    await expect(
      db.transaction(async (tx) => {
        await tx.query(`INSERT INTO a VALUES (2)`);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect((await db.query(`SELECT id FROM a ORDER BY id`)).rows).toEqual([{ id: 1 }]);
    await db.close();
  });

  it("keeps queries from other async contexts out of an open transaction()", async () => {
    const db = await memoryDb();
    await db.query(`CREATE TABLE a (id int PRIMARY KEY)`);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (t) => {
      await t.query(`INSERT INTO a VALUES (1)`);
      await gate;
      throw new Error("rollback");
    });
    const outside = db.query(`INSERT INTO a VALUES (2)`);
    release();
    await expect(tx).rejects.toThrow("rollback");
    await outside;
    expect((await db.query(`SELECT id FROM a`)).rows).toEqual([{ id: 2 }]);
    await db.close();
  });

  it("db.query() inside the callback joins the transaction", async () => {
    const db = await memoryDb();
    await db.query(`CREATE TABLE a (id int PRIMARY KEY)`);
    await expect(
      db.transaction(async () => {
        await db.query(`INSERT INTO a VALUES (1)`);
        throw new Error("undo");
      }),
    ).rejects.toThrow("undo");
    expect((await db.query(`SELECT count(*)::int AS n FROM a`)).rows[0]).toEqual({ n: 0 });
    await db.close();
  });

  it("reports a commit of an aborted transaction", async () => {
    const db = await memoryDb();
    const err = await db
      .transaction(async (tx) => {
        await tx.query(`SELECT 1/0`).catch(() => {});
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OminipgError);
    expect(err.code).toBe("TRANSACTION_ABORTED");
    expect((await db.query(`SELECT 1 AS ok`)).rows).toEqual([{ ok: 1 }]);
    await db.close();
  });

  it("plain BEGIN / SAVEPOINT / ROLLBACK TO / COMMIT behave as on one connection", async () => {
    const db = await memoryDb();
    await db.query(`CREATE TABLE a (id int PRIMARY KEY)`);
    await db.query(`BEGIN`);
    await db.query(`INSERT INTO a VALUES (1)`);
    await db.query(`SAVEPOINT s1`);
    await db.query(`INSERT INTO a VALUES (2)`);
    await db.query(`ROLLBACK TO SAVEPOINT s1`);
    await db.query(`INSERT INTO a VALUES (3)`);
    await db.query(`COMMIT`);
    await db.query(`BEGIN`);
    await db.query(`INSERT INTO a VALUES (4)`);
    await db.query(`ROLLBACK`);
    expect((await db.query(`SELECT id FROM a ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 3 }]);
    await db.close();
  });
});

describe("close() and events", () => {
  it("close() is idempotent and later calls fail with ClosedError", async () => {
    const db = await memoryDb();
    await db.close();
    await db.close();
    await expect(db.query("SELECT 1")).rejects.toBeInstanceOf(ClosedError);
    await expect(db.sync()).rejects.toBeInstanceOf(ClosedError);
  });

  it("a loop of awaited statements in memory lets timers run (background syncs, status()'s time limit)", async () => {
    const db = await memoryDb();
    let fired = 0;
    const timer = setInterval(() => fired++, 10);
    const start = Date.now();
    while (Date.now() - start < 600) await db.query(`SELECT 1`);
    clearInterval(timer);
    expect(fired).toBeGreaterThan(0);
    await db.close();
  });

  it("DEALLOCATE ALL through query(): the client prepares its statements again", async () => {
    const db = await memoryDb();
    expect((await db.query<{ n: number }>(`SELECT $1::int AS n`, [1])).rows).toEqual([{ n: 1 }]);
    await db.query(`DEALLOCATE ALL`);
    expect((await db.query<{ n: number }>(`SELECT $1::int AS n`, [2])).rows).toEqual([{ n: 2 }]);
    await db.close();
  });

  it("on / off / once deliver typed events", async () => {
    const db = await memoryDb({ syncUrl: unreachableUrl(), sync: { retry: { attempts: 1 } } });
    const seen: string[] = [];
    const onStart = () => seen.push("start");
    db.on("sync:start", onStart);
    db.once("error", (e) => seen.push(`error:${e.code}`));
    const removed = () => seen.push("removed");
    db.once("sync:start", removed);
    db.off("sync:start", removed); // off() takes back a once() listener too
    await expect(db.sync()).rejects.toBeInstanceOf(SyncError);
    db.off("sync:start", onStart);
    await expect(db.sync()).rejects.toBeInstanceOf(SyncError);
    expect(seen).toEqual(["start", "error:REMOTE_SETUP_FAILED"]);
    await db.close();
  });
});

describe("persistent directories", () => {
  it("creates parent folders, keeps data across reopen, and accepts file:// URLs", async () => {
    const root = tempDir("ominipg-dir-");
    const dir = path.join(root, "nested", "deeper", "local.db");
    const db = await Ominipg.connect({
      url: dir,
      schemaSQL: [`CREATE TABLE IF NOT EXISTS k (id int PRIMARY KEY, v text)`],
    });
    await db.query(`INSERT INTO k VALUES (1, 'kept')`);
    await db.close();
    const again = await Ominipg.connect({
      url: pathToFileURL(dir).href,
      schemaSQL: [`CREATE TABLE IF NOT EXISTS k (id int PRIMARY KEY, v text)`],
    });
    expect((await again.query(`SELECT v FROM k`)).rows).toEqual([{ v: "kept" }]);
    await again.close();
  });

  it("refuses a directory held by another live process, and by this process", async () => {
    const dir = path.join(tempDir("ominipg-lock-"), "db");
    const child = spawn(process.execPath, fixtureArgs("hold-dir.mjs", dir), { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`child exited ${code}`)));
    });
    const err = await Ominipg.connect({ url: dir }).catch((e) => e);
    expect(err).toBeInstanceOf(LocalDatabaseError);
    expect(err.code).toBe("LOCAL_LOCKED");
    expect(err.message).toContain(String(child.pid));
    child.stdin.end();
    await new Promise((r) => child.on("exit", r));
    const db = await Ominipg.connect({ url: dir });
    const second = await Ominipg.connect({ url: dir }).catch((e) => e);
    expect(second.code).toBe("LOCAL_LOCKED");
    await db.close();
  });

  it("takes over a stale lock left by a dead process", async () => {
    const dir = path.join(tempDir("ominipg-stale-"), "db");
    const db = await Ominipg.connect({ url: dir });
    await db.close();
    const child = spawn(process.execPath, ["-e", "0"]);
    await new Promise((r) => child.on("exit", r));
    fs.writeFileSync(
      `${dir}.lock`,
      JSON.stringify({ pid: child.pid, host: (await import("node:os")).hostname(), since: "x" }),
    );
    const again = await Ominipg.connect({ url: dir });
    expect((await again.query(`SELECT 1 AS ok`)).rows).toEqual([{ ok: 1 }]);
    await again.close();
  });

  it("opens a directory reached through a symlink as its target, locked there too", async () => {
    const root = tempDir("ominipg-link-");
    const dir = path.join(root, "db");
    const link = path.join(root, "link");
    const db = await Ominipg.connect({ url: dir, schemaSQL: [`CREATE TABLE IF NOT EXISTS k (id int PRIMARY KEY)`] });
    await db.query(`INSERT INTO k VALUES (7)`);
    await db.close();
    fs.symlinkSync(dir, link);
    const viaLink = await Ominipg.connect({ url: link });
    expect((await viaLink.query(`SELECT id FROM k`)).rows).toEqual([{ id: 7 }]);
    expect((await Ominipg.connect({ url: dir }).catch((e) => e)).code).toBe("LOCAL_LOCKED");
    await viaLink.close();
  });

  it("fails clearly when the directory cannot be opened, never falling back to memory", async () => {
    const file = path.join(tempDir("ominipg-bad-"), "not-a-dir");
    fs.writeFileSync(file, "plain file");
    const err = await Ominipg.connect({ url: file }).catch((e) => e);
    expect(err).toBeInstanceOf(LocalDatabaseError);
    expect(err.code).toBe("LOCAL_OPEN_FAILED");
    expect(err.message).not.toContain("[object Object]");
  });

  it("refuses a PostgreSQL server's data directory (its postmaster.pid is not PGlite's), leaving the file as it is", async () => {
    const dir = path.join(tempDir("ominipg-server-dir-"), "db");
    await (await Ominipg.connect({ url: dir })).close();
    // What a running server keeps there: its pid, its data directory, its start time, port, socket directory...
    const pidFile = path.join(dir, "postmaster.pid");
    const pid = `4242\n/var/lib/postgresql/18/main\n1765000000\n5432\n/var/run/postgresql\n`;
    fs.writeFileSync(pidFile, pid);
    const err = await Ominipg.connect({ url: dir }).catch((e) => e);
    expect(err).toMatchObject({ code: "LOCAL_OPEN_FAILED" });
    expect(err.message).toContain("a PostgreSQL server's data directory (postmaster.pid: process 4242)");
    expect(fs.readFileSync(pidFile, "utf8")).toBe(pid);
    expect(fs.existsSync(`${dir}.lock`)).toBe(false);
    // PGlite's own (left by a process that died) names /pglite/data, and one cut short names nothing: it opens.
    for (const leftover of ["-42\n/pglite/data\n", "-42\n"]) {
      fs.writeFileSync(pidFile, leftover);
      await (await Ominipg.connect({ url: dir })).close();
    }
  });

  it("rejects unknown url schemes and options", async () => {
    await expect(Ominipg.connect({ url: "mysql://x" })).rejects.toBeInstanceOf(ConfigError);
    await expect(Ominipg.connect({ nope: 1 } as never)).rejects.toBeInstanceOf(ConfigError);
  });
});

describe("sharedBuffers", () => {
  const pool = async (db: Ominipg) =>
    (await db.query<{ v: string }>(`SELECT current_setting('shared_buffers') AS v`)).rows[0]!.v;

  it("sets the buffer pool of this open, in memory, in a directory and from a loadDataDir; never stored", async () => {
    const plain = await Ominipg.connect({});
    const usual = await pool(plain);
    await plain.close();
    expect(usual).not.toBe("2MB");
    const memory = await Ominipg.connect({ sharedBuffers: "2MB" });
    expect(await pool(memory)).toBe("2MB");
    await memory.close();
    const loaded = await Ominipg.connect({ sharedBuffers: "3MB", loadDataDir: await pgliteTemplate() });
    expect(await pool(loaded)).toBe("3MB");
    await loaded.close();
    const url = path.join(tempDir("ominipg-buffers-"), "db");
    const made = await Ominipg.connect({ url, sharedBuffers: "2MB" });
    await made.query(`CREATE TABLE kept (id int PRIMARY KEY)`);
    expect(await pool(made)).toBe("2MB");
    await made.close();
    const reopened = await Ominipg.connect({ url, sharedBuffers: "4MB" });
    expect(await pool(reopened)).toBe("4MB");
    await reopened.close();
    const usualAgain = await Ominipg.connect({ url });
    expect(await pool(usualAgain)).toBe(usual);
    expect((await usualAgain.query(`SELECT count(*)::int AS n FROM kept`)).rows).toEqual([{ n: 0 }]);
    await usualAgain.close();
  });

  it("refuses anything but a whole size in kB, MB or GB", async () => {
    for (const bad of ["16", "16 MB", "0MB", "1.5MB", "16mb", 16, ""]) {
      const err = await Ominipg.connect({ sharedBuffers: bad as string }).catch((e: unknown) => e);
      expect(err, String(bad)).toBeInstanceOf(ConfigError);
    }
  });
});

describe("schemaSQL", () => {
  it("names the failing statement's index and side, and applies nothing", async () => {
    const dir = path.join(tempDir("ominipg-schema-"), "db");
    const err = await Ominipg.connect({
      url: dir,
      schemaSQL: [
        `CREATE TABLE IF NOT EXISTS ok1 (id int PRIMARY KEY)`,
        `CREATE TABLE broken (id int PRIMARY KEY, x nosuchtype)`,
      ],
    }).catch((e) => e);
    expect(err).toBeInstanceOf(SchemaError);
    expect(err).toMatchObject({ index: 1, side: "local", position: 44 });
    expect(err.message).toMatch(
      /schemaSQL\[1\] failed on the local database: type "nosuchtype" does not exist \(at character 44\)/,
    );
    const db = await Ominipg.connect({ url: dir });
    expect((await db.query(`SELECT to_regclass('ok1') IS NULL AS absent`)).rows).toEqual([{ absent: true }]);
    await db.close();
  });

  it("reports a failing remote statement with side remote, and applies none of it there", async () => {
    const remote = await createTestDatabase();
    try {
      const db = await memoryDb({
        syncUrl: remote.url,
        schemaSQL: [`CREATE TABLE IF NOT EXISTS ok1 (id int PRIMARY KEY)`, `SELECT 1/0`],
      }).catch((e) => e);
      // The local side fails first: division by zero runs locally too.
      expect(db).toMatchObject({ index: 1, side: "local" });
      const okLocal = await memoryDb({
        syncUrl: remote.url,
        schemaSQL: [
          `CREATE TABLE IF NOT EXISTS ok1 (id int PRIMARY KEY)`,
          `DO $$ BEGIN IF version() NOT LIKE '%PGlite%' THEN RAISE EXCEPTION 'remote only'; END IF; END $$`,
        ],
      });
      const err = await okLocal.sync().catch((e) => e);
      expect(err).toBeInstanceOf(SchemaError);
      expect(err).toMatchObject({ index: 1, side: "remote" });
      expect(err.message).toContain("remote only");
      const rows = await remote.sql`SELECT to_regclass('ok1') IS NOT NULL AS exists`;
      expect(rows[0]?.exists).toBe(false);
      await okLocal.close();
    } finally {
      await remote.drop();
    }
  });
});

describe("direct mode and remote reachability", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(async () => {
    await remote.drop();
  });

  it("direct mode runs queries on the server and sync() rejects", async () => {
    const db = await Ominipg.connect({
      url: remote.url,
      schemaSQL: [`CREATE TABLE IF NOT EXISTS d (id int PRIMARY KEY, v text)`],
    });
    await db.query(`INSERT INTO d VALUES ($1, $2)`, [1, "on the server"]);
    expect(await remote.sql`SELECT v FROM d`).toEqual([{ v: "on the server" }]);
    const r = await db.query(`SELECT 1 AS a; SELECT 2 AS b`);
    expect(r.rows).toEqual([{ b: 2 }]);
    await db.query(`BEGIN`);
    await db.query(`INSERT INTO d VALUES (2, 'rolled back')`);
    await db.query(`ROLLBACK`);
    expect((await db.query(`SELECT count(*)::int AS n FROM d`)).rows).toEqual([{ n: 1 }]);
    const err = await db.sync().catch((e) => e);
    expect(err).toBeInstanceOf(OminipgError);
    expect(err.code).toBe("SYNC_NOT_CONFIGURED");
    expect(await db.status()).toEqual({
      clientId: null,
      mode: "direct",
      pending: [],
      lastSync: null,
      lastPull: null,
      remote: null,
      feed: null,
    });
    await db.close();
  });

  it("raw() gives each column's text bytes, undecoded, locally and in direct mode; errors and transaction state as query()", async () => {
    const local = await memoryDb();
    const direct = await Ominipg.connect({ url: remote.url });
    try {
      for (const db of [local, direct]) {
        const driver = (db as unknown as { driver: Driver }).driver;
        const rows = await driver.raw(
          `SELECT $1::text AS t, NULL::int AS n, 42::int8 AS i, '{"a": [1]}'::json AS j UNION ALL SELECT 'ünï 😀', 1, -1, 'null'`,
          ["tab\tnew\nline"],
        );
        const decoded = rows.map((row) => row.map((v) => (v === null ? null : new TextDecoder().decode(v))));
        expect(decoded).toEqual([
          ["tab\tnew\nline", null, "42", '{"a": [1]}'],
          ["ünï 😀", "1", "-1", "null"],
        ]);
        expect(rows[1]![0]).toBeInstanceOf(Uint8Array);
        expect(await driver.raw(`SELECT 1 WHERE false`)).toEqual([]);
        const expected = await db.query(`SELECT 1/0`).catch((e) => e);
        const actual = await driver.raw(`SELECT 1/0`).catch((e) => e);
        expect(actual.code).toBe("22012");
        expect(actual.message).toBe(expected.message);
        await driver.query(`BEGIN`);
        await driver.raw(`SELECT 1`);
        expect(driver.txStatus).toBe("transaction");
        await driver.raw(`SELECT 1/0`).catch(() => {});
        expect(driver.txStatus).toBe("failed");
        await driver.query(`ROLLBACK`);
        expect(driver.txStatus).toBe("idle");
      }
    } finally {
      await local.close();
      await direct.close();
    }
  });

  it("connect with an unreachable syncUrl returns promptly and local queries work", async () => {
    const started = Date.now();
    const db = await memoryDb({
      syncUrl: unreachableUrl(),
      schemaSQL: [`CREATE TABLE IF NOT EXISTS w (id int PRIMARY KEY)`],
      sync: { retry: { attempts: 1 } },
    });
    expect(Date.now() - started).toBeLessThan(3000);
    await db.query(`INSERT INTO w VALUES (1)`);
    expect((await db.query(`SELECT count(*)::int AS n FROM _sync_queue`)).rows).toEqual([{ n: 1 }]);
    const err = await db.sync().catch((e) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err.retryable).toBe(true);
    expect(err.message).not.toContain(":pw@");
    await db.close();
  });
});

describe("fast statement path", () => {
  it("gives the same results and errors as PGlite's db.query for every common column type", async () => {
    const plain = await PGlite.create({ loadDataDir: await pgliteTemplate() });
    const db = await memoryDb();
    const ddl = `CREATE TABLE every (
      id int PRIMARY KEY, i2 int2, i8 int8, f4 float4, f8 float8, n numeric(20,5), b bool, t text, vc varchar(10), c char(3),
      by bytea, j json, jb jsonb, ts timestamp, tz timestamptz, d date, tm time, iv interval, u uuid,
      ia int[], ta text[], inet inet, mo money)`;
    await plain.exec(ddl);
    await db.query(ddl);
    const insert = `INSERT INTO every VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) RETURNING *`;
    const params = [
      1,
      7,
      "9007199254740993",
      1.5,
      Math.PI,
      "123.45678",
      true,
      "tëxt 'q'",
      "short",
      "abc",
      new Uint8Array([1, 2, 3]),
      { j: 1 },
      { nested: { a: [1, null] } },
      "2024-02-29 12:00:00",
      new Date("2024-02-29T12:00:00Z"),
      "2024-02-29",
      "12:34:56",
      "1 day 02:03:04",
      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      [1, 2, null],
      ["a", "b,c", '"q"'],
      "10.0.0.1",
      "12.34",
    ];
    const nulls = [2, ...params.slice(1).map(() => null)];
    for (const p of [params, nulls]) {
      const expected = await plain.query(insert, p);
      const actual = await db.query(insert, p);
      expect(actual.rows).toEqual(expected.rows);
      expect(actual.fields).toEqual(expected.fields);
    }
    for (let i = 0; i < 3; i++) {
      const sel = `SELECT * FROM every ORDER BY id`;
      expect((await db.query(sel)).rows).toEqual((await plain.query(sel)).rows);
    }
    for (const [sql, p] of [
      [`INSERT INTO every (id) VALUES ($1)`, [1]],
      [`SELECT $1::int`, ["x"]],
      [`SELECT * FROM every WHERE nope = 1`, []],
    ] as const) {
      const expected = await plain.query(sql, [...p]).catch((e) => e);
      const actual = await db.query(sql, [...p]).catch((e) => e);
      for (const k of ["code", "message", "detail", "position", "hint"]) expect(actual[k]).toEqual(expected[k]);
    }
    await plain.close();
    await db.close();
  });
});
