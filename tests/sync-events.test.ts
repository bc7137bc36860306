// Sync events, priority ordering, and a large push with default options.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SyncResult } from "../src/push/types.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, openSynced, queued } from "./sync-helpers.js";

describe("sync: events, priority, volume", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(async () => {
    await remote.drop();
  });

  it("emits sync:start, sync:progress ({done, total}, increasing up to total) and sync:end with the result", async () => {
    const db = await openSynced(
      remote.url,
      [
        `CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY, v int)`,
        `CREATE TABLE IF NOT EXISTS b (id int PRIMARY KEY, a_id int REFERENCES a, v int)`,
      ],
      { sync: { batchSize: 7 } },
    );
    await db.query(`INSERT INTO a SELECT g, g FROM generate_series(1, 30) g`);
    await db.query(`INSERT INTO b SELECT g, g, g FROM generate_series(1, 20) g`);
    await db.query(`UPDATE a SET v = v + 1 WHERE id <= 10`);
    await db.query(`INSERT INTO a VALUES (99, 0)`);
    await db.query(`DELETE FROM a WHERE id = 99`);
    const seen: string[] = [];
    const progress: { done: number; total: number }[] = [];
    let ended: SyncResult | undefined;
    db.on("sync:start", () => seen.push("start"));
    db.on("sync:progress", (p) => {
      seen.push("progress");
      progress.push(p);
    });
    db.on("sync:end", (r) => {
      seen.push("end");
      ended = r;
    });
    const result = await db.sync();
    expect(ended).toBe(result);
    expect(seen[0]).toBe("start");
    expect(seen.at(-1)).toBe("end");
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.every((p) => p.total === 62)).toBe(true);
    expect(progress[0]!.done).toBe(0);
    expect(progress.at(-1)!.done).toBe(62);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.done).toBeGreaterThan(progress[i - 1]!.done);
    expect(result).toMatchObject({ pushed: 62, applied: 50, rejected: 0, tables: { "public.a": 42, "public.b": 20 } });
    expect(result.batches).toBe(8); // 30 rows of a and 20 of b in batches of at most 7
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(Number.isInteger(result.durationMs)).toBe(true);
    await db.close();
  });

  it("pushes prioritized tables first (the sync guide's UPDATE _sync_queue SET priority), with the rows they reference", async () => {
    const SCHEMA = [
      `CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, name text)`,
      `CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric)`,
      `CREATE TABLE IF NOT EXISTS payments (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders, amount numeric)`,
      `CREATE TABLE IF NOT EXISTS activity (id int PRIMARY KEY, what text)`,
    ];
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 1, concurrency: 1 } });
    await db.sync(); // remote tables
    // Remote only: records the order in which rows arrive.
    await remote.sql.unsafe(`CREATE TABLE arrivals (seq serial PRIMARY KEY, tbl text, id int)`);
    await remote.sql.unsafe(`CREATE FUNCTION arrived() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      INSERT INTO arrivals (tbl, id) VALUES (TG_TABLE_NAME, NEW.id); RETURN NULL; END $$`);
    for (const t of ["customers", "orders", "payments", "activity"]) {
      await remote.sql.unsafe(
        `CREATE TRIGGER ${t}_arrived AFTER INSERT ON ${t} FOR EACH ROW EXECUTE FUNCTION arrived()`,
      );
    }
    await db.query(`INSERT INTO activity SELECT g, 'noise' FROM generate_series(1, 5) g`);
    await db.query(`INSERT INTO customers VALUES (1, 'ann'), (2, 'bob')`);
    await db.query(`INSERT INTO orders VALUES (10, 1, 9.99), (11, 2, 5)`);
    await db.query(`INSERT INTO payments VALUES (100, 10, 9.99)`);
    await db.query(`INSERT INTO activity VALUES (6, 'more noise')`);
    await db.query(`UPDATE _sync_queue SET priority = 1 WHERE table_name IN ('orders', 'payments')`);
    expect((await db.sync()).rejected).toBe(0);
    const order = (await remote.sql<{ tbl: string }[]>`SELECT tbl FROM arrivals ORDER BY seq`).map((r) => r.tbl);
    expect(order).toEqual(["customers", "customers", "orders", "orders", "payments", ...Array(6).fill("activity")]);

    // Without priority the same changes go in the usual order (tables by dependency and name).
    await remote.sql`TRUNCATE arrivals, payments, orders, customers, activity`;
    await db.query(`DELETE FROM payments; DELETE FROM orders; DELETE FROM customers; DELETE FROM activity`);
    await db.sync();
    await remote.sql`TRUNCATE arrivals`;
    await db.query(`INSERT INTO customers VALUES (1, 'ann')`);
    await db.query(`INSERT INTO orders VALUES (10, 1, 1)`);
    await db.query(`INSERT INTO activity VALUES (1, 'noise')`);
    await db.sync();
    expect((await remote.sql<{ tbl: string }[]>`SELECT tbl FROM arrivals ORDER BY seq`).map((r) => r.tbl)).toEqual([
      "activity",
      "customers",
      "orders",
    ]);
    await expectSameRows(db, remote.sql, { customers: "id", orders: "id", payments: "id", activity: "id" });
    await db.close();
  });

  it("pushes 20,000 inserts with default options", async () => {
    const db = await openSynced(remote.url, [
      `CREATE TABLE IF NOT EXISTS bulk (id int PRIMARY KEY, body text, n numeric)`,
    ]);
    await db.query(`INSERT INTO bulk SELECT g, repeat('x', 50) || g, g * 1.5 FROM generate_series(1, 20000) g`);
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = heapBefore;
    db.on("sync:progress", () => (peak = Math.max(peak, process.memoryUsage().heapUsed)));
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: 20000, applied: 20000, rejected: 0 });
    expect(await remote.sql`SELECT count(*)::int AS n, sum(n)::text AS s FROM bulk`).toEqual([
      { n: 20000, s: "300015000.0" },
    ]);
    expect(await queued(db)).toBe(0);
    expect(peak - heapBefore).toBeLessThan(150 * 1024 * 1024);
    await db.close();
  });
});
