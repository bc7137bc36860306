// Partitioned tables sync as one table (a partition's rows are logged, pushed and pulled as its root's); plain
// inheritance, whose writes capture cannot keep apart, is refused where a write would reach another table's rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaptureError } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, ledgerRows, openSynced, queued } from "./sync-helpers.js";

const PARTITIONED = [
  `CREATE TABLE IF NOT EXISTS m (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`,
  `CREATE TABLE IF NOT EXISTS m1 PARTITION OF m FOR VALUES FROM (0) TO (100)`,
  `CREATE TABLE IF NOT EXISTS m2 PARTITION OF m FOR VALUES FROM (100) TO (200) PARTITION BY RANGE (id)`,
  `CREATE TABLE IF NOT EXISTS m2a PARTITION OF m2 FOR VALUES FROM (100) TO (200)`,
];

let remote: TestDatabase;
beforeAll(async () => {
  remote = await createTestDatabase();
});
afterAll(async () => {
  await remote.drop();
});

async function log(db: Awaited<ReturnType<typeof openSynced>>): Promise<string[]> {
  const { rows } = await db.query<{ e: string }>(
    `SELECT table_name || ' ' || op::text AS e FROM _sync_queue ORDER BY id`,
  );
  return rows.map((r) => r.e);
}

describe("partitioned tables", () => {
  it("log a partition's rows under the partitioned table, whichever table a statement names; push and pull them once", async () => {
    const db = await openSynced(remote.url, PARTITIONED);
    await db.query(`INSERT INTO m1 VALUES (1, 'one'), (2, 'two')`);
    await db.query(`INSERT INTO m2a VALUES (150, 'deep')`);
    await db.query(`DELETE FROM m WHERE id = 1`);
    await db.query(`UPDATE m SET v = 'TWO' WHERE id = 2`);
    await db.query(`UPDATE m SET id = 120 WHERE id = 2`); // moves the row to another partition
    await db.query(`UPDATE m2 SET v = 'deeper' WHERE id = 150`);
    expect(await log(db)).toEqual(["m I", "m I", "m I", "m D", "m U", "m U", "m U"]);
    expect(await db.sync()).toMatchObject({ pushed: 7, rejected: 0, tables: { "public.m": 7 } });
    await expectSameRows(db, remote.sql, { m: "id", m1: "id", m2a: "id" });
    expect(await queued(db)).toBe(0);
    expect(await ledgerRows(remote.sql)).toBe(0);

    // Another client pulls each row once, through the partitioned table.
    const other = await openSynced(remote.url, PARTITIONED);
    const pulled = await other.pull();
    expect(Object.keys(pulled.tables)).toEqual(["public.m"]);
    expect((await other.query(`SELECT id, v FROM m ORDER BY id`)).rows).toEqual([
      { id: 120, v: "TWO" },
      { id: 150, v: "deeper" },
    ]);
    // The change feed lists the rows under their partitions: the pull reads them there.
    await remote.sql`UPDATE m SET v = 'remote' WHERE id = 150`;
    expect((await other.pull()).tables["public.m"]).toMatchObject({ strategy: "feed", upserted: 1 });
    expect((await other.query(`SELECT v FROM m WHERE id = 150`)).rows).toEqual([{ v: "remote" }]);
    await other.close();
    await db.close();
  });

  it("pull from the change feed a table partitioned on the remote only; a partition attached, detached or dropped makes it diff once", async () => {
    const remote = await createTestDatabase();
    try {
      await remote.sql
        .unsafe(
          `CREATE TABLE r (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
           CREATE TABLE r1 PARTITION OF r FOR VALUES FROM (0) TO (100);
           CREATE TABLE r2 PARTITION OF r FOR VALUES FROM (100) TO (200) PARTITION BY RANGE (id);
           CREATE TABLE r2a PARTITION OF r2 FOR VALUES FROM (100) TO (200);
           INSERT INTO r VALUES (1, 'one'), (2, 'two'), (150, 'deep');`,
        )
        .simple();
      const db = await openSynced(remote.url, [`CREATE TABLE IF NOT EXISTS r (id int PRIMARY KEY, v text)`]);
      const pull = async () => (await db.pull()).tables["public.r"];
      expect(await pull()).toMatchObject({ strategy: "copy", upserted: 3 });
      await remote.sql.unsafe(
        `UPDATE r SET v = 'ONE' WHERE id = 1; INSERT INTO r VALUES (160, 'new'); DELETE FROM r WHERE id = 2;
         UPDATE r SET id = 120 WHERE id = 150`, // the last moves a row to another partition
      );
      expect(await pull()).toMatchObject({ strategy: "feed", upserted: 3, deleted: 2 });
      await expectSameRows(db, remote.sql, { r: "id" });

      // Rows that come or go with a partition, no row change the feed could list: the table diffs once.
      await remote.sql.unsafe(`CREATE TABLE r3 (id int PRIMARY KEY, v text)`);
      await remote.sql.unsafe(`INSERT INTO r3 VALUES (250, 'attached')`);
      await remote.sql.unsafe(`ALTER TABLE r ATTACH PARTITION r3 FOR VALUES FROM (200) TO (300)`);
      expect(await pull()).toMatchObject({ strategy: "diff", reason: expect.stringMatching(/partitions changed/) });
      await expectSameRows(db, remote.sql, { r: "id" });
      await remote.sql.unsafe(`UPDATE r SET v = 'in r3' WHERE id = 250`);
      expect(await pull()).toMatchObject({ strategy: "feed", upserted: 1 });
      await remote.sql.unsafe(`ALTER TABLE r DETACH PARTITION r1`);
      expect(await pull()).toMatchObject({ strategy: "diff", deleted: 1 });
      await remote.sql.unsafe(`DROP TABLE r3; CREATE TABLE r3 PARTITION OF r FOR VALUES FROM (200) TO (300)`);
      expect(await pull()).toMatchObject({ strategy: "diff", deleted: 1 });
      await expectSameRows(db, remote.sql, { r: "id" });
      expect((await db.query(`SELECT id, v FROM r ORDER BY id`)).rows).toEqual([
        { id: 120, v: "deep" },
        { id: 160, v: "new" },
      ]);
      // A table dropped and made again (partitioned or not) under the same name: its rows went with no change listed.
      await remote.sql.unsafe(
        `DROP TABLE r; CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r VALUES (7, 'seven')`,
      );
      expect(await pull()).toMatchObject({ strategy: "diff", reason: expect.stringMatching(/made again/) });
      expect(await pull()).toMatchObject({ strategy: "feed" });
      await expectSameRows(db, remote.sql, { r: "id" });
      expect((await db.query(`SELECT id, v FROM r ORDER BY id`)).rows).toEqual([{ id: 7, v: "seven" }]);
      await db.close();
    } finally {
      await remote.drop();
    }
  });

  it("refuse TRUNCATE of a partition (the push could only empty the whole table); TRUNCATE of the table is pushed", async () => {
    const db = await openSynced(remote.url, PARTITIONED);
    await db.query(`INSERT INTO m VALUES (3, 'three'), (130, 'x') ON CONFLICT DO NOTHING`);
    await db.sync();
    for (const sql of [`TRUNCATE m1`, `TRUNCATE m2a`])
      await expect(db.query(sql)).rejects.toSatisfy(
        (e: unknown) =>
          e instanceof CaptureError && e.code === "CAPTURE_UNSUPPORTED" && /DELETE its rows/.test(e.message),
      );
    expect((await db.query(`SELECT count(*)::int AS n FROM m1`)).rows).toEqual([{ n: 1 }]);
    await db.query(`TRUNCATE m`);
    expect(await log(db)).toEqual(["m T"]);
    await db.sync();
    expect(await remote.sql`SELECT count(*)::int AS n FROM m`).toEqual([{ n: 0 }]);
    await db.close();
  });
});

