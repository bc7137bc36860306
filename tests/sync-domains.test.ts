// Columns of domains that refuse NULL (NOT NULL, a CHECK, or a base domain's): an UPDATE logs only some columns,
// and images are read back as rows of the table, where a column an image lacked would go through its domain as
// NULL. Updates, key changes, deletes, conflicts under every strategy and pulls with such changes pending.
import { describe, expect, it } from "vitest";
import { Ominipg, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";
import { expectSameRows } from "./pull-helpers.js";
import { queued } from "./sync-helpers.js";

const cleanup = cleanupAfterEach();

const SCHEMA = [
  `DO $$ BEGIN CREATE DOMAIN qty_nn AS int NOT NULL; CREATE DOMAIN qty_pos AS qty_nn CHECK (VALUE >= 0);
     CREATE DOMAIN code_set AS text CHECK (VALUE IS NOT NULL AND VALUE <> '');
   EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
  `CREATE TABLE IF NOT EXISTS stock (id int PRIMARY KEY, qty qty_nn, left_qty qty_pos, code code_set, note text)`,
  `CREATE TABLE IF NOT EXISTS pairs (a code_set, b int, v text, w qty_nn, PRIMARY KEY (a, b))`,
];

const ROWS =
  `INSERT INTO stock VALUES (1, 1, 1, 'a', 'x'), (2, 2, 2, 'b', 'x'), (3, 3, 3, 'c', 'x'), (4, 4, 4, 'd', 'x'); ` +
  `INSERT INTO pairs VALUES ('p', 1, 'v', 1), ('q', 2, 'v', 2), ('s', 3, 'v', 3)`;

async function setUp(conflicts: SyncOptions["conflicts"]): Promise<{ remote: TestDatabase; db: Ominipg }> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  for (const s of SCHEMA) await remote.sql.unsafe(s);
  await remote.sql.unsafe(ROWS);
  return { remote, db: await client(remote, { conflicts }) };
}

async function client(remote: TestDatabase, sync: SyncOptions): Promise<Ominipg> {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: SCHEMA,
    sync: { retry: { attempts: 1 }, ...sync },
  });
  cleanup(() => db.close());
  await db.pull();
  return db;
}

describe("sync: columns of domains that refuse NULL", () => {
  it("updates of one column, key changes and deletes push, in one table with such a key column too", async () => {
    const { remote, db } = await setUp("overwrite");
    await db.query(`UPDATE stock SET note = 'n' WHERE id = 1`);
    await db.query(`UPDATE stock SET qty = 20 WHERE id = 2`);
    await db.query(`UPDATE stock SET id = 30 WHERE id = 3`);
    await db.query(`DELETE FROM stock WHERE id = 4`);
    await db.query(`UPDATE pairs SET v = 'n' WHERE a = 'p'`);
    await db.query(`UPDATE pairs SET a = 'r' WHERE a = 'q'`);
    await db.query(`DELETE FROM pairs WHERE a = 's'`);
    expect(await db.sync()).toMatchObject({ rejected: 0, conflicts: 0, pushed: 7 });
    await expectSameRows(db, remote.sql, { stock: "id", pairs: "a, b" });
    // Queued behind one another in one sync: update, key change and delete of one row.
    await db.query(`UPDATE stock SET note = 'm' WHERE id = 1`);
    await db.query(`UPDATE stock SET id = 11 WHERE id = 1`);
    await db.query(`UPDATE stock SET left_qty = 5 WHERE id = 11`);
    await db.query(`UPDATE stock SET note = 'k' WHERE id = 2`);
    await db.query(`DELETE FROM stock WHERE id = 2`);
    expect(await db.sync()).toMatchObject({ rejected: 0, conflicts: 0 });
    await expectSameRows(db, remote.sql, { stock: "id", pairs: "a, b" });
    expect(await queued(db)).toBe(0);
  });

  it("a pull with such changes pending keeps them, by the feed and by the diff", async () => {
    const { remote, db } = await setUp("overwrite");
    const diffing = await client(remote, { feed: "off" });
    for (const c of [db, diffing]) {
      await c.query(`UPDATE stock SET note = 'pending' WHERE id = 1`);
      await c.query(`UPDATE pairs SET v = 'pending' WHERE a = 'p'`);
      // Changed, then given another key: compared where the row is now.
      await c.query(`UPDATE stock SET note = 'moved' WHERE id = 3`);
      await c.query(`UPDATE stock SET id = 300 WHERE id = 3`);
    }
    await remote.sql`UPDATE stock SET note = 'remote' WHERE id IN (1, 2, 3)`;
    await remote.sql`UPDATE pairs SET v = 'remote'`;
    for (const [c, strategy] of [
      [db, "feed"],
      [diffing, "diff"],
    ] as const) {
      const pulled = await c.pull();
      expect(pulled.tables["public.stock"]).toMatchObject({ strategy, upserted: 1 });
      expect(pulled.conflicts).toBe(3);
      expect(pulled.tables["public.pairs"]).toMatchObject({ strategy, upserted: 2 });
      expect((await c.query(`SELECT id, note FROM stock WHERE id IN (1, 2, 3, 300) ORDER BY id`)).rows).toEqual([
        { id: 1, note: "pending" },
        { id: 2, note: "remote" },
        { id: 300, note: "moved" },
      ]);
      expect((await c.query(`SELECT a, v FROM pairs ORDER BY a`)).rows.map((r) => r.v)).toEqual([
        "pending",
        "remote",
        "remote",
      ]);
    }
    expect(await db.sync()).toMatchObject({ rejected: 0 });
    await db.pull();
    await expectSameRows(db, remote.sql, { stock: "id", pairs: "a, b" });
  });

  it("a remote delete comes by the feed; a resolver's skip, whose keys a pull reads again", async () => {
    const { remote, db } = await setUp(() => "skip");
    await remote.sql`DELETE FROM stock WHERE id = 2`;
    expect((await db.pull()).tables["public.stock"]).toMatchObject({ strategy: "feed", deleted: 1, rejected: 0 });
    await db.query(`UPDATE stock SET note = 'local' WHERE id = 1`);
    await remote.sql`UPDATE stock SET note = 'remote' WHERE id = 1`;
    expect(await db.sync()).toMatchObject({ conflicts: 1, rejected: 0 });
    expect((await db.pull()).tables["public.stock"]).toMatchObject({ strategy: "feed", rejected: 0 });
    await expectSameRows(db, remote.sql, { stock: "id", pairs: "a, b" });
  });

  it("an update of a row a parent's ON UPDATE CASCADE then moved, whose remote row is gone, is settled", async () => {
    const schema = [
      SCHEMA[0]!,
      `CREATE TABLE IF NOT EXISTS parent (id int PRIMARY KEY, v text)`,
      `CREATE TABLE IF NOT EXISTS line (parent_id int REFERENCES parent (id) ON UPDATE CASCADE, n int, txt text,
         qty qty_nn, other text, PRIMARY KEY (parent_id, n))`,
    ];
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    for (const s of schema) await remote.sql.unsafe(s);
    await remote.sql.unsafe(`INSERT INTO parent VALUES (1, 'p'); INSERT INTO line VALUES (1, 1, 't', 1, 'o')`);
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: schema, sync: { conflicts: "overwrite" } });
    cleanup(() => db.close());
    await db.pull();
    await db.query(`UPDATE line SET txt = 'local' WHERE parent_id = 1 AND n = 1`);
    await db.query(`UPDATE parent SET id = 10 WHERE id = 1`);
    await remote.sql`DELETE FROM line`;
    expect(await db.sync()).toMatchObject({ conflicts: 1, rejected: 0 });
    expect(await queued(db)).toBe(0);
    await db.pull();
    await expectSameRows(db, remote.sql, { parent: "id", line: "parent_id, n" });
  });

  for (const strategy of ["overwrite", "remote-wins", "merge"] as const) {
    it(`conflicts settle under "${strategy}": updates, a key change and deletes against remote changes`, async () => {
      const { remote, db } = await setUp(strategy);
      await db.query(`UPDATE stock SET note = 'local' WHERE id = 1`);
      await db.query(`UPDATE stock SET qty = 21 WHERE id = 2`);
      await db.query(`UPDATE stock SET id = 33 WHERE id = 3`);
      await db.query(`DELETE FROM stock WHERE id = 4`);
      await db.query(`UPDATE pairs SET v = 'local' WHERE a = 'p'`);
      await db.query(`DELETE FROM pairs WHERE a = 'q'`);
      await remote.sql`UPDATE stock SET note = 'remote', qty = 9 WHERE id IN (1, 2, 3, 4)`;
      await remote.sql`UPDATE pairs SET v = 'remote', w = 9`;
      const result = await db.sync();
      expect(result).toMatchObject({ rejected: 0 });
      expect(result.conflicts).toBeGreaterThan(0);
      expect(await queued(db)).toBe(0);
      await db.pull();
      await expectSameRows(db, remote.sql, { stock: "id", pairs: "a, b" });
    });
  }
});
