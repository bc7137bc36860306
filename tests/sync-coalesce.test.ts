// Coalescing: what reaches the remote for each pattern of local changes, observed with a remote-only
// audit trigger that records every row write the remote receives.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, ledgerRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, a text, b text, n int NOT NULL DEFAULT 0)`,
  `CREATE TABLE IF NOT EXISTS follows (id int PRIMARY KEY, item_id int REFERENCES items ON UPDATE CASCADE ON DELETE CASCADE)`,
  `CREATE TABLE IF NOT EXISTS survives (id int PRIMARY KEY, item_id int REFERENCES items ON UPDATE CASCADE ON DELETE CASCADE)`,
  `CREATE TABLE IF NOT EXISTS plain (id int PRIMARY KEY, a text, b text)`,
];
const ALL = { items: "id", follows: "id", survives: "id", plain: "id" };

// Remote only: not part of the synced schema.
const AUDIT = [
  `CREATE TABLE audit (seq serial PRIMARY KEY, op text, old_id int, new_id int, cols text)`,
  `CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO audit (op, old_id, new_id, cols) VALUES (TG_OP,
       CASE WHEN TG_OP <> 'INSERT' THEN OLD.id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.id END,
       CASE WHEN TG_OP = 'UPDATE' THEN (SELECT string_agg(key, ',' ORDER BY key) FROM jsonb_each(to_jsonb(NEW)) n
                                          WHERE n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key) END);
     RETURN NULL; END $$`,
  `CREATE FUNCTION audit_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO audit (op) VALUES (TG_OP); RETURN NULL; END $$`,
  `CREATE TRIGGER items_audit AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION audit_row()`,
  `CREATE TRIGGER items_audit_t AFTER TRUNCATE ON items FOR EACH STATEMENT EXECUTE FUNCTION audit_truncate()`,
  `CREATE TRIGGER plain_audit AFTER INSERT OR UPDATE OR DELETE ON plain FOR EACH ROW EXECUTE FUNCTION audit_row()`,
];

