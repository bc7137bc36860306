// Many clients: eight Ominipg instances, each with its own local database, write disjoint rows (their own)
// and overlapping rows (every client updates its own column of the same shared rows; all delete the same
// rows) to one remote, and sync concurrently, over several rounds. The remote ends as the expected merge;
// with sequences: "lease", no SERIAL id collides.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";

const CLIENTS = 8;
const ROUNDS = 3;
const SHARED = 40;
const DOOMED = [41, 42, 43, 44, 45];
const cols = Array.from({ length: CLIENTS }, (_, k) => `c${k}`);
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS shared (id int PRIMARY KEY, ${cols.map((c) => `${c} int NOT NULL DEFAULT 0`).join(", ")})`,
  `INSERT INTO shared (id) SELECT g FROM generate_series(1, ${SHARED + DOOMED.length}) g ON CONFLICT DO NOTHING`,
  `CREATE TABLE IF NOT EXISTS own (client int NOT NULL, n int NOT NULL, body text, PRIMARY KEY (client, n))`,
  `CREATE TABLE IF NOT EXISTS minted (id serial PRIMARY KEY, client int NOT NULL, n int NOT NULL, UNIQUE (client, n))`,
];

describe("reliability: many clients, one remote", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(async () => {
    await remote.drop();
  });

  it(
    `${CLIENTS} clients sync concurrently for ${ROUNDS} rounds: the remote is the expected merge, leased ids never collide`,
    { timeout: 240_000 },
    async () => {
      const clients: Ominipg[] = [];
      try {
        for (let k = 0; k < CLIENTS; k++) {
          clients.push(
            await Ominipg.connect({
              syncUrl: remote.url,
              schemaSQL: SCHEMA,
              sequences: "lease",
              leaseSize: 7,
              sync: { batchSize: 10, concurrency: 2, retry: { attempts: 8, baseDelayMs: 20, maxDelayMs: 300 } },
            }),
          );
        }
        // First contact: every client sets the remote up and leases its id blocks, all at once.
        await Promise.all(clients.map((c) => c.sync()));

        for (let round = 0; round < ROUNDS; round++) {
          await Promise.all(
            clients.map(async (db, k) => {
              // Overlapping rows: each client bumps its own column of every shared row.
              await db.query(`UPDATE shared SET c${k} = c${k} + 1 WHERE id <= $1`, [SHARED]);
              // Overlapping deletes: everyone deletes the same rows (a no-op remotely after the first).
              if (round === 1) await db.query(`DELETE FROM shared WHERE id = ANY($1::int[])`, [DOOMED]);
              // Disjoint rows: inserted, updated, some deleted, a key changed.
              await db.transaction(async (tx) => {
                for (let i = 0; i < 10; i++)
                  await tx.query(`INSERT INTO own VALUES ($1, $2, $3)`, [
                    k,
                    round * 100 + i,
                    `client ${k} round ${round}`,
                  ]);
                await tx.query(`UPDATE own SET body = body || ' updated' WHERE client = $1 AND n % 3 = 0`, [k]);
              });
              await db.query(`DELETE FROM own WHERE client = $1 AND n = $2`, [k, round * 100 + 9]);
              await db.query(`UPDATE own SET n = n + 50 WHERE client = $1 AND n = $2`, [k, round * 100 + 8]);
              // SERIAL ids from leased blocks (7 per block, 2 blocks held: 10 inserts cross blocks).
              for (let i = 0; i < 10; i++)
                await db.query(`INSERT INTO minted (client, n) VALUES ($1, $2)`, [k, round * 100 + i]);
            }),
          );
          // Everyone pushes at the same time.
          const results = await Promise.all(clients.map((c) => c.sync()));
          for (const r of results) expect(r.rejected).toBe(0);
        }

        // The expected merge.
        const shared = await remote.sql<Record<string, number>[]>`SELECT * FROM shared ORDER BY id`;
        expect(shared.map((r) => r["id"])).toEqual(Array.from({ length: SHARED }, (_, i) => i + 1));
        for (const row of shared) for (const c of cols) expect(row[c], `shared ${row["id"]}.${c}`).toBe(ROUNDS);

        const expectedOwn: string[] = [];
        for (let k = 0; k < CLIENTS; k++) {
          for (let round = 0; round < ROUNDS; round++) {
            for (let i = 0; i < 10; i++) {
              if (i === 9) continue;
              const n = round * 100 + i + (i === 8 ? 50 : 0);
              expectedOwn.push(`${k}/${n}`);
            }
          }
        }
        const own = await remote.sql<{ client: number; n: number }[]>`SELECT client, n FROM own`;
        expect(own.map((r) => `${r.client}/${r.n}`).sort()).toEqual(expectedOwn.sort());
        // Each client's own rows equal its local rows, body included.
        for (const [k, db] of clients.entries()) {
          const local = (
            await db.query<{ n: number; body: string }>(`SELECT n, body FROM own WHERE client = $1 ORDER BY n`, [k])
          ).rows;
          const remoteRows = await remote.sql`SELECT n, body FROM own WHERE client = ${k} ORDER BY n`;
          expect(remoteRows).toEqual(local);
        }

        // Leased ids: every client's rows arrived, with ids no other client used.
        const minted = await remote.sql<{ id: number; client: number }[]>`SELECT id, client FROM minted`;
        expect(minted.length).toBe(CLIENTS * ROUNDS * 10);
        expect(new Set(minted.map((r) => r.id)).size).toBe(minted.length);
        for (const [k, db] of clients.entries()) {
          const local = (
            await db.query<{ id: number }>(`SELECT id FROM minted WHERE client = $1 ORDER BY id`, [k])
          ).rows.map((r) => r.id);
          expect(
            minted
              .filter((r) => r.client === k)
              .map((r) => r.id)
              .sort((a, b) => a - b),
          ).toEqual(local);
        }
        expect(await remote.sql`SELECT count(*)::int AS n FROM _ominipg_ledger`).toEqual([{ n: 0 }]);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    },
  );

  it(`${CLIENTS} clients meeting a fresh server at the same moment all set it up (schemaSQL and the ledger)`, async () => {
    const fresh = await createTestDatabase();
    try {
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, async (_, k) => {
          const db = await Ominipg.connect({
            syncUrl: fresh.url,
            schemaSQL: SCHEMA,
            sync: { retry: { attempts: 1 } },
          });
          await db.query(`INSERT INTO own VALUES ($1, 1, 'first contact')`, [k]);
          return db;
        }),
      );
      try {
        const results = await Promise.all(clients.map((db) => db.sync()));
        expect(results.map((r) => r.pushed)).toEqual(clients.map(() => 1));
        expect((await fresh.sql`SELECT count(*)::int AS n FROM own`)[0]).toEqual({ n: CLIENTS });
      } finally {
        await Promise.all(clients.map((db) => db.close()));
      }
    } finally {
      await fresh.drop();
    }
  });
});
