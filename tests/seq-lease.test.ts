import { afterAll, beforeAll, expect, it } from "vitest";
import { Ominipg, OminipgError } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";

let remote: TestDatabase;
beforeAll(async () => {
  remote = await createTestDatabase();
});
afterAll(async () => {
  await remote.drop();
});

const schemaSQL = [`CREATE TABLE IF NOT EXISTS notes (id SERIAL PRIMARY KEY, client text NOT NULL, n int NOT NULL)`];
const client = async () =>
  Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL,
    sequences: "lease",
    leaseSize: 5,
  });

it("leases disjoint id blocks so offline clients never mint the same SERIAL id", async () => {
  const a = await client();
  const b = await client();
  // Before any contact a leased sequence mints nothing: an id could collide.
  const early = await a.query(`INSERT INTO notes (client, n) VALUES ('a', 0)`).catch((e) => e);
  expect(early).toBeInstanceOf(OminipgError);
  expect(early.code).toBe("SEQUENCE_LEASE_EXHAUSTED");
  await a.sync();
  await b.sync();
  // The remote's own inserts keep working and never take a leased id.
  await remote.sql`INSERT INTO notes (client, n) VALUES ('server', 0)`;
  // Offline: each client writes as many rows as its two leased blocks hold, moving from block to block.
  for (let i = 0; i < 10; i++) {
    await a.query(`INSERT INTO notes (client, n) VALUES ('a', $1)`, [i]);
    await b.query(`INSERT INTO notes (client, n) VALUES ('b', $1)`, [i]);
  }
  const full = await a.query(`INSERT INTO notes (client, n) VALUES ('a', 99)`).catch((e) => e);
  expect(full.code).toBe("SEQUENCE_LEASE_EXHAUSTED");
  const aIds = (await a.query<{ id: number }>(`SELECT id FROM notes`)).rows.map((r) => r.id);
  const bIds = (await b.query<{ id: number }>(`SELECT id FROM notes`)).rows.map((r) => r.id);
  expect(aIds).toHaveLength(10);
  expect(bIds).toHaveLength(10);
  expect(aIds.filter((id) => bIds.includes(id))).toEqual([]);
  await a.sync();
  await b.sync();
  const rows = await remote.sql<
    { client: string; n: number }[]
  >`SELECT client, count(*)::int AS n FROM notes GROUP BY client ORDER BY client`;
  expect(rows).toEqual([
    { client: "a", n: 10 },
    { client: "b", n: 10 },
    { client: "server", n: 1 },
  ]);
  // After the sync a fresh lease lets the client write again.
  await a.query(`INSERT INTO notes (client, n) VALUES ('a', 100)`);
  await a.close();
  await b.close();
});

it("a script that runs out of its block is not run again once the sequence moved on: what it committed stays once", async () => {
  await remote.sql`TRUNCATE notes RESTART IDENTITY`;
  const a = await client();
  const b = await client();
  try {
    await a.sync(); // ids 1-10
    await b.sync(); // ids 11-20
    for (let i = 0; i < 6; i++) await a.query(`INSERT INTO notes (client, n) VALUES ('a', $1)`, [i]);
    await a.sync(); // a holds 7-10 and a block after b's: not adjacent
    const script =
      `INSERT INTO notes (client, n) VALUES ('script', 1); COMMIT; ` +
      `INSERT INTO notes (client, n) SELECT 'script', g FROM generate_series(2, 7) g`;
    const err = await a.query(script).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "2200H" });
    const { rows } = await a.query<{ n: number }>(`SELECT n FROM notes WHERE client = 'script' ORDER BY n`);
    expect(rows).toEqual([{ n: 1 }]);
    // The sequence did move to the next block (past b's): the next single statement takes an id of it.
    const next = await a.query<{ id: number }>(`INSERT INTO notes (client, n) VALUES ('a', 9) RETURNING id`);
    expect(next.rows[0]!.id).toBeGreaterThan(20);
  } finally {
    await a.close();
    await b.close();
  }
});

it("a synced table made after connect mints no id before a lease either", async () => {
  const late = `CREATE TABLE IF NOT EXISTS late_notes (id serial PRIMARY KEY, v text)`;
  await remote.sql.unsafe(late);
  const a = await client();
  try {
    await a.query(late);
    const early = await a.query(`INSERT INTO late_notes (v) VALUES ('a')`).catch((e: unknown) => e);
    expect(early).toMatchObject({ code: "SEQUENCE_LEASE_EXHAUSTED" });
    expect((await a.query(`SELECT count(*)::int AS n FROM late_notes`)).rows).toEqual([{ n: 0 }]);
    await a.sync();
    await remote.sql`INSERT INTO late_notes (v) VALUES ('server')`;
    await a.query(`INSERT INTO late_notes (v) VALUES ('a')`);
    expect(await a.sync()).toMatchObject({ rejected: 0 });
    expect(await remote.sql`SELECT v FROM late_notes ORDER BY v`).toEqual([{ v: "a" }, { v: "server" }]);
  } finally {
    await a.close();
  }
});

it("blocks leased at two syncs that follow each other are one run: a transaction's inserts may span them", async () => {
  const a = await client();
  await a.sync();
  await a.query(`INSERT INTO notes (client, n) SELECT 'a', g FROM generate_series(1, 6) g`);
  await a.sync(); // tops up with the block that follows: two rows of _ominipg_leases
  const ids = await a.transaction(async (tx) => {
    const r = await tx.query<{ id: number }>(
      `INSERT INTO notes (client, n) SELECT 'tx', g FROM generate_series(1, 6) g RETURNING id`,
    );
    return r.rows.map((x) => x.id);
  });
  expect(ids).toHaveLength(6); // it failed with "reached maximum value" at the first block's end
  expect(await a.sync()).toMatchObject({ pushed: 6, rejected: 0 });
  await a.close();
});
