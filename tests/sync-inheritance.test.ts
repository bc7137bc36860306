// A remote table with inheritance children only the remote has (`CREATE TABLE c () INHERITS (t)`): the push reads
// and writes the table's own rows (FROM ONLY, UPDATE ONLY, DELETE FROM ONLY), as the pull reads them
// (pull-inheritance.test.ts); a partitioned remote table is still written whole. Before, the push's check read the
// children's rows as the table's: an update or delete of a key the table and a child both hold failed every sync
// (CONFLICT_CHURN: two remote rows for one key), a delete would have deleted the child's row too, and an insert of
// a key only a child holds was a conflict ("remote-wins" wrote the child's row into the local table).
import { describe, expect, it } from "vitest";
import { Ominipg, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const cleanup = cleanupAfterEach();

const LOCAL = [`CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)`];
const INHERITED = [...LOCAL, `CREATE TABLE t_child (PRIMARY KEY (id)) INHERITS (t)`];
const CHILD_ROWS = [
  { id: 7, v: "child seven" },
  { id: 8, v: "child eight" },
];

async function remoteDb(schema: string[]): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  for (const s of schema) await remote.sql.unsafe(s);
  return remote;
}

async function client(remote: TestDatabase, conflicts?: SyncOptions["conflicts"]): Promise<Ominipg> {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: LOCAL,
    sync: { retry: { attempts: 2 }, ...(conflicts ? { conflicts } : {}) },
  });
  cleanup(() => db.close());
  return db;
}

