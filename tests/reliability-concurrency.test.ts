// Concurrency: hundreds of query() calls mixed with sync() and transaction(), a sync while a long user
// transaction is open, close() during a sync, sync() from several async contexts at once. No deadlock, no
// write inside the wrong transaction, nothing lost, nothing applied twice (a remote trigger counts writes).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OminipgError, type Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { deferred, expectSameRows, ledgerRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS acts (id int PRIMARY KEY, who text NOT NULL, v int NOT NULL DEFAULT 0)`];
const HITS = [
  `CREATE TABLE IF NOT EXISTS hits (id int NOT NULL, v int NOT NULL, times int NOT NULL, PRIMARY KEY (id, v))`,
  `CREATE OR REPLACE FUNCTION count_hit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO hits VALUES (NEW.id, NEW.v, 1) ON CONFLICT (id, v) DO UPDATE SET times = hits.times + 1; RETURN NULL; END $$`,
  `CREATE OR REPLACE TRIGGER acts_hits AFTER INSERT OR UPDATE ON acts FOR EACH ROW EXECUTE FUNCTION count_hit()`,
];

/** Resolves with "hung" if `p` does not settle within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "hung"> {
  return Promise.race([p, new Promise<"hung">((r) => setTimeout(() => r("hung"), ms))]);
}

const count = async (db: Ominipg, where = "true") =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM acts WHERE ${where}`)).rows[0]!.n;

describe("reliability: concurrency", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
    for (const s of [...SCHEMA, ...HITS]) await remote.sql.unsafe(s);
  });
  afterAll(async () => {
    await remote.drop();
  });
  const reset = async () => remote.sql`TRUNCATE acts, hits`;
  const noDoubleWrites = async () =>
    expect(await remote.sql`SELECT id, v, times FROM hits WHERE times > 1 LIMIT 5`).toEqual([]);

  it("200 concurrent query() calls mixed with sync() and transaction(): no write in the wrong transaction, nothing lost", async () => {
    await reset();
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 10, concurrency: 2 } });
    const work: Promise<unknown>[] = [];
    const rolledBack: number[] = [];
    for (let i = 0; i < 200; i++) {
      const kind = i % 10;
      if (kind === 3) work.push(db.sync());
      else if (kind === 5 || kind === 8) {
        // A transaction that yields to the event loop between its writes, so that other callers' queries
        // are queued while it is open; every other one throws.
        const fails = kind === 8;
        const id = 10_000 + i;
        if (fails) rolledBack.push(id, id + 1);
        work.push(
          db
            .transaction(async (tx) => {
              await tx.query(`INSERT INTO acts VALUES ($1, 'tx')`, [id]);
              await new Promise((r) => setTimeout(r, 2));
              await db.query(`INSERT INTO acts VALUES ($1, 'tx via db.query')`, [id + 1]); // joins the transaction
              await tx.query(`UPDATE acts SET v = v + 1 WHERE id IN ($1, $2)`, [id, id + 1]);
              if (fails) throw new Error("roll back");
            })
            .catch((e: Error) => {
              if (!fails || e.message !== "roll back") throw e;
            }),
        );
      } else if (kind === 9) work.push(db.query(`SELECT count(*) FROM acts`));
      else
        work.push(
          db
            .query(`INSERT INTO acts VALUES ($1, 'auto')`, [i])
            .then(() => db.query(`UPDATE acts SET v = v + 1 WHERE id = $1`, [i])),
        );
    }
    expect(await within(Promise.all(work), 50_000)).not.toBe("hung");
    expect(await count(db, "who = 'auto'")).toBe(120);
    expect(await count(db, "who LIKE 'tx%'")).toBe(40);
    expect(await count(db, `id = ANY('{${rolledBack.join(",")}}'::int[])`)).toBe(0);
    await db.sync();
    expect(await queued(db)).toBe(0);
    await expectSameRows(db, remote.sql, { acts: "id" });
    await noDoubleWrites();
    await db.close();
  });

  it("a sync while a long transaction() is open waits for it, the transaction's queries are not blocked, and a rollback leaves nothing anywhere", async () => {
    await reset();
    const db = await openSynced(remote.url, SCHEMA);
    await db.query(`INSERT INTO acts VALUES (1, 'committed')`);
    const release = deferred();
    const inTx = deferred();
    const tx = db
      .transaction(async (t) => {
        await t.query(`INSERT INTO acts VALUES (2, 'never committed')`);
        await t.query(`UPDATE acts SET v = 99 WHERE id = 1`);
        inTx.resolve();
        await release.promise;
        // Still usable while a sync waits for this transaction.
        expect(await within(t.query(`SELECT count(*)::int AS n FROM acts`), 5000)).toMatchObject({ rows: [{ n: 2 }] });
        throw new Error("roll back");
      })
      .catch((e: Error) => e.message);
    await inTx.promise;
    const sync = db.sync();
    // The sync cannot read the log inside the open transaction: it waits (it would otherwise push row 2).
    expect(await within(sync, 500)).toBe("hung");
    release.resolve();
    expect(await tx).toBe("roll back");
    expect(await within(sync, 30_000)).toMatchObject({ pushed: 1 });
    expect(await remote.sql`SELECT id, v FROM acts ORDER BY id`).toEqual([{ id: 1, v: 0 }]);
    await expectSameRows(db, remote.sql, { acts: "id" });
    await db.close();
  });

  it("a transaction opened while a sync pushes: the sync's own local writes wait for it, nothing is pushed twice", async () => {
    await reset();
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 20, concurrency: 2 } });
    await db.query(`INSERT INTO acts (id, who) SELECT g, 'bulk' FROM generate_series(1, 600) g`);
    const txDone = deferred<string>();
    db.once("sync:progress", () => {
      void db
        .transaction(async (t) => {
          await t.query(`UPDATE acts SET v = v + 1 WHERE id <= 300`);
          await new Promise((r) => setTimeout(r, 300));
          await t.query(`INSERT INTO acts VALUES (1000, 'rolled back')`);
          throw new Error("roll back");
        })
        .catch((e: Error) => txDone.resolve(e.message));
    });
    const result = await within(db.sync(), 30_000);
    expect(result).toMatchObject({ pushed: 600, rejected: 0 });
    expect(await txDone.promise).toBe("roll back");
    expect(await queued(db)).toBe(0); // the sync's clean-up was not rolled back with the user's transaction
    expect(await db.sync()).toMatchObject({ pushed: 0 });
    await expectSameRows(db, remote.sql, { acts: "id" });
    await noDoubleWrites();
    expect(await ledgerRows(remote.sql)).toBe(0);
    await db.close();
  });

  it("sync() from a transaction() callback fails at once with a clear error instead of waiting for itself", async () => {
    await reset();
    const db = await openSynced(remote.url, SCHEMA);
    const outcome = db.transaction(async (t) => {
      await t.query(`INSERT INTO acts VALUES (1, 'inside')`);
      return db.sync();
    });
    const settled = await within(
      outcome.catch((e: unknown) => e),
      10_000,
    );
    expect(settled).not.toBe("hung");
    expect(settled).toBeInstanceOf(OminipgError);
    expect(settled).toMatchObject({ code: "TRANSACTION_ACTIVE" });
    // status(), verify() and pull() likewise; refused before they start (no pull:start, no error event).
    const events: string[] = [];
    db.on("pull:start", () => events.push("pull:start"));
    db.on("error", (e) => events.push(e.code));
    const others = await within(
      db.transaction(async () =>
        Promise.all(
          [db.status(), db.verify(), db.pull()].map((p) => (p as Promise<unknown>).catch((e: OminipgError) => e.code)),
        ),
      ),
      10_000,
    );
    expect(others).toEqual(["TRANSACTION_ACTIVE", "TRANSACTION_ACTIVE", "TRANSACTION_ACTIVE"]);
    expect(events).toEqual([]);
    expect(await db.sync()).toMatchObject({ pushed: 0 }); // the failed transaction left nothing
    await db.close();
  });

  it("sync() from several async contexts at once runs once; calls right after it run again", async () => {
    await reset();
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 50 } });
    await db.query(`INSERT INTO acts (id, who) SELECT g, 'x' FROM generate_series(1, 500) g`);
    let starts = 0;
    db.on("sync:start", () => starts++);
    const results = await Promise.all([
      db.sync(),
      Promise.resolve().then(() => db.sync()),
      new Promise((r) => setImmediate(r)).then(() => db.sync()),
      db.transaction(async (t) => t.query(`SELECT 1`)).then(() => db.sync()),
    ]);
    expect(new Set(results).size).toBeLessThanOrEqual(2);
    expect([...new Set(results)].reduce((n, r) => n + r.pushed, 0)).toBe(500);
    expect(starts).toBeLessThanOrEqual(2);
    await noDoubleWrites();
    await db.close();
  });

  it("close() during a sync: the sync finishes or fails cleanly, close() returns, later calls get CLIENT_CLOSED", async () => {
    await reset();
    const db = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 25, concurrency: 2 } });
    await db.query(`INSERT INTO acts (id, who) SELECT g, 'x' FROM generate_series(1, 1000) g`);
    const sync = db.sync().catch((e: unknown) => e);
    await new Promise<void>((r) => db.once("sync:progress", () => r()));
    expect(await within(db.close(), 30_000)).not.toBe("hung");
    expect(await sync).toMatchObject({ pushed: 1000 });
    await expect(db.query(`SELECT 1`)).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
    await expect(db.sync()).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
    await db.close(); // idempotent
    await noDoubleWrites();
  });

  it("close() while a BEGIN through query() is open and a sync waits for it: no deadlock, the open transaction is rolled back", async () => {
    await reset();
    const db = await openSynced(remote.url, SCHEMA);
    await db.query(`INSERT INTO acts VALUES (1, 'committed')`);
    await db.query(`BEGIN`);
    await db.query(`INSERT INTO acts VALUES (2, 'open')`);
    const sync = db.sync().catch((e: unknown) => e);
    expect(await within(sync, 300)).toBe("hung"); // waits for the open transaction
    expect(await within(db.close(), 15_000)).not.toBe("hung");
    const outcome = await within(sync, 15_000);
    expect(outcome).not.toBe("hung");
    // Row 2 was never committed: it must not be on the remote, whatever the sync did.
    expect(await remote.sql`SELECT id FROM acts WHERE id = 2`).toEqual([]);
  });
});