describe("inheritance", () => {
  const refused = (pattern: RegExp) => (e: unknown) =>
    e instanceof CaptureError && e.code === "CAPTURE_UNSUPPORTED" && pattern.test(e.message);

  it("refuses writes through a synced parent with an inheritance child (they reach the child's rows); the child syncs", async () => {
    const db = await openSynced(remote.url, [
      `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY, v text)`,
      `CREATE TABLE IF NOT EXISTS c (PRIMARY KEY (id)) INHERITS (p)`,
    ]);
    for (const sql of [
      `INSERT INTO p VALUES (1, 'parent')`,
      `UPDATE p SET v = 'x'`,
      `UPDATE ONLY p SET v = 'x'`,
      `DELETE FROM ONLY p`,
      `TRUNCATE ONLY p`,
      `TRUNCATE p`,
    ])
      await expect(db.query(sql), sql).rejects.toSatisfy(
        refused(/public\.p: it has inheritance child table public\.c/),
      );
    await db.query(`INSERT INTO c VALUES (1, 'child')`);
    await db.query(`UPDATE c SET v = 'child+'`);
    expect(await log(db)).toEqual(["c I", "c U"]);
    expect(await db.sync()).toMatchObject({ rejected: 0, tables: { "public.c": 2 } });
    await expectSameRows(db, remote.sql, { c: "id", p: "id" });
    await db.close();
  });

  it("refuses writes through an unsynced parent of a synced child table", async () => {
    const db = await openSynced(
      remote.url,
      [`CREATE TABLE IF NOT EXISTS q (id int PRIMARY KEY, v text)`, `CREATE TABLE IF NOT EXISTS qc () INHERITS (q)`],
      { sync: { exclude: ["q"] } },
    );
    await db.query(`ALTER TABLE qc ADD PRIMARY KEY (id)`);
    await db.query(`INSERT INTO qc VALUES (1, 'child')`);
    for (const sql of [`UPDATE q SET v = 'x'`, `DELETE FROM q`, `TRUNCATE q`])
      await expect(db.query(sql), sql).rejects.toSatisfy(
        refused(/inheritance child table public\.qc, which is synced/),
      );
    expect(await log(db)).toEqual(["qc I"]);
    await db.close();
  });
});