/** A remote where the table holds keys 1 and 7 and its remote-only child 7 and 8; the client has pulled. */
async function inherited(conflicts?: SyncOptions["conflicts"]): Promise<{ remote: TestDatabase; db: Ominipg }> {
  const remote = await remoteDb(INHERITED);
  await remote.sql`INSERT INTO t VALUES (1, 'parent one'), (7, 'parent seven')`;
  await remote.sql`INSERT INTO t_child VALUES (7, 'child seven'), (8, 'child eight')`;
  const db = await client(remote, conflicts);
  await db.pull();
  expect((await db.query(`SELECT id FROM t ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 7 }]);
  return { remote, db };
}

async function expectChildUntouched(remote: TestDatabase): Promise<void> {
  expect(await remote.sql`SELECT id, v FROM t_child ORDER BY id`).toEqual(CHILD_ROWS);
}

describe("push to a remote table with a remote-only inheritance child", () => {
  it("an update, then a delete, of a key the child also holds push the table's row only; the child keeps its rows", async () => {
    const { remote, db } = await inherited();
    await db.query(`UPDATE t SET v = 'local seven' WHERE id = 7`);
    expect(await db.sync()).toMatchObject({ pushed: 1, conflicts: 0, rejected: 0 });
    expect(await remote.sql`SELECT id, v FROM ONLY t ORDER BY id`).toEqual([
      { id: 1, v: "parent one" },
      { id: 7, v: "local seven" },
    ]);
    await expectChildUntouched(remote);

    await db.query(`DELETE FROM t WHERE id = 7`);
    expect(await db.sync()).toMatchObject({ pushed: 1, conflicts: 0, rejected: 0 });
    expect(await remote.sql`SELECT id, v FROM ONLY t ORDER BY id`).toEqual([{ id: 1, v: "parent one" }]);
    await expectChildUntouched(remote);
    await expectSameRows(db, remote.sql, { "ONLY t": "id" });
    expect((await db.verify()).ok).toBe(true);
  });

  it("a key change onto a key only the child holds is no conflict; the child keeps its row", async () => {
    const { remote, db } = await inherited();
    await db.query(`UPDATE t SET id = 8 WHERE id = 1`);
    expect(await db.sync()).toMatchObject({ pushed: 1, conflicts: 0, rejected: 0 });
    expect(await remote.sql`SELECT id, v FROM ONLY t ORDER BY id`).toEqual([
      { id: 7, v: "parent seven" },
      { id: 8, v: "parent one" },
    ]);
    await expectChildUntouched(remote);
    await expectSameRows(db, remote.sql, { "ONLY t": "id" });
    expect((await db.verify()).ok).toBe(true);
  });

  it('"remote-wins": an insert of a key only the child holds is no conflict; the table gets the row', async () => {
    const { remote, db } = await inherited({ default: "remote-wins" });
    await db.query(`INSERT INTO t VALUES (8, 'local eight')`);
    expect(await db.sync()).toMatchObject({ pushed: 1, conflicts: 0, rejected: 0 });
    expect((await db.query(`SELECT id, v FROM t WHERE id = 8`)).rows).toEqual([{ id: 8, v: "local eight" }]);
    expect(await remote.sql`SELECT id, v FROM ONLY t WHERE id = 8`).toEqual([{ id: 8, v: "local eight" }]);
    await expectChildUntouched(remote);
    await expectSameRows(db, remote.sql, { "ONLY t": "id" });
    expect((await db.verify()).ok).toBe(true);
  });
});

it("a table partitioned on the remote only is still written whole: updates, key changes and deletes reach its partitions", async () => {
  const remote = await remoteDb([
    `CREATE TABLE t (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`,
    `CREATE TABLE t1 PARTITION OF t FOR VALUES FROM (0) TO (100)`,
    `CREATE TABLE t2 PARTITION OF t DEFAULT`,
  ]);
  await remote.sql`INSERT INTO t VALUES (1, 'a'), (2, 'b'), (150, 'c')`;
  const db = await client(remote);
  await db.pull();
  await db.query(`UPDATE t SET v = 'a+' WHERE id = 1`);
  await db.query(`UPDATE t SET id = 160 WHERE id = 2`); // into the other partition
  await db.query(`DELETE FROM t WHERE id = 150`);
  expect(await db.sync()).toMatchObject({ pushed: 3, conflicts: 0, rejected: 0 });
  expect(await remote.sql`SELECT id, v FROM t ORDER BY id`).toEqual([
    { id: 1, v: "a+" },
    { id: 160, v: "b" },
  ]);
  await expectSameRows(db, remote.sql, { t: "id" });
  expect((await db.verify()).ok).toBe(true);
});

it("a child the remote table gains after the client's first push: later pushes write the table's row only", async () => {
  const remote = await remoteDb(LOCAL);
  await remote.sql`INSERT INTO t VALUES (1, 'parent one'), (7, 'parent seven')`;
  const db = await client(remote);
  await db.pull();
  await db.query(`UPDATE t SET v = 'local one' WHERE id = 1`);
  expect(await db.sync()).toMatchObject({ pushed: 1, conflicts: 0, rejected: 0 }); // the push read the schema
  await remote.sql.unsafe(`CREATE TABLE t_child (PRIMARY KEY (id)) INHERITS (t)`);
  await remote.sql`INSERT INTO t_child VALUES (7, 'child seven'), (8, 'child eight')`;

  await db.query(`UPDATE t SET v = 'local seven' WHERE id = 7`);
  const errors: unknown[] = [];
  db.on("error", (e) => errors.push(e));
  const synced = await db.sync().catch((e: unknown) => e);
  expect(synced, String(synced)).toMatchObject({ pushed: 1, conflicts: 0, rejected: 0 });
  await db.query(`DELETE FROM t WHERE id = 7`);
  expect(await db.sync()).toMatchObject({ pushed: 1, conflicts: 0, rejected: 0 });
  expect(await remote.sql`SELECT id, v FROM ONLY t ORDER BY id`).toEqual([{ id: 1, v: "local one" }]);
  await expectChildUntouched(remote);
  expect(errors).toEqual([]);
});

it("a child the remote table gains while a sync runs: the sync's later batches write the table's row only", async () => {
  const remote = await remoteDb(LOCAL);
  await remote.sql`INSERT INTO t VALUES (1, 'parent one'), (7, 'parent seven')`;
  let commits = 0;
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: LOCAL,
    sync: { retry: { attempts: 2 }, batchSize: 1 },
    testHooks: {
      // Between the sync's first batch and its second.
      afterRemoteCommit: async () => {
        if (++commits !== 1) return;
        await remote.sql.unsafe(`CREATE TABLE t_child (PRIMARY KEY (id)) INHERITS (t)`);
        await remote.sql`INSERT INTO t_child VALUES (7, 'parent seven'), (8, 'child eight')`;
      },
    },
  });
  cleanup(() => db.close());
  await db.pull();
  await db.query(`UPDATE t SET v = 'local one' WHERE id = 1`);
  await db.query(`DELETE FROM t WHERE id = 7`); // the child's row 7 is the same as the table's
  expect(await db.sync()).toMatchObject({ pushed: 2, conflicts: 0, rejected: 0 });
  expect(commits).toBe(2);
  expect(await remote.sql`SELECT id, v FROM ONLY t ORDER BY id`).toEqual([{ id: 1, v: "local one" }]);
  expect(await remote.sql`SELECT id, v FROM t_child ORDER BY id`).toEqual([
    { id: 7, v: "parent seven" },
    { id: 8, v: "child eight" },
  ]);
});