describe("sync: coalescing", () => {
  let remote: TestDatabase;
  let db: Ominipg;
  beforeAll(async () => {
    remote = await createTestDatabase();
    db = await openSynced(remote.url, SCHEMA);
    await db.sync(); // creates the remote tables
    for (const s of AUDIT) await remote.sql.unsafe(s);
  });
  afterAll(async () => {
    await db?.close();
    await remote.drop();
  });
  beforeEach(async () => {
    await db.query(`DELETE FROM survives; DELETE FROM follows; DELETE FROM items; DELETE FROM plain`);
    await db.sync();
    await remote.sql`TRUNCATE audit`;
  });
  const audit = async () =>
    (await remote.sql`SELECT op, old_id, new_id, cols FROM audit ORDER BY seq`).map((r) => ({ ...r }));
  const sync = async () => {
    const result = await db.sync();
    await expectSameRows(db, remote.sql, ALL);
    expect(await queued(db)).toBe(0);
    expect(await ledgerRows(remote.sql)).toBe(0);
    return result;
  };

  it("INSERT + UPDATEs -> one insert of the final row", async () => {
    await db.query(`INSERT INTO items VALUES (1, 'a', 'b')`);
    await db.query(`UPDATE items SET a = 'a2' WHERE id = 1`);
    await db.query(`UPDATE items SET b = 'b2', n = n + 1 WHERE id = 1`);
    expect(await sync()).toMatchObject({ pushed: 3, applied: 1, batches: 1 });
    expect(await audit()).toEqual([{ op: "INSERT", old_id: null, new_id: 1, cols: null }]);
  });

  it("INSERT .. DELETE -> nothing", async () => {
    await db.query(`INSERT INTO items VALUES (1, 'a', 'b')`);
    await db.query(`UPDATE items SET id = 2 WHERE id = 1`);
    await db.query(`DELETE FROM items WHERE id = 2`);
    expect(await sync()).toMatchObject({ pushed: 3, applied: 0, batches: 0 });
    expect(await audit()).toEqual([]);
  });

  it("UPDATE + UPDATE -> only the changed columns: a concurrent remote change to another column survives", async () => {
    await db.query(`INSERT INTO items VALUES (1, 'a', 'b'), (2, 'x', 'y')`);
    await sync();
    await remote.sql`UPDATE items SET b = 'changed remotely' WHERE id = 1`;
    await remote.sql`TRUNCATE audit`;
    await db.query(`UPDATE items SET a = 'a2' WHERE id = 1`);
    await db.query(`UPDATE items SET a = 'a3', n = n + 1 WHERE id = 1`);
    await db.query(`UPDATE items SET a = 'x' WHERE id = 2`); // back to the same value: nothing to write
    expect(await db.sync()).toMatchObject({ pushed: 3, applied: 1 });
    expect(await remote.sql`SELECT id, a, b, n FROM items ORDER BY id`).toEqual([
      { id: 1, a: "a3", b: "changed remotely", n: 1 },
      { id: 2, a: "x", b: "y", n: 0 },
    ]);
    expect(await audit()).toEqual([{ op: "UPDATE", old_id: 1, new_id: 1, cols: "a,n" }]);
  });

  it("UPDATE .. DELETE -> one delete by the original key", async () => {
    await db.query(`INSERT INTO items VALUES (1, 'a', 'b')`);
    await sync();
    await remote.sql`TRUNCATE audit`;
    await db.query(`UPDATE items SET a = 'a2' WHERE id = 1`);
    await db.query(`UPDATE items SET id = 7 WHERE id = 1`);
    await db.query(`UPDATE items SET b = 'b2' WHERE id = 7`);
    await db.query(`DELETE FROM items WHERE id = 7`);
    expect(await sync()).toMatchObject({ pushed: 4, applied: 1 });
    expect(await audit()).toEqual([{ op: "DELETE", old_id: 1, new_id: null, cols: null }]);
  });

  it("DELETE + INSERT -> one upsert", async () => {
    await db.query(`INSERT INTO plain VALUES (1, 'a', 'b')`);
    await sync();
    await remote.sql`TRUNCATE audit`;
    await db.query(`DELETE FROM plain WHERE id = 1`);
    await db.query(`INSERT INTO plain VALUES (1, 'new', 'b')`);
    expect(await sync()).toMatchObject({ pushed: 2, applied: 1 });
    expect(await audit()).toEqual([{ op: "UPDATE", old_id: 1, new_id: 1, cols: "a" }]);
  });

  it("DELETE + INSERT of a row whose children cascade on delete -> delete, then insert: remote children go too", async () => {
    await db.query(`INSERT INTO items VALUES (1, 'a', 'b')`);
    await db.query(`INSERT INTO follows VALUES (10, 1)`);
    await sync();
    await remote.sql`TRUNCATE audit`;
    await db.query(`DELETE FROM items WHERE id = 1`); // deletes follows 10 locally, outside the log
    await db.query(`INSERT INTO items VALUES (1, 'again', 'b')`);
    expect(await sync()).toMatchObject({ pushed: 2, applied: 2 });
    expect(await audit()).toEqual([
      { op: "DELETE", old_id: 1, new_id: null, cols: null },
      { op: "INSERT", old_id: null, new_id: 1, cols: null },
    ]);
    expect(await remote.sql`SELECT count(*)::int AS n FROM follows`).toEqual([{ n: 0 }]);
  });

  it("a key change -> a key UPDATE on the remote: ON UPDATE CASCADE children follow, ON DELETE CASCADE children survive", async () => {
    await db.query(`INSERT INTO items VALUES (1, 'a', 'b'), (2, 'c', 'd')`);
    await db.query(`INSERT INTO follows VALUES (10, 1), (11, 2)`);
    await db.query(`INSERT INTO survives VALUES (20, 1)`);
    await sync();
    await remote.sql`TRUNCATE audit`;
    await db.query(`UPDATE items SET id = 100 WHERE id = 1`);
    await db.query(`UPDATE items SET id = 101, a = 'moved' WHERE id = 100`);
    expect(await sync()).toMatchObject({ pushed: 2, applied: 1 });
    expect(await audit()).toEqual([{ op: "UPDATE", old_id: 1, new_id: 101, cols: "a,id" }]);
    expect(await remote.sql`SELECT id, item_id FROM follows ORDER BY id`).toEqual([
      { id: 10, item_id: 101 },
      { id: 11, item_id: 2 },
    ]);
    expect(await remote.sql`SELECT id, item_id FROM survives`).toEqual([{ id: 20, item_id: 101 }]);
  });

  it("TRUNCATE supersedes the table's earlier changes", async () => {
    await db.query(`INSERT INTO items VALUES (1, 'a', 'b'), (2, 'c', 'd')`);
    await sync();
    await remote.sql`TRUNCATE audit`;
    await db.query(`INSERT INTO items VALUES (3, 'e', 'f')`);
    await db.query(`UPDATE items SET a = 'z'`);
    await db.query(`DELETE FROM items WHERE id = 2`);
    await db.query(`TRUNCATE items CASCADE`);
    await db.query(`INSERT INTO items VALUES (4, 'g', 'h')`);
    const result = await sync();
    // 1 insert + 3 updates + 1 delete + 3 truncate entries (CASCADE logs each table) + 1 insert
    expect(result).toMatchObject({ pushed: 9, applied: 4 });
    expect(await audit()).toEqual([
      { op: "TRUNCATE", old_id: null, new_id: null, cols: null },
      { op: "INSERT", old_id: null, new_id: 4, cols: null },
    ]);
  });

  it("10,000 updates of 100 rows apply at most 100 remote writes", async () => {
    await db.query(`INSERT INTO items (id, n) SELECT g, 0 FROM generate_series(1, 100) g`);
    await sync();
    for (let i = 0; i < 100; i++) await db.query(`UPDATE items SET n = n + 1`);
    expect(await queued(db)).toBe(10_000);
    const result = await sync();
    expect(result.pushed).toBe(10_000);
    expect(result.applied).toBeLessThanOrEqual(100);
    expect(result.applied).toBeGreaterThan(0);
    expect(await remote.sql`SELECT min(n) AS lo, max(n) AS hi FROM items`).toEqual([{ lo: 100, hi: 100 }]);
  });
});
