// A conflict settled against a local delete or key change of a parent row (remote-wins, merge, a resolver's
// "skip") or such a change refused and set aside: the rows the parent's foreign-key actions changed locally
// (ON DELETE / ON UPDATE CASCADE) are not changed back by settling; the next pull brings them back, also from the
// change feed, which reads the referencing table whole once.
import { describe, expect, it } from "vitest";
import { Ominipg, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";
import { expectSameRows } from "./pull-helpers.js";
import { queued } from "./sync-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY, a text)`,
  `CREATE TABLE IF NOT EXISTS ch (id int PRIMARY KEY, pid int REFERENCES p (id) ON UPDATE CASCADE ON DELETE CASCADE, v text)`,
  `CREATE TABLE IF NOT EXISTS gc (id int PRIMARY KEY, cid int REFERENCES ch (id) ON DELETE CASCADE)`,
];
const cleanup = cleanupAfterEach();

/** A client of `remote` settling conflicts with `conflicts`, that pulled it. */
async function pulled(remote: TestDatabase, schema: string[], conflicts: SyncOptions["conflicts"]): Promise<Ominipg> {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: schema,
    sync: { conflicts, retry: { attempts: 1 } },
  });
  cleanup(() => db.close());
  await db.pull();
  return db;
}

describe("children of a parent whose local delete or key change was undone", () => {
  it("come back with the next pull from the change feed (the children's table read whole, once)", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    for (const s of SCHEMA) await remote.sql.unsafe(s);
    await remote.sql.unsafe(
      `CREATE FUNCTION no_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no deletes here' USING ERRCODE = '23514'; END $$`,
    );
    const cases: [string, SyncOptions["conflicts"], SyncOptions["onReject"]][] = [
      [`DELETE FROM p WHERE id = 1`, "remote-wins", "stop"],
      [`UPDATE p SET id = 10, a = 'local' WHERE id = 1`, "remote-wins", "stop"],
      // Both changed a: the remote's a, the local key (moved on the remote too, the children with it).
      [`UPDATE p SET id = 10, a = 'local' WHERE id = 1`, "merge", "stop"],
      [`DELETE FROM p WHERE id = 1`, () => "skip", "stop"],
      [`DELETE FROM p WHERE id = 1`, "overwrite", "skip"], // refused remotely (below), set aside
    ];
    for (const [change, conflicts, onReject] of cases) {
      await remote.sql`TRUNCATE p, ch, gc`;
      await remote.sql`INSERT INTO p VALUES (1, 'first'), (2, 'other')`;
      await remote.sql`INSERT INTO ch VALUES (100, 1, 'x'), (101, 1, 'y'), (200, 2, 'z')`;
      await remote.sql`INSERT INTO gc VALUES (1000, 100), (2000, 200)`; // two levels down
      const db = await Ominipg.connect({
        syncUrl: remote.url,
        schemaSQL: SCHEMA,
        sync: { feed: "require", conflicts, onReject, retry: { attempts: 1 } },
      });
      cleanup(() => db.close());
      await db.pull();
      await db.pull(); // the feed's cursors are set
      await db.query(change);
      expect((await db.query(`SELECT count(*)::int AS n FROM ch WHERE pid = 1`)).rows).toEqual([{ n: 0 }]);
      if (onReject === "skip")
        await remote.sql.unsafe(
          `CREATE TRIGGER no_delete BEFORE DELETE ON p FOR EACH ROW EXECUTE FUNCTION no_delete()`,
        );
      else await remote.sql`UPDATE p SET a = 'remote' WHERE id = 1`;
      const r = await db.sync();
      if (onReject === "skip") await remote.sql.unsafe(`DROP TRIGGER no_delete ON p`);
      expect(r).toMatchObject(onReject === "skip" ? { conflicts: 0, rejected: 1 } : { conflicts: 1 });
      const pulled = await db.pull();
      expect(pulled.tables["public.ch"]!.strategy).toBe("diff");
      expect(pulled.tables["public.gc"]!.strategy).toBe("diff");
      await expectSameRows(db, remote.sql, { p: "id", ch: "id", gc: "id" });
      const parent = conflicts === "merge" ? 10 : 1;
      expect((await db.query(`SELECT id, pid FROM ch ORDER BY id`)).rows).toEqual([
        { id: 100, pid: parent },
        { id: 101, pid: parent },
        { id: 200, pid: 2 },
      ]);
      expect(await queued(db)).toBe(0);
      expect((await db.pull()).tables["public.gc"]!.strategy).toBe("feed"); // once
      await db.close();
    }
  });
});

