// The remote goes down and comes back: through a loopback TCP proxy (tests/sync-helpers.ts) that the
// test closes, reopens, or makes cut connections, in front of the real server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backoffDelay } from "../src/remote/retry.js";
import { SyncError, type OminipgError } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, ledgerRows, openSynced, queued, startProxy, type Proxy } from "./sync-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text, n int NOT NULL DEFAULT 0)`];

describe("sync: remote outages", () => {
  let remote: TestDatabase;
  let proxy: Proxy;
  beforeAll(async () => {
    remote = await createTestDatabase();
    proxy = await startProxy(remote.url);
  });
  afterAll(async () => {
    await proxy.close();
    await remote.drop();
  });

  it("remote down: sync rejects with a retryable SyncError and the error event, keeps the log; back up: pushes everything", async () => {
    const db = await openSynced(proxy.url, SCHEMA, {
      sync: { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } },
    });
    await db.query(`INSERT INTO notes VALUES (1, 'before the outage')`);
    await db.sync();

    await proxy.close();
    await db.query(`INSERT INTO notes VALUES (2, 'offline'), (3, 'offline')`);
    await db.query(`UPDATE notes SET n = n + 1`);
    await db.query(`DELETE FROM notes WHERE id = 3`);
    const errors: OminipgError[] = [];
    db.on("error", (e) => errors.push(e));
    const ended = { count: 0 };
    db.on("sync:end", () => ended.count++);
    const err = await db.sync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ retryable: true });
    expect(errors).toEqual([err]);
    expect(ended.count).toBe(0);
    // More failed syncs than the pool has connections (each failed attempt used to leak one for good).
    for (let i = 0; i < 3; i++) await expect(db.sync()).rejects.toMatchObject({ retryable: true });
    expect(errors.length).toBe(4);
    expect(await queued(db)).toBe(6); // 2 inserts, 3 updates, 1 delete: nothing lost
    // Local work goes on while the remote is down.
    await db.query(`INSERT INTO notes VALUES (4, 'still offline')`);
    // A client that starts while the remote is down: its remote set-up fails, again and again.
    const late = await openSynced(proxy.url, SCHEMA, {
      sync: { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } },
    });
    late.on("error", () => {});
    await late.query(`INSERT INTO notes VALUES (5, 'from the late client')`);
    for (let i = 0; i < 4; i++)
      await expect(late.sync()).rejects.toMatchObject({ code: "REMOTE_SETUP_FAILED", retryable: true });

    await proxy.open();
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: 7, rejected: 0 });
    expect(await late.sync()).toMatchObject({ pushed: 1, rejected: 0 });
    await expectSameRows(db, remote.sql, { "(SELECT * FROM notes WHERE id <> 5)": "id" }); // row 5 is the late client's
    expect(await remote.sql`SELECT id FROM notes ORDER BY id`).toEqual([1, 2, 4, 5].map((id) => ({ id })));
    expect(await queued(db)).toBe(0);
    expect(await queued(late)).toBe(0);
    await late.close();
    await db.close();
  });

  it("connections cut in the middle of a push are retried, and every batch is applied exactly once", async () => {
    await remote.sql`TRUNCATE notes`;
    await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS hits (id int PRIMARY KEY, n int NOT NULL)`);
    await remote.sql.unsafe(`CREATE OR REPLACE FUNCTION count_hit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      INSERT INTO hits VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = hits.n + 1; RETURN NULL; END $$`);
    await remote.sql.unsafe(
      `CREATE OR REPLACE TRIGGER notes_hits AFTER INSERT OR UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION count_hit()`,
    );
    const db = await openSynced(proxy.url, SCHEMA, {
      sync: { batchSize: 100, concurrency: 2, retry: { attempts: 8, baseDelayMs: 5, maxDelayMs: 50 } },
    });
    await db.query(`INSERT INTO notes (id, body) SELECT g, 'row ' || g FROM generate_series(1, 3000) g`);
    let cuts = 0;
    db.on("sync:progress", ({ done }) => {
      // Cut every connection a few times while batches are in flight.
      if (done > 0 && done % 600 === 0 && cuts < 4) {
        cuts++;
        proxy.drop();
      }
    });
    const result = await db.sync();
    expect(cuts).toBeGreaterThan(0);
    expect(result).toMatchObject({ pushed: 3000, rejected: 0 });
    await expectSameRows(db, remote.sql, { notes: "id" });
    expect(await remote.sql`SELECT count(*)::int AS rows, min(n) AS lo, max(n) AS hi FROM hits`).toEqual([
      { rows: 3000, lo: 1, hi: 1 },
    ]);
    expect(await ledgerRows(remote.sql)).toBe(0);
    await db.close();
  });

  it("a short outage is bridged by the retries within one sync", async () => {
    const db = await openSynced(proxy.url, SCHEMA, {
      sync: { retry: { attempts: 6, baseDelayMs: 20, maxDelayMs: 100 } },
    });
    await db.sync();
    await db.query(`INSERT INTO notes VALUES (100, 'bridged')`);
    proxy.drop(); // the pool's connections die ...
    proxy.refuseNext(4); // ... and the next connections are cut before the server answers
    const before = proxy.accepted;
    expect(await db.sync()).toMatchObject({ pushed: 1, rejected: 0 });
    expect(proxy.accepted - before).toBeGreaterThan(4);
    expect(await remote.sql`SELECT body FROM notes WHERE id = 100`).toEqual([{ body: "bridged" }]);
    await db.close();
  });

  it("retries with capped exponential back-off and full jitter, then fails with a retryable error", async () => {
    // The bound doubles per attempt up to the cap; the wait is uniform below it.
    const bounds = [1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, { baseDelayMs: 100, maxDelayMs: 1000 }, () => 1));
    expect(bounds).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    expect(backoffDelay(3, { baseDelayMs: 100, maxDelayMs: 1000 }, () => 0)).toBe(0);
    const waits = Array.from({ length: 50 }, () => backoffDelay(6, { baseDelayMs: 100, maxDelayMs: 1000 }));
    expect(Math.max(...waits)).toBeLessThanOrEqual(1000);
    expect(Math.max(...waits) - Math.min(...waits)).toBeGreaterThan(100);

    // A server that cuts every connection during start-up (a proxy in front of a dead database): the sync
    // fails after its attempts, promptly, instead of hanging in the driver's reconnect loop.
    const dead = await startProxy(remote.url);
    dead.refuseNext(Infinity);
    const db = await openSynced(dead.url, SCHEMA, {
      sync: { retry: { attempts: 4, baseDelayMs: 50, maxDelayMs: 80 } },
    });
    db.on("error", () => {});
    await db.query(`INSERT INTO notes VALUES (1, 'x')`);
    const started = performance.now();
    const err = await db.sync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ retryable: true });
    expect(performance.now() - started).toBeLessThan(3 * 80 + 2000);
    expect(dead.accepted).toBeGreaterThanOrEqual(4);
    expect(await queued(db)).toBe(1);
    await db.close();
    await dead.close();
  });
});
