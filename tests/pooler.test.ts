// A pooler in front of the server: PgBouncer in transaction pooling mode (started by the test harness,
// tests/harness/pooler.ts, with a pool of 2 server connections per database, so that client connections
// really take turns on server connections). Sync, verify, sequences and pull work through it: Ominipg keeps
// no session state and no server-side prepared statements across transactions. Skipped, with the reason
// printed, where pgbouncer is not installed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, poolerInfo, type TestDatabase } from "./harness/index.js";
import { expectSameRows } from "./sync-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS lists (id serial PRIMARY KEY, name text NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS entries (id int PRIMARY KEY, list_id int NOT NULL REFERENCES lists (id) ON DELETE CASCADE, body text, done boolean NOT NULL DEFAULT false)`,
];
const pooler = poolerInfo();
if ("skip" in pooler) console.log(`pooler.test: skipped: ${pooler.skip}`);

describe.skipIf("skip" in pooler)("PgBouncer in transaction pooling mode", () => {
  let remote: TestDatabase;
  let through: string;
  beforeAll(async () => {
    remote = await createTestDatabase();
    const u = new URL((pooler as { url: string }).url);
    u.pathname = new URL(remote.url).pathname;
    through = u.href;
  });
  afterAll(async () => {
    await remote.drop();
  });

  it("two clients, several batches in flight each, sync through the pooler: the remote equals each client", async () => {
    const open = async () => {
      const db = await Ominipg.connect({
        syncUrl: through,
        schemaSQL: SCHEMA,
        sync: { batchSize: 20, concurrency: 3 },
      });
      await db.query(`SET TimeZone TO 'UTC'`);
      return db;
    };
    const a = await open();
    const b = await open();
    try {
      // Disjoint ids per client (advance mode moves the remote sequence; ids are given explicitly here).
      for (const [k, db] of [a, b].entries()) {
        await db.query(
          `INSERT INTO lists (id, name) SELECT g, 'list ' || g FROM generate_series($1::int, $1::int + 4) g`,
          [k * 100 + 1],
        );
        await db.query(
          `INSERT INTO entries (id, list_id, body) SELECT g, $1::int + g % 5, 'entry ' || g FROM generate_series($2::int, $2::int + 299) g`,
          [k * 100 + 1, k * 10_000],
        );
        await db.query(`UPDATE entries SET done = true WHERE id % 3 = 0`);
        await db.query(`UPDATE entries SET id = id + 5000 WHERE id % 50 = 1`);
        await db.query(`DELETE FROM entries WHERE id % 7 = 0`);
        await db.query(`DELETE FROM lists WHERE id = $1`, [k * 100 + 5]);
      }
      for (let i = 0; i < 3; i++) {
        const [ra, rb] = await Promise.all([a.sync(), b.sync()]);
        expect(ra.rejected + rb.rejected).toBe(0);
        await a.query(`UPDATE entries SET body = body || '+' WHERE id % 11 = $1`, [i]);
        await b.query(`INSERT INTO entries VALUES ($1, 101, 'late')`, [20_000 + i]);
      }
      await Promise.all([a.sync(), b.sync()]);
      for (const [k, db] of [a, b].entries()) {
        const range = k === 0 ? `id < 100` : `id BETWEEN 100 AND 199`;
        const erange = k === 0 ? `list_id < 100` : `list_id BETWEEN 100 AND 199`;
        const local = (await db.query(`SELECT to_jsonb(t)::text AS r FROM lists t WHERE ${range} ORDER BY id`)).rows;
        const remoteRows = await remote.sql.unsafe(
          `SELECT to_jsonb(t)::text AS r FROM lists t WHERE ${range} ORDER BY id`,
        );
        expect(remoteRows).toEqual(local);
        const localE = (await db.query(`SELECT to_jsonb(t)::text AS r FROM entries t WHERE ${erange} ORDER BY id`))
          .rows;
        const remoteE = await remote.sql.unsafe(
          `SELECT to_jsonb(t)::text AS r FROM entries t WHERE ${erange} ORDER BY id`,
        );
        expect(remoteE).toEqual(localE);
      }
      expect(await remote.sql`SELECT count(*)::int AS n FROM _ominipg_ledger`).toEqual([{ n: 0 }]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("verify(), syncSequences(), pull() and leased sequences through the pooler", async () => {
    // The first test gave explicit ids, which a sequence does not see (as in plain PostgreSQL).
    await remote.sql`SELECT setval('lists_id_seq', 1000)`;
    const db = await Ominipg.connect({
      syncUrl: through,
      schemaSQL: SCHEMA,
      sequences: "lease",
      leaseSize: 4,
    });
    try {
      await db.query(`SET TimeZone TO 'UTC'`);
      await db.pull();
      await db.sync();
      for (let i = 0; i < 8; i++) await db.query(`INSERT INTO lists (name) VALUES ($1)`, [`leased ${i}`]); // two blocks of 4
      expect(await db.sync()).toMatchObject({ pushed: 8, rejected: 0 });
      expect((await db.verify()).ok).toBe(true);
      await remote.sql`UPDATE entries SET body = 'changed on the server' WHERE id = 2`;
      await db.pull();
      await expectSameRows(db, remote.sql, { lists: "id", entries: "id" });
      expect(await db.syncSequences()).toBeGreaterThanOrEqual(0);
    } finally {
      await db.close();
    }
  });
});