describe("a partial update of a child, then its parent's key change cascading into the child, in conflict", () => {
  // The child's UPDATE logs its key and the columns it assigned; the parent's key change that follows changes the
  // child locally through ON UPDATE CASCADE, uncaptured (the remote runs the cascade itself). Settling must not
  // read the local child as it is now: not found by its old key (no local delete: none was logged), or showing the
  // cascaded value (not the change's own). The other columns come from the remote row instead.
  const LINES = [
    `CREATE TABLE IF NOT EXISTS parent (id int PRIMARY KEY, v text)`,
    `CREATE TABLE IF NOT EXISTS line (parent_id int REFERENCES parent (id) ON UPDATE CASCADE, n int, txt text, qty int, PRIMARY KEY (parent_id, n))`,
    `CREATE TABLE IF NOT EXISTS child (id int PRIMARY KEY, parent_id int REFERENCES parent (id) ON UPDATE CASCADE, txt text)`,
  ];
  const TABLES = { parent: "id", line: "parent_id, n", child: "id" };

  /** Client A, with `conflicts`; client B changed the rows A changes, and pushed first. */
  async function conflicting(conflicts: SyncOptions["conflicts"], table: "line" | "child") {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    for (const s of LINES) await remote.sql.unsafe(s);
    await remote.sql`INSERT INTO parent VALUES (1, 'p')`;
    await remote.sql`INSERT INTO line VALUES (1, 1, 't', 1)`;
    await remote.sql`INSERT INTO child VALUES (1, 1, 't')`;
    const [a, b] = [await pulled(remote, LINES, conflicts), await pulled(remote, LINES, "overwrite")];
    const where = table === "line" ? "parent_id = 1 AND n = 1" : "id = 1";
    await a.query(`UPDATE ${table} SET txt = 'A' WHERE ${where}`);
    await a.query(`UPDATE parent SET id = 10 WHERE id = 1`);
    await b.query(`UPDATE ${table} SET txt = 'B'${table === "line" ? ", qty = 5" : ""} WHERE ${where}`);
    await b.sync();
    return { remote, a };
  }
  const lines = (db: Ominipg) => db.query(`SELECT * FROM line ORDER BY parent_id, n`).then((r) => r.rows);

  it("in its key, settled by every strategy: the remote row kept (not deleted), no row at the old key locally", async () => {
    const cases: [SyncOptions["conflicts"], { txt: string; qty: number }][] = [
      ["overwrite", { txt: "A", qty: 5 }], // A's txt, and B's qty, which A did not change
      ["merge", { txt: "B", qty: 5 }],
      ["remote-wins", { txt: "B", qty: 5 }],
    ];
    for (const [conflicts, row] of cases) {
      const { remote, a } = await conflicting(conflicts, "line");
      expect(await a.sync()).toMatchObject({ conflicts: 1 });
      expect(await remote.sql`SELECT * FROM line`).toEqual([{ parent_id: 10, n: 1, ...row }]);
      expect(await lines(a)).toEqual([{ parent_id: 10, n: 1, txt: "A", qty: 1 }]); // the cascaded row, until a pull
      await a.pull();
      await expectSameRows(a, remote.sql, TABLES);
      await a.close();
    }
  });

  it("in another column: base and local hold the row's value before the cascade, so returning local syncs", async () => {
    const seen: unknown[] = [];
    const { remote, a } = await conflicting((c) => {
      seen.push({ base: c.base, local: c.local });
      return { ...c.local };
    }, "child");
    expect(await a.sync()).toMatchObject({ conflicts: 1, rejected: 0 });
    expect(seen).toEqual([{ base: { id: 1, parent_id: 1, txt: "t" }, local: { id: 1, parent_id: 1, txt: "A" } }]);
    expect(await remote.sql`SELECT * FROM child`).toEqual([{ id: 1, parent_id: 10, txt: "A" }]);
    await a.pull();
    await expectSameRows(a, remote.sql, TABLES);
  });
});

describe("a partial update of a child, then a grandparent's key change cascading through its parent, in conflict", () => {
  // Two levels of ON UPDATE CASCADE, both uncaptured; the parent itself has no queued change.
  const CHAIN = [
    `CREATE TABLE IF NOT EXISTS grand (id int PRIMARY KEY)`,
    `CREATE TABLE IF NOT EXISTS parent (g int REFERENCES grand (id) ON UPDATE CASCADE, k int, PRIMARY KEY (g, k))`,
    `CREATE TABLE IF NOT EXISTS child (id int PRIMARY KEY, g int, k int, txt text, FOREIGN KEY (g, k) REFERENCES parent (g, k) ON UPDATE CASCADE)`,
  ];

  it("base and local hold the row before the cascade, so a resolver returning local syncs", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    for (const s of CHAIN) await remote.sql.unsafe(s);
    await remote.sql.unsafe(
      `INSERT INTO grand VALUES (1); INSERT INTO parent VALUES (1, 1); INSERT INTO child VALUES (1, 1, 1, 't')`,
    );
    const seen: unknown[] = [];
    const a = await pulled(remote, CHAIN, (c) => (seen.push({ base: c.base, local: c.local }), { ...c.local }));
    const b = await pulled(remote, CHAIN, "overwrite");
    await a.query(`UPDATE child SET txt = 'A' WHERE id = 1`);
    await a.query(`UPDATE grand SET id = 10 WHERE id = 1`);
    await b.query(`UPDATE child SET txt = 'B' WHERE id = 1`);
    await b.sync();
    expect(await a.sync()).toMatchObject({ conflicts: 1, rejected: 0 });
    expect(seen).toEqual([{ base: { id: 1, g: 1, k: 1, txt: "t" }, local: { id: 1, g: 1, k: 1, txt: "A" } }]);
    expect(await remote.sql`SELECT * FROM child`).toEqual([{ id: 1, g: 10, k: 1, txt: "A" }]);
  });
});
