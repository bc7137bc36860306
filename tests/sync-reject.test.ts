// Changes the remote refuses for good (constraints that exist only remotely): onReject "stop" keeps them
// queued and names them; onReject "skip" applies the rest and keeps the refused ones in _ominipg_rejected.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SyncError } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, n int NOT NULL, code text)`];

describe("sync: changes the remote rejects", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
    const setup = await openSynced(remote.url, SCHEMA);
    await setup.sync();
    await setup.close();
    // Remote only: the local database accepts what these refuse.
    await remote.sql`ALTER TABLE items ADD CONSTRAINT n_not_negative CHECK (n >= 0)`;
    await remote.sql`CREATE UNIQUE INDEX items_code ON items (code)`;
  });
  afterAll(async () => {
    await remote.drop();
  });

  it('onReject "stop": SyncError REMOTE_REJECTED naming table, key and cause; nothing is lost', async () => {
    await remote.sql`TRUNCATE items`;
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 10 } });
    const errors: unknown[] = [];
    db.on("error", (e) => errors.push(e));
    await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(1, 40) g`);
    await db.query(`UPDATE items SET n = -5 WHERE id = 17`);
    const err = await db.sync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ code: "REMOTE_REJECTED", retryable: false });
    const message = (err as Error).message;
    expect(message).toContain("public.items");
    expect(message).toContain("key (17)");
    expect(message).toContain("n_not_negative");
    expect(errors).toEqual([err]);
    // The refused row's entries are still queued; whatever was applied is exactly the local rows.
    const remaining = await db.query<{ id: number }>(
      `SELECT DISTINCT (new_row->>'id')::int AS id FROM _sync_queue ORDER BY 1`,
    );
    expect(remaining.rows.map((r) => r.id)).toContain(17);
    const applied = await remote.sql<{ id: number }[]>`SELECT id FROM items ORDER BY id`;
    expect(applied.length + remaining.rows.length).toBe(40);
    // A second sync stops at the same row again rather than skipping it.
    await expect(db.sync()).rejects.toMatchObject({ code: "REMOTE_REJECTED" });
    // Fixed locally, it goes through with everything else.
    await db.query(`UPDATE items SET n = 5 WHERE id = 17`);
    expect((await db.sync()).rejected).toBe(0);
    await expectSameRows(db, remote.sql, { items: "id" });
    expect(await queued(db)).toBe(0);
    await db.close();
  });

  it('onReject "skip": the other rows are applied and each refused one is kept in _ominipg_rejected', async () => {
    await remote.sql`TRUNCATE items`;
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 16, onReject: "skip" } });
    await db.query(`INSERT INTO items (id, n, code) SELECT g, g, 'c' || g FROM generate_series(1, 100) g`);
    await db.query(`UPDATE items SET n = -1 WHERE id IN (3, 64)`); // the remote CHECK refuses
    const first = await db.sync();
    expect(first).toMatchObject({ pushed: 102, rejected: 4 }); // two rows, an insert and an update each
    await remote.sql`INSERT INTO items VALUES (1000, 1, 'taken remotely')`;
    await db.query(`INSERT INTO items VALUES (101, 1, 'taken remotely')`); // the remote unique index refuses
    await db.query(`UPDATE items SET code = 'x' WHERE id = 50`);
    const second = await db.sync();
    expect(second).toMatchObject({ pushed: 2, applied: 1, rejected: 1 });
    expect(await queued(db)).toBe(0);

    const rejected = await db.query(
      `SELECT queue_ids, table_name, op, row_key, new_row->>'n' AS n, error_code, error_message FROM _ominipg_rejected ORDER BY queue_ids[1]`, // windows in flight together record in any order
    );
    expect(rejected.rows).toEqual([
      expect.objectContaining({ table_name: "items", op: "I", row_key: { id: 3 }, n: "-1", error_code: "23514" }),
      expect.objectContaining({ table_name: "items", op: "I", row_key: { id: 64 }, n: "-1", error_code: "23514" }),
      expect.objectContaining({ table_name: "items", op: "I", row_key: { id: 101 }, error_code: "23505" }),
    ]);
    expect((rejected.rows[0] as { queue_ids: unknown[] }).queue_ids).toHaveLength(2);
    expect(String((rejected.rows[2] as { error_message: string }).error_message)).toContain("items_code");
    // Everything else arrived.
    const remoteIds = (await remote.sql<{ id: number }[]>`SELECT id FROM items WHERE id <= 101 ORDER BY id`).map(
      (r) => r.id,
    );
    expect(remoteIds).toEqual(Array.from({ length: 100 }, (_, i) => i + 1).filter((id) => id !== 3 && id !== 64));
    expect(await remote.sql`SELECT code FROM items WHERE id = 50`).toEqual([{ code: "x" }]);
    // The sync guide's clean-up of the record table is allowed.
    await db.query(`DELETE FROM _ominipg_rejected`);
    await db.close();
  });

  it("a conflict settled in a batch that a refused row then halves is settled once: one resolver call, record and event", async () => {
    await remote.sql`TRUNCATE items`;
    const calls: unknown[] = [];
    const db = await openSynced(remote.url, SCHEMA, {
      sync: {
        onReject: "skip",
        conflicts: (c) => {
          calls.push(c.key);
          return { ...c.local!, n: 100 };
        },
      },
    });
    await db.query(`INSERT INTO items (id, n) SELECT g, 0 FROM generate_series(1, 8) g`);
    await db.sync();
    await db.query(`UPDATE items SET n = 1`);
    await db.query(`UPDATE items SET n = -1 WHERE id = 8`); // refused by the remote's CHECK
    await remote.sql`UPDATE items SET n = 50 WHERE id = 2`; // a conflict, in the same batch
    const events: unknown[] = [];
    db.on("conflict", (c) => events.push(c.key));
    expect(await db.sync()).toMatchObject({ conflicts: 1, rejected: 2 }); // row 8's two entries
    expect(calls).toEqual([{ id: 2 }]);
    expect(events).toEqual([{ id: 2 }]);
    expect((await db.query(`SELECT count(*)::int AS n FROM _ominipg_conflicts`)).rows).toEqual([{ n: 1 }]);
    expect(await remote.sql`SELECT id, n FROM items ORDER BY id`).toEqual([
      ...[1, 2, 3, 4, 5, 6, 7].map((id) => ({ id, n: id === 2 ? 100 : 1 })),
      { id: 8, n: 0 },
    ]);
    await db.close();
  });

  it('an error about the table rather than the rows stops even with onReject "skip", and nothing is set aside', async () => {
    await remote.sql`TRUNCATE items`;
    // Remote only: refuses every insert with an error that is not about the row's data.
    await remote.sql.unsafe(`CREATE FUNCTION no_access() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      RAISE EXCEPTION 'no inserts for this role' USING ERRCODE = 'insufficient_privilege'; END $$`);
    await remote.sql.unsafe(
      `CREATE TRIGGER items_no_access BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION no_access()`,
    );
    const db = await openSynced(remote.url, SCHEMA, { sync: { onReject: "skip" } });
    await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(1, 20) g`);
    const err = await db.sync().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "REMOTE_REJECTED", retryable: false });
    expect((err as Error).message).toContain("batch of 20 changes to public.items: no inserts for this role");
    expect(await queued(db)).toBe(20);
    expect((await db.query(`SELECT count(*)::int AS n FROM _ominipg_rejected`)).rows).toEqual([{ n: 0 }]);
    await remote.sql.unsafe(`DROP TRIGGER items_no_access ON items`);
    expect(await db.sync()).toMatchObject({ pushed: 20, rejected: 0 });
    await db.close();
  });

  it("a refused TRUNCATE stops with REMOTE_REJECTED and stays queued", async () => {
    await remote.sql`TRUNCATE items`;
    await remote.sql.unsafe(
      `CREATE TABLE IF NOT EXISTS remote_refs (id int PRIMARY KEY, item_id int REFERENCES items (id))`,
    );
    const db = await openSynced(remote.url, SCHEMA);
    await db.query(`INSERT INTO items VALUES (1, 1, 'a')`);
    await db.sync();
    await db.query(`TRUNCATE items`);
    const err = await db.sync().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "REMOTE_REJECTED", retryable: false });
    expect((err as Error).message).toMatch(/truncate of public\.items.*remote_refs/);
    expect(await queued(db)).toBe(1);
    await remote.sql.unsafe(`DROP TABLE remote_refs`);
    await db.sync();
    expect(await remote.sql`SELECT count(*)::int AS n FROM items`).toEqual([{ n: 0 }]);
    await db.close();
  });

  it('changes of a table no longer synced locally: TABLE_NOT_SYNCED with them still queued, even while an earlier window is being pushed; "skip" sets them aside', async () => {
    await remote.sql`TRUNCATE items`;
    for (const onReject of ["stop", "skip"] as const) {
      const db = await openSynced(remote.url, [...SCHEMA, `CREATE TABLE IF NOT EXISTS gone (id int PRIMARY KEY)`], {
        sync: { onReject },
      });
      await db.query(`DELETE FROM items`);
      // Three windows of at least 10,000 rows: the entries of the dropped table are read while the second is pushed.
      await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(1, 25000) g`);
      await db.query(`INSERT INTO gone VALUES (1), (2)`);
      await db.query(`DROP TABLE gone`);
      if (onReject === "stop") {
        await expect(db.sync()).rejects.toMatchObject({
          code: "TABLE_NOT_SYNCED",
          message: expect.stringContaining("public.gone"),
        });
        expect((await db.query(`SELECT count(*)::int AS n FROM _sync_queue WHERE table_name = 'gone'`)).rows).toEqual([
          { n: 2 },
        ]);
        // The windows before it went out whole; once the table is back, a sync finishes the rest.
        expect((await remote.sql`SELECT count(*)::int AS n FROM items`)[0]!.n).toBeGreaterThanOrEqual(10_000);
        await db.query(`CREATE TABLE gone (id int PRIMARY KEY)`);
        expect((await db.sync()).pushed).toBeGreaterThanOrEqual(2);
        expect(await remote.sql`SELECT id FROM gone ORDER BY id`).toEqual([{ id: 1 }, { id: 2 }]);
      } else {
        expect((await db.sync()).rejected).toBe(2);
        expect((await db.query(`SELECT table_name, error_message FROM _ominipg_rejected`)).rows).toEqual([
          { table_name: "gone", error_message: expect.stringContaining("no longer synced") },
          { table_name: "gone", error_message: expect.stringContaining("no longer synced") },
        ]);
      }
      expect(await queued(db)).toBe(0);
      await expectSameRows(db, remote.sql, { items: "id" });
      await db.close();
    }
  });

  it('a column renamed or dropped while changes to it are queued: COLUMN_NOT_SYNCED with them still queued; "skip" sets them aside', async () => {
    for (const onReject of ["stop", "skip"] as const) {
      const table = `notes_${onReject}`;
      const db = await openSynced(
        remote.url,
        [`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, v text, w text)`],
        {
          sync: { onReject },
        },
      );
      await db.query(`INSERT INTO ${table} VALUES (1, 'a', 'p'), (2, 'b', 'q'), (3, 'c', 'r')`);
      await db.sync();
      await db.query(`INSERT INTO ${table} VALUES (4, 'd', 's')`);
      await db.query(`UPDATE ${table} SET v = 'a2' WHERE id = 1`);
      await db.query(`UPDATE ${table} SET w = 'q2' WHERE id = 2`);
      await db.query(`DELETE FROM ${table} WHERE id = 3`);
      for (const ddl of [`ALTER TABLE ${table} RENAME COLUMN v TO title`, `ALTER TABLE ${table} DROP COLUMN w`]) {
        await db.query(ddl);
        await remote.sql.unsafe(ddl);
      }
      await db.query(`UPDATE ${table} SET title = 'a3' WHERE id = 1`); // folded with the change from before
      await db.query(`INSERT INTO ${table} VALUES (5, 'e')`); // captured after: pushed
      const before = [
        { id: 1, title: "a" },
        { id: 2, title: "b" },
        { id: 3, title: "c" },
      ];
      if (onReject === "stop") {
        await expect(db.sync()).rejects.toMatchObject({
          code: "COLUMN_NOT_SYNCED",
          retryable: false,
          message: expect.stringMatching(new RegExp(`public\\.${table} \\((v, w|w, v)\\).*Sync before renaming`)),
        });
        expect(await queued(db)).toBe(6);
        expect(await remote.sql.unsafe(`SELECT * FROM ${table} ORDER BY id`)).toEqual(before);
      } else {
        expect(await db.sync()).toMatchObject({ pushed: 6, applied: 1, rejected: 5 });
        const rejected = await db.query(
          `SELECT op, row_key, error_message FROM _ominipg_rejected WHERE table_name = $1 ORDER BY row_key->>'id'`,
          [table],
        );
        const says = (columns: string) => expect.stringContaining(`no longer has: ${columns}`);
        expect(rejected.rows).toEqual([
          { op: "U", row_key: { id: 1 }, error_message: says("v") },
          { op: "U", row_key: { id: 2 }, error_message: says("w") },
          { op: "D", row_key: { id: 3 }, error_message: says("v, w") },
          { op: "I", row_key: { id: 4 }, error_message: says("v, w") },
        ]);
        expect(await remote.sql.unsafe(`SELECT * FROM ${table} ORDER BY id`)).toEqual([
          ...before,
          { id: 5, title: "e" },
        ]);
        expect(await queued(db)).toBe(0);
      }
      await db.close();
    }
  });

  it('a primary key changed while updates are queued: COLUMN_NOT_SYNCED with them still queued, a pull says why it cannot hold them; "skip" sets each aside (they were pushed as one row at a NULL key, and lost)', async () => {
    for (const onReject of ["stop", "skip"] as const) {
      const table = `keyed_later_${onReject}`;
      const db = await openSynced(
        remote.url,
        [`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, code text NOT NULL, v int)`],
        { sync: { onReject } },
      );
      await db.query(`INSERT INTO ${table} VALUES (1, 'a', 0), (2, 'b', 0)`);
      await db.sync();
      await db.query(`UPDATE ${table} SET v = 1 WHERE id = 1`);
      await db.query(`UPDATE ${table} SET v = 2 WHERE id = 2`); // images: id and v, not code
      const ddl = `ALTER TABLE ${table} DROP CONSTRAINT ${table}_pkey, ADD PRIMARY KEY (code)`;
      await db.query(ddl);
      await remote.sql.unsafe(ddl);
      if (onReject === "stop") {
        await expect(db.sync()).rejects.toMatchObject({
          code: "COLUMN_NOT_SYNCED",
          message: expect.stringMatching(new RegExp(`public\\.${table} \\(code\\).*changing a primary key`)),
        });
        expect(await queued(db)).toBe(2);
        await expect(db.pull()).rejects.toMatchObject({
          code: "PULL_LOCAL_FAILED",
          message: expect.stringContaining(`keyed_later_stop lack columns of its primary key (code)`),
        });
      } else {
        expect(await db.sync()).toMatchObject({ pushed: 2, applied: 0, rejected: 2, conflicts: 0 });
        const rejected = await db.query<{ new_row: { id: number; v: number }; error_message: string }>(
          `SELECT new_row, error_message FROM _ominipg_rejected WHERE table_name = $1 ORDER BY id`,
          [table],
        );
        expect(rejected.rows).toEqual(
          [1, 2].map((id) => ({
            new_row: { id, v: id },
            error_message: expect.stringContaining(`lacks columns of public.${table}'s primary key: code`),
          })),
        );
        expect(await queued(db)).toBe(0);
        await db.pull();
      }
      expect(await remote.sql.unsafe(`SELECT id, v FROM ${table} ORDER BY id`)).toEqual([
        { id: 1, v: 0 },
        { id: 2, v: 0 },
      ]);
      await db.close();
    }
  });
});
