// Remote rows equal local rows after mixed workloads on tables with foreign keys (row by row, to_jsonb).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, ledgerRows, openSynced, queued } from "./sync-helpers.js";

const TODOS = `CREATE TABLE IF NOT EXISTS todos (
  id SERIAL PRIMARY KEY,
  title TEXT NOT NULL,
  completed BOOLEAN DEFAULT FALSE,
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
)`;

const LIBRARY = [
  `CREATE TABLE IF NOT EXISTS authors (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE)`,
  `CREATE TABLE IF NOT EXISTS books (
     id int PRIMARY KEY,
     author_id int NOT NULL REFERENCES authors (id) ON UPDATE CASCADE ON DELETE CASCADE,
     title text NOT NULL,
     copies int NOT NULL DEFAULT 0)`,
  `CREATE TABLE IF NOT EXISTS reviews (
     book_id int REFERENCES books (id) ON UPDATE CASCADE ON DELETE CASCADE,
     n int,
     body text,
     PRIMARY KEY (book_id, n))`,
  `CREATE TABLE IF NOT EXISTS loans (
     id int PRIMARY KEY,
     book_id int REFERENCES books (id) ON UPDATE CASCADE ON DELETE SET NULL,
     who text)`,
  `CREATE TABLE IF NOT EXISTS tags (name text PRIMARY KEY, color text)`,
];

const ALL = { authors: "id", books: "id", reviews: "book_id, n", loans: "id", tags: "name" };

