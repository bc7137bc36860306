// A foreign key action a parent's change runs locally (ON UPDATE CASCADE, ON DELETE SET NULL / CASCADE,
// uncaptured) changes child rows; the app then writes those child rows, in the same sync window. Nothing
// changed on the remote meanwhile: the sync must report no conflict and the remote must end as the local side.
import { describe, expect, it } from "vitest";
import { Ominipg, type ConflictEvent, type SyncOptions } from "../src/index.js";
import { createTestDatabase } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const cleanup = cleanupAfterEach();

async function open(schema: string[], seed: string[], conflicts: SyncOptions["conflicts"]) {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: schema,
    sync: { conflicts, feed: "off", retry: { attempts: 1 } },
  });
  cleanup(() => db.close());
  const events: ConflictEvent[] = [];
  db.on("conflict", (e) => events.push(e));
  for (const s of seed) await db.query(s);
  await db.sync();
  return { db, remote, events };
}

const STRATEGIES = ["overwrite", "remote-wins", "merge"] as const;

describe("ON UPDATE CASCADE into the child's key, then the child written at its new key", () => {
  const SCHEMA = [
    `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY, name text)`,
    `CREATE TABLE IF NOT EXISTS c (pid int REFERENCES p (id) ON UPDATE CASCADE ON DELETE CASCADE, n int, v text, PRIMARY KEY (pid, n))`,
  ];
  const SEED = [`INSERT INTO p VALUES (1, 'one')`, `INSERT INTO c VALUES (1, 1, 'v0'), (1, 2, 'v0')`];

  it.each(STRATEGIES)("%s: an update", async (s) => {
    const { db, remote, events } = await open(SCHEMA, SEED, s);
    await db.query(`UPDATE p SET id = 2 WHERE id = 1`);
    await db.query(`UPDATE c SET v = 'v1' WHERE pid = 2 AND n = 1`);
    await db.sync();
    expect(await remote.sql.unsafe(`SELECT pid, n, v FROM c ORDER BY n`)).toEqual([
      { pid: 2, n: 1, v: "v1" },
      { pid: 2, n: 2, v: "v0" },
    ]);
    expect(events).toEqual([]);
    await db.pull();
    await expectSameRows(db, remote.sql, { p: "id", c: "pid, n" });
  });

  it.each(STRATEGIES)("%s: a delete", async (s) => {
    const { db, remote, events } = await open(SCHEMA, SEED, s);
    await db.query(`UPDATE p SET id = 2 WHERE id = 1`);
    await db.query(`DELETE FROM c WHERE pid = 2 AND n = 1`);
    await db.sync();
    expect(await remote.sql.unsafe(`SELECT pid, n, v FROM c ORDER BY n`)).toEqual([{ pid: 2, n: 2, v: "v0" }]);
    expect(events).toEqual([]);
    await db.pull();
    await expectSameRows(db, remote.sql, { p: "id", c: "pid, n" });
  });
});

describe("a parent deleted, then its former child written", () => {
  const cases = [
    ["ON DELETE SET NULL, then the child given another parent", "SET NULL", `UPDATE c SET pid = 2 WHERE id = 10`, "x"],
    [
      "ON DELETE CASCADE, then the child's key inserted again under another parent",
      "CASCADE",
      `INSERT INTO c VALUES (10, 2, 'y')`,
      "y",
    ],
  ] as const;
  it.each(
    cases.flatMap(([name, action, write, v]) => STRATEGIES.map((s) => [`${name}: ${s}`, action, write, v, s] as const)),
  )("%s", async (_, action, write, v, s) => {
    const schema = [
      `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY)`,
      `CREATE TABLE IF NOT EXISTS c (id int PRIMARY KEY, pid int REFERENCES p (id) ON DELETE ${action}, v text)`,
    ];
    const { db, remote, events } = await open(
      schema,
      [`INSERT INTO p VALUES (1), (2)`, `INSERT INTO c VALUES (10, 1, 'x')`],
      s,
    );
    await db.query(`DELETE FROM p WHERE id = 1`);
    await db.query(write);
    await db.sync();
    expect(await remote.sql.unsafe(`SELECT id, pid, v FROM c`)).toEqual([{ id: 10, pid: 2, v }]);
    expect(events).toEqual([]);
    await db.pull();
    await expectSameRows(db, remote.sql, { p: "id", c: "id" });
  });
});

