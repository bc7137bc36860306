// A remote table with inheritance children only the remote has (`CREATE TABLE c () INHERITS (t)`): the pull reads
// the table's own rows (FROM ONLY), by copy, by diff (feed off) and from the change feed, as the push's TRUNCATE
// ONLY and the feed (which lists a child's changes under the child) see it; a partitioned remote table is still
// read whole. Before, the children's rows came in as the table's: a local TRUNCATE came back with the next pull,
// and a key held by the table and a child failed the pull (ON CONFLICT DO UPDATE ... a second time).
import { describe, expect, it } from "vitest";
import { Ominipg, type PullResult } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const cleanup = cleanupAfterEach();

const LOCAL = [
  `CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS u (id int PRIMARY KEY, v text)`,
];
const INHERITED = [...LOCAL, `CREATE TABLE t_remote (PRIMARY KEY (id)) INHERITS (t)`];

async function remoteDb(schema: string[]): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  for (const s of schema) await remote.sql.unsafe(s);
  return remote;
}

async function client(remote: TestDatabase, feed: "off" | "auto", schemaSQL = LOCAL): Promise<Ominipg> {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL,
    sync: { retry: { attempts: 2 }, feed },
  });
  cleanup(() => db.close());
  return db;
}

const strategy = (r: PullResult, table: string) => r.tables[`public.${table}`]?.strategy;

// "off": every pull after the first diffs; "auto": from the change feed.
for (const [feed, later] of [
  ["off", "diff"],
  ["auto", "feed"],
] as const) {
  describe(`feed ${feed}: a remote-only inheritance child`, () => {
    it("a key the table and the child both hold: the pull reads the table's row only, copy and " + later, async () => {
      const remote = await remoteDb(INHERITED);
      await remote.sql`INSERT INTO t VALUES (7, 'parent seven'), (1, 'parent one')`;
      await remote.sql`INSERT INTO t_remote VALUES (7, 'child seven'), (8, 'child eight')`;
      await remote.sql`INSERT INTO u VALUES (1, 'other table')`;
      const db = await client(remote, feed);
      const first = await db.pull();
      expect(strategy(first, "t")).toBe("copy");
      expect(first.rejected).toBe(0); // the child's row of the same key is not read: nothing refused
      await expectSameRows(db, remote.sql, { "ONLY t": "id", u: "id" });
      expect((await db.query(`SELECT id FROM t ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 7 }]);

      await remote.sql`UPDATE ONLY t SET v = 'parent seven+' WHERE id = 7`;
      await remote.sql`UPDATE t_remote SET v = 'child seven+'`;
      await remote.sql`INSERT INTO t_remote VALUES (9, 'child nine')`;
      await remote.sql`INSERT INTO t VALUES (10, 'parent ten')`;
      await remote.sql`DELETE FROM ONLY t WHERE id = 1`;
      const second = await db.pull();
      expect(strategy(second, "t")).toBe(later);
      expect(second.rejected).toBe(0);
      await expectSameRows(db, remote.sql, { "ONLY t": "id", u: "id" });
      expect((await db.query(`SELECT id, v FROM t ORDER BY id`)).rows).toEqual([
        { id: 7, v: "parent seven+" },
        { id: 10, v: "parent ten" },
      ]);
      expect((await db.verify()).ok).toBe(true);
    });

    it("a local TRUNCATE (pushed as TRUNCATE ONLY) stays done after the next pulls; the child keeps its rows", async () => {
      const remote = await remoteDb(INHERITED);
      await remote.sql`INSERT INTO t_remote VALUES (100, 'remote child')`;
      const db = await client(remote, feed);
      await db.query(`INSERT INTO t VALUES (1, 'local')`);
      await db.sync();
      await db.pull();
      expect((await db.query(`SELECT id FROM t`)).rows).toEqual([{ id: 1 }]);
      await db.query(`TRUNCATE t`);
      await db.sync();
      await db.pull();
      expect((await db.query(`SELECT id FROM t`)).rows).toEqual([]);
      await db.pull();
      expect((await db.query(`SELECT id FROM t`)).rows).toEqual([]);
      expect(await remote.sql`SELECT id, v FROM t_remote`).toEqual([{ id: 100, v: "remote child" }]);
      expect(await remote.sql`SELECT id FROM ONLY t`).toEqual([]);
      expect((await db.verify()).ok).toBe(true);
    });
  });

  it(`feed ${feed}: a partitioned remote table is still read whole (its partitions are its rows), copy and ${later}`, async () => {
    const remote = await remoteDb([
      `CREATE TABLE t (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`,
      `CREATE TABLE t1 PARTITION OF t FOR VALUES FROM (0) TO (100)`,
      `CREATE TABLE t2 PARTITION OF t DEFAULT`,
      `CREATE TABLE u (id int PRIMARY KEY, v text)`,
    ]);
    await remote.sql`INSERT INTO t VALUES (1, 'a'), (150, 'b')`;
    const db = await client(remote, feed);
    expect(strategy(await db.pull(), "t")).toBe("copy");
    await expectSameRows(db, remote.sql, { t: "id" });
    await remote.sql`UPDATE t SET v = v || '+'`;
    await remote.sql`INSERT INTO t VALUES (2, 'c'), (300, 'd')`;
    expect(strategy(await db.pull(), "t")).toBe(later);
    await expectSameRows(db, remote.sql, { t: "id" });
    expect((await db.query(`SELECT count(*)::int AS n FROM t`)).rows).toEqual([{ n: 4 }]);
    expect((await db.verify()).ok).toBe(true);
  });
}
