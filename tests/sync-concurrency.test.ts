// sync() alongside the rest of the client: single flight, queries and writes during a sync, close() during
// a sync, and background sync (interval and push-after-write).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, lockWaits, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS events (id int PRIMARY KEY, body text)`];

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("sync: concurrency and background sync", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(async () => {
    await remote.drop();
  });
  const remoteCount = async () => (await remote.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM events`)[0]!.n;

  it("concurrent sync() calls join one run; queries and writes work during a sync; later writes go with the next sync", async () => {
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 200, concurrency: 1 } });
    await db.query(`INSERT INTO events SELECT g, 'first' FROM generate_series(1, 4000) g`);
    let starts = 0;
    db.on("sync:start", () => starts++);
    let settled = false;
    const during: Promise<unknown>[] = [];
    db.once("sync:progress", () => {
      // Inside the run: a read and a write, both served while the sync goes on.
      during.push(
        db.query<{ n: number }>(`SELECT count(*)::int AS n FROM events`).then((r) => ({ settled, n: r.rows[0]!.n })),
      );
      during.push(db.query(`INSERT INTO events VALUES (100001, 'during the sync')`).then(() => ({ settled })));
    });
    const a = db.sync();
    const b = db.sync();
    expect(b).toBe(a);
    const [ra, rb] = await Promise.all([a, b]);
    settled = true;
    expect(rb).toBe(ra);
    expect(starts).toBe(1);
    expect(ra.pushed).toBe(4000);
    expect(await Promise.all(during)).toEqual([{ settled: false, n: 4000 }, { settled: false }]);
    // The write made during the sync is still queued, and the next sync pushes it.
    expect(await queued(db)).toBe(1);
    expect(await remoteCount()).toBe(4000);
    expect(await db.sync()).toMatchObject({ pushed: 1 });
    expect(starts).toBe(2);
    await expectSameRows(db, remote.sql, { events: "id" });
    await db.close();
  });

  it("close() waits for the sync in flight", async () => {
    await remote.sql`TRUNCATE events`;
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 100, concurrency: 1 } });
    await db.query(`INSERT INTO events SELECT g, 'x' FROM generate_series(1, 3000) g`);
    let ended = false;
    const sync = db.sync().then((r) => {
      ended = true;
      return r;
    });
    await new Promise<void>((r) => db.once("sync:progress", () => r()));
    await db.close();
    expect(ended).toBe(true);
    expect(await sync).toMatchObject({ pushed: 3000, rejected: 0 });
    expect(await remoteCount()).toBe(3000);
  });

  it("background sync: every intervalMs, and pushDebounceMs after the last write", async () => {
    await remote.sql`TRUNCATE events`;
    const periodic = await openSynced(remote.url, SCHEMA, { sync: { intervalMs: 150 } });
    await periodic.query(`INSERT INTO events VALUES (1, 'periodic')`);
    await until("the interval sync", async () => (await remoteCount()) === 1);
    await periodic.query(`INSERT INTO events VALUES (2, 'periodic again')`);
    await until("the next interval sync", async () => (await remoteCount()) === 2);
    await periodic.close();

    const debounced = await openSynced(remote.url, SCHEMA, { sync: { pushDebounceMs: 250 } });
    let starts = 0;
    debounced.on("sync:start", () => starts++);
    let last = performance.now();
    let longestGap = 0;
    for (let i = 3; i < 13; i++) {
      await debounced.query(`INSERT INTO events VALUES ($1, 'burst')`, [i]);
      longestGap = Math.max(longestGap, performance.now() - last);
      last = performance.now();
    }
    await until("the push after the burst", async () => (await remoteCount()) === 12);
    // One push for the whole burst (unless the machine was so slow that the burst paused for the debounce).
    if (longestGap < 200) expect(starts).toBe(1);
    expect(await queued(debounced)).toBe(0);
    await debounced.close();
  });

  it("pushDebounceMs: a write whose debounce comes due while a sync runs is pushed by a sync after it", async () => {
    const db = await openSynced(remote.url, SCHEMA, { sync: { pushDebounceMs: 30 } });
    await db.sync();
    await remote.sql`TRUNCATE events`;
    const holder = await remote.sql.reserve();
    try {
      await holder.unsafe(`BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE`);
      await db.query(`INSERT INTO events VALUES (1, 'first')`);
      await until("the background sync waiting on the lock", async () => (await lockWaits(remote.sql)) > 0);
      await db.query(`INSERT INTO events VALUES (2, 'during')`); // its debounce comes due while that sync waits
      await new Promise((r) => setTimeout(r, 200));
      await holder.unsafe(`COMMIT`);
    } finally {
      holder.release();
    }
    await until("both rows pushed", async () => (await remoteCount()) === 2);
    expect(await queued(db)).toBe(0);
    await db.close();
  });
});