describe("a partial update whose row the remote deleted and a later cascaded key change moved locally", () => {
  // A one-column UPDATE of a child with another column (w) logs the key and v alone; another client deleted the
  // row; then the parent's key change moved it locally (ON UPDATE CASCADE, uncaptured), so it is not found by the
  // change's key, and the remote has no row either. It was taken for deleted locally: the change and the row lost.
  const SCHEMA = [
    `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY, name text)`,
    `CREATE TABLE IF NOT EXISTS c (pid int REFERENCES p (id) ON UPDATE CASCADE ON DELETE CASCADE, n int, v text, w text, PRIMARY KEY (pid, n))`,
  ];
  it("overwrite writes the whole row again, which the parent's key change then carries along", async () => {
    const seed = [`INSERT INTO p VALUES (1, 'one')`, `INSERT INTO c VALUES (1, 1, 'v0', 'w0'), (1, 2, 'v0', 'w0')`];
    const { db, remote, events } = await open(SCHEMA, seed, "overwrite");
    await remote.sql.unsafe(`DELETE FROM c WHERE pid = 1 AND n = 1`); // another client
    await db.query(`UPDATE c SET v = 'v1' WHERE pid = 1 AND n = 1`);
    await db.query(`UPDATE p SET id = 2 WHERE id = 1`);
    await db.sync();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ resolution: "local", local: { pid: 1, n: 1, v: "v1", w: "w0" } });
    expect(await remote.sql.unsafe(`SELECT pid, n, v, w FROM c ORDER BY n`)).toEqual([
      { pid: 2, n: 1, v: "v1", w: "w0" },
      { pid: 2, n: 2, v: "v0", w: "w0" },
    ]);
    await db.pull();
    await expectSameRows(db, remote.sql, { p: "id", c: "pid, n" });
  });
});

describe("two levels: a grandchild a cascade deleted, inserted again", () => {
  const SCHEMA = [
    `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY)`,
    `CREATE TABLE IF NOT EXISTS c (id int PRIMARY KEY, pid int REFERENCES p (id) ON DELETE CASCADE)`,
    `CREATE TABLE IF NOT EXISTS g (id int PRIMARY KEY, cid int REFERENCES c (id) ON DELETE CASCADE, v text)`,
  ];
  const SEED = [
    `INSERT INTO p VALUES (1), (2)`,
    `INSERT INTO c VALUES (10, 1), (20, 2)`,
    `INSERT INTO g VALUES (100, 10, 'x')`,
  ];
  it.each(STRATEGIES)("%s", async (s) => {
    const { db, remote, events } = await open(SCHEMA, SEED, s);
    await db.query(`DELETE FROM p WHERE id = 1`);
    await db.query(`INSERT INTO g VALUES (100, 20, 'y')`);
    await db.sync();
    expect(await remote.sql.unsafe(`SELECT id, cid, v FROM g`)).toEqual([{ id: 100, cid: 20, v: "y" }]);
    expect(events).toEqual([]);
    await db.pull();
    await expectSameRows(db, remote.sql, { p: "id", c: "id", g: "id" });
  });
});

describe("two levels: ON UPDATE CASCADE through the child's key, then the grandchild updated at its new key", () => {
  const SCHEMA = [
    `CREATE TABLE IF NOT EXISTS o (id int PRIMARY KEY)`,
    `CREATE TABLE IF NOT EXISTS pr (oid int REFERENCES o (id) ON UPDATE CASCADE, n int, PRIMARY KEY (oid, n))`,
    `CREATE TABLE IF NOT EXISTS t (oid int, n int, k int, v text, PRIMARY KEY (oid, n, k), FOREIGN KEY (oid, n) REFERENCES pr (oid, n) ON UPDATE CASCADE)`,
  ];
  const SEED = [`INSERT INTO o VALUES (1)`, `INSERT INTO pr VALUES (1, 1)`, `INSERT INTO t VALUES (1, 1, 1, 'v0')`];
  it.each(STRATEGIES)("%s", async (s) => {
    const { db, remote, events } = await open(SCHEMA, SEED, s);
    await db.query(`UPDATE o SET id = 2 WHERE id = 1`);
    await db.query(`UPDATE t SET v = 'v1' WHERE oid = 2 AND n = 1 AND k = 1`);
    await db.sync();
    expect(await remote.sql.unsafe(`SELECT oid, n, k, v FROM t`)).toEqual([{ oid: 2, n: 1, k: 1, v: "v1" }]);
    expect(events).toEqual([]);
    await db.pull();
    await expectSameRows(db, remote.sql, { o: "id", pr: "oid, n", t: "oid, n, k" });
  });
});