describe("sync: remote equals local", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(async () => {
    await remote.drop();
  });

  it("pushes the sync guide's todo example, including an UPDATE that does not touch updated_at", async () => {
    const db = await openSynced(remote.url, [TODOS]);
    await db.query("INSERT INTO todos (title) VALUES ($1)", ["Buy groceries"]);
    await db.query("INSERT INTO todos (title) VALUES ($1)", ["Write documentation"]);
    await db.query("UPDATE todos SET completed = TRUE WHERE id = $1", [1]);
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: 3, applied: 2, rejected: 0 });
    await expectSameRows(db, remote.sql, { todos: "id" });
    expect(await remote.sql`SELECT id, completed FROM todos ORDER BY id`).toEqual([
      { id: 1, completed: true },
      { id: 2, completed: false },
    ]);
    // Later: an update of an already pushed row, again without touching updated_at.
    await db.query("UPDATE todos SET completed = FALSE WHERE id = 1");
    await db.query("UPDATE todos SET completed = TRUE WHERE id = 2");
    expect(await db.sync()).toMatchObject({ pushed: 2, applied: 2 });
    await expectSameRows(db, remote.sql, { todos: "id" });
    expect(await queued(db)).toBe(0);
    expect(await ledgerRows(remote.sql)).toBe(0);
    await db.close();
  });

  it("log ids left unused by rolled-back writes (more than a page of them) do not end a sync early, also for prioritized tables", async () => {
    const db = await openSynced(remote.url, [
      `CREATE TABLE IF NOT EXISTS counters (id int PRIMARY KEY, n int NOT NULL)`,
    ]);
    await db.query(`INSERT INTO counters VALUES (1, 0), (2, 0)`);
    await db.sync();
    await db.query(`UPDATE counters SET n = n + 1`);
    const rollBack = () =>
      db
        .transaction(async (tx) => {
          await tx.query(`UPDATE counters SET n = n + 1000`);
          await tx.query(`INSERT INTO counters SELECT g, 0 FROM generate_series(100, 12099) g`); // 12,000 log ids
          throw new Error("rolled back");
        })
        .catch(() => {});
    await rollBack();
    await db.query(`UPDATE counters SET n = n + 1 WHERE id = 1`);
    await rollBack();
    await db.query(`UPDATE _sync_queue SET priority = 1 WHERE id = (SELECT max(id) FROM _sync_queue)`); // the last change first
    await db.query(`UPDATE counters SET n = n + 1 WHERE id = 2`);
    expect(await db.sync()).toMatchObject({ pushed: 4, rejected: 0 });
    expect(await remote.sql`SELECT id, n FROM counters ORDER BY id`).toEqual([
      { id: 1, n: 2 },
      { id: 2, n: 2 },
    ]);
    expect(await queued(db)).toBe(0);
    await db.close();
  });

  it("pushes a prioritized table's change after the earlier changes of tables that reference it", async () => {
    const db = await openSynced(remote.url, [
      `CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY)`,
      `CREATE TABLE IF NOT EXISTS lines (id int PRIMARY KEY, order_id int REFERENCES orders (id))`,
      `CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY)`,
      `CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, customer_id int REFERENCES customers (id) ON DELETE SET NULL)`,
    ]);
    await db.query(`INSERT INTO orders VALUES (1); INSERT INTO lines VALUES (10, 1); INSERT INTO customers VALUES (1)`);
    await db.sync();
    await db.query(`DELETE FROM lines WHERE id = 10`); // before its order's delete, which is prioritized
    await db.query(`DELETE FROM orders WHERE id = 1`);
    await db.query(`INSERT INTO notes VALUES (100, 1)`); // before its customer's delete sets it to NULL
    await db.query(`DELETE FROM customers WHERE id = 1`);
    await db.query(`UPDATE _sync_queue SET priority = 1 WHERE table_name IN ('orders', 'customers')`);
    expect(await db.sync()).toMatchObject({ pushed: 4, rejected: 0 });
    await expectSameRows(db, remote.sql, { orders: "id", lines: "id", customers: "id", notes: "id" });
    expect(await remote.sql`SELECT id, customer_id FROM notes`).toEqual([{ id: 100, customer_id: null }]);
    expect(await queued(db)).toBe(0);
    await db.close();
  });

  it("keeps parent/child tables equal through inserts, upserts, key changes, cascades, truncates and transactions", async () => {
    const db = await openSynced(remote.url, LIBRARY);
    const step = async (sql: string, params: unknown[] = []) => db.query(sql, params);
    // Round 1: plain inserts in a transaction, and an upsert.
    await db.transaction(async (tx) => {
      await tx.query(`INSERT INTO authors VALUES (1, 'Ann', 'ann@x'), (2, 'Bob', 'bob@x'), (3, 'Cid', NULL)`);
      await tx.query(`INSERT INTO books VALUES (10, 1, 'A1', 1), (11, 1, 'A2', 2), (20, 2, 'B1', 3), (30, 3, 'C1', 4)`);
      await tx.query(`INSERT INTO reviews VALUES (10, 1, 'good'), (10, 2, 'bad'), (20, 1, 'meh')`);
      await tx.query(`INSERT INTO loans VALUES (1, 10, 'x'), (2, 20, 'y')`);
    });
    await step(
      `INSERT INTO tags VALUES ('red', '#f00'), ('blue', '#00f') ON CONFLICT (name) DO UPDATE SET color = EXCLUDED.color`,
    );
    await step(`INSERT INTO tags VALUES ('red', '#ff0000') ON CONFLICT (name) DO UPDATE SET color = EXCLUDED.color`);
    await db.sync();
    await expectSameRows(db, remote.sql, ALL);

    // Round 2: a key change whose children follow (ON UPDATE CASCADE), a delete whose children go
    // (ON DELETE CASCADE / SET NULL), updates without any timestamp, a rolled back transaction.
    await step(`UPDATE authors SET id = 100 WHERE id = 1`);
    await step(`UPDATE books SET id = 110 WHERE id = 10`);
    await step(`UPDATE books SET copies = copies + 1`);
    await step(`DELETE FROM books WHERE id = 20`);
    await step(`DELETE FROM authors WHERE id = 3`);
    await step(`BEGIN`);
    await step(`INSERT INTO authors VALUES (4, 'Rolled', 'back@x')`);
    await step(`DELETE FROM books`);
    await step(`ROLLBACK`);
    await step(`INSERT INTO reviews VALUES (110, 3, 'after the move')`);
    await step(`UPDATE reviews SET body = upper(body) WHERE book_id = 110`);
    const r2 = await db.sync();
    expect(r2.rejected).toBe(0);
    await expectSameRows(db, remote.sql, ALL);
    expect(await remote.sql`SELECT book_id, n FROM reviews ORDER BY 1, 2`).toEqual([
      { book_id: 110, n: 1 },
      { book_id: 110, n: 2 },
      { book_id: 110, n: 3 },
    ]);

    // Round 3: a truncate among other changes, a delete then re-insert with the same key, and a unique
    // value handed from one row to another.
    await step(`INSERT INTO tags VALUES ('green', '#0f0')`);
    await step(`TRUNCATE tags`);
    await step(`INSERT INTO tags VALUES ('black', '#000')`);
    await step(`DELETE FROM books WHERE id = 11`);
    await step(`INSERT INTO books VALUES (11, 2, 'A2 again', 7)`);
    await step(`UPDATE authors SET email = NULL WHERE id = 2`);
    await step(`UPDATE authors SET email = 'bob@x' WHERE id = 100`);
    await db.sync();
    await expectSameRows(db, remote.sql, ALL);
    expect(await queued(db)).toBe(0);
    await db.close();
  });

  it("handles names that need quoting, in a schema other than public", async () => {
    const other = await createTestDatabase();
    const weird = `"My App"."Weird ""Name"""`;
    const db = await openSynced(
      other.url,
      [
        `CREATE SCHEMA IF NOT EXISTS "My App"`,
        `CREATE TABLE IF NOT EXISTS ${weird} ("Select" SERIAL PRIMARY KEY, "a,b" text, "x" int, "r" int, "k" text)`,
        `CREATE TABLE IF NOT EXISTS "My App".child ("ID" int PRIMARY KEY, parent int REFERENCES ${weird} ON UPDATE CASCADE ON DELETE CASCADE)`,
        `CREATE TABLE IF NOT EXISTS public.plain (id int PRIMARY KEY)`,
      ],
      { sequences: "advance", sync: { schemas: ["public", "My App"] } },
    );
    try {
      await db.query(`INSERT INTO ${weird} ("a,b", x, r, k) VALUES ('1,2', 1, 2, 'k'), ('3', 3, 4, 'z')`);
      await db.query(`INSERT INTO "My App".child VALUES (1, 1)`);
      await db.query(`INSERT INTO plain VALUES (1)`);
      await db.sync();
      await db.query(`UPDATE ${weird} SET "Select" = 10, x = 5 WHERE "Select" = 1`);
      await db.query(`DELETE FROM ${weird} WHERE "Select" = 2`);
      await db.query(`INSERT INTO ${weird} ("a,b") VALUES ('new')`);
      expect((await db.sync()).rejected).toBe(0);
      await expectSameRows(db, other.sql, { [weird]: `"Select"`, '"My App".child': `"ID"`, plain: "id" });
      expect(await queued(db)).toBe(0);
      // The remote sequence moved past the pushed ids.
      expect(await other.sql.unsafe(`INSERT INTO ${weird} ("a,b") VALUES ('remote') RETURNING "Select"`)).toEqual([
        { Select: 4 },
      ]);
    } finally {
      await db.close();
      await other.drop();
    }
  });
});