it("a pushed TRUNCATE empties only the tables the local one did: a child the remote alone has keeps its rows", async () => {
  await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)`);
  await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS t_remote (PRIMARY KEY (id)) INHERITS (t)`);
  await remote.sql`INSERT INTO t_remote VALUES (100, 'remote only')`;
  const db = await openSynced(remote.url, [`CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)`]);
  await db.query(`INSERT INTO t VALUES (1, 'local')`);
  await db.sync();
  await db.query(`TRUNCATE t`);
  expect(await db.sync()).toMatchObject({ rejected: 0, tables: { "public.t": 1 } });
  expect(await remote.sql`SELECT id FROM ONLY t`).toEqual([]);
  expect(await remote.sql`SELECT id FROM t_remote`).toEqual([{ id: 100 }]);
  await db.close();
});

it("a pushed TRUNCATE follows how the remote table is built, whatever the local one is: partitioned on the remote only, emptied; plain there with a child of its own, the child keeps its rows", async () => {
  await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS rp (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
    CREATE TABLE IF NOT EXISTS rp1 PARTITION OF rp FOR VALUES FROM (0) TO (100);
    CREATE TABLE IF NOT EXISTS rpd PARTITION OF rp DEFAULT;
    CREATE TABLE IF NOT EXISTS lp (id int PRIMARY KEY, v text);
    CREATE TABLE IF NOT EXISTS lp_remote (PRIMARY KEY (id)) INHERITS (lp);
    INSERT INTO rp VALUES (1, 'a'), (500, 'b'); INSERT INTO lp_remote VALUES (900, 'remote only')`);
  const db = await openSynced(
    remote.url,
    [
      `CREATE TABLE IF NOT EXISTS rp (id int PRIMARY KEY, v text)`,
      `CREATE TABLE IF NOT EXISTS lp (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`,
      `CREATE TABLE IF NOT EXISTS lp1 PARTITION OF lp FOR VALUES FROM (0) TO (1000)`,
    ],
    { remoteSchema: "skip", sync: { tables: ["rp", "lp"] } },
  );
  await db.query(`INSERT INTO lp VALUES (1, 'local')`);
  await db.sync();
  await db.query(`TRUNCATE rp`);
  await db.query(`TRUNCATE lp`);
  await db.query(`INSERT INTO rp VALUES (2, 'after')`);
  expect(await db.sync()).toMatchObject({ rejected: 0 });
  expect(await remote.sql`SELECT id FROM rp`).toEqual([{ id: 2 }]);
  expect(await remote.sql`SELECT id FROM ONLY lp`).toEqual([]);
  expect(await remote.sql`SELECT id FROM lp_remote`).toEqual([{ id: 900 }]);
  expect(await queued(db)).toBe(0);
  await db.close();
});
