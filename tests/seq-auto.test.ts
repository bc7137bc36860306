// The default `sequences: "auto"`: SERIAL / identity ids come from blocks each client leases on the remote
// sequence at every sync, so clients that synced once never mint the server's or each other's ids; an insert
// never fails for want of a lease (before the first one, or past the blocks, ids are minted locally: those are
// the cases a `warning` event reports). `sequences: "advance"` warns that its ids can collide.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Ominipg, OminipgWarning } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { openSynced } from "./sync-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, client text NOT NULL, n int NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS tags (name text PRIMARY KEY)`,
];

let remote: TestDatabase;
beforeAll(async () => {
  remote = await createTestDatabase();
  for (const s of SCHEMA) await remote.sql.unsafe(s);
});
afterAll(async () => {
  await remote.drop();
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
  await remote.sql`TRUNCATE items, tags RESTART IDENTITY`;
});

async function client(url = remote.url, extra: Parameters<typeof openSynced>[2] = {}, schema = SCHEMA) {
  const db = await openSynced(url, schema, extra);
  cleanups.push(() => db.close());
  const warnings: OminipgWarning[] = [];
  db.on("warning", (w) => warnings.push(w));
  return { db, warnings };
}

/** A remote database of the test's own, with `schema` on it, dropped after the test. */
async function ownDatabase(schema: string[]): Promise<TestDatabase> {
  const own = await createTestDatabase();
  cleanups.push(() => own.drop());
  for (const s of schema) await own.sql.unsafe(s);
  return own;
}

async function ids(db: Ominipg): Promise<number[]> {
  return (await db.query<{ id: number }>(`SELECT id FROM items ORDER BY id`)).rows.map((r) => r.id);
}

describe('the default, sequences: "auto"', () => {
  it("clients that synced once mint disjoint ids, and none the server hands out: no collision, nothing rejected", async () => {
    const a = await client();
    const b = await client();
    // Before any contact inserts work (ids minted locally), unlike sequences: "lease".
    await a.db.query(`INSERT INTO items (client, n) VALUES ('a', 0)`);
    await a.db.sync();
    await b.db.sync();
    await b.db.pull();
    // Offline, both insert; meanwhile the server inserts its own rows.
    for (let i = 1; i <= 5; i++) {
      await a.db.query(`INSERT INTO items (client, n) VALUES ('a', $1)`, [i]);
      await b.db.query(`INSERT INTO items (client, n) VALUES ('b', $1)`, [i]);
    }
    await remote.sql`INSERT INTO items (client, n) SELECT 'server', g FROM generate_series(1, 5) g`;
    const [aIds, bIds] = [await ids(a.db), await ids(b.db)];
    expect(aIds.filter((id) => id !== 1 && bIds.includes(id))).toEqual([]);
    for (const db of [a.db, b.db]) expect(await db.sync()).toMatchObject({ rejected: 0, conflicts: 0 });
    expect(await remote.sql`SELECT client, count(*)::int AS n FROM items GROUP BY client ORDER BY client`).toEqual([
      { client: "a", n: 6 },
      { client: "b", n: 5 },
      { client: "server", n: 5 },
    ]);
    // A pull does not move a leased sequence out of its block: the next id is still the block's.
    await a.db.pull();
    const [next] = (await a.db.query<{ id: number }>(`INSERT INTO items (client, n) VALUES ('a', 9) RETURNING id`))
      .rows;
    expect(next!.id).toBe(Math.max(...aIds) + 1);
    expect(a.warnings).toEqual([]);
    expect(b.warnings).toEqual([]);
  });

  it("the issue's case: a local insert and a server insert no longer both get id 5", async () => {
    await remote.sql`INSERT INTO items (client, n) SELECT 'server', g FROM generate_series(1, 4) g`;
    const a = await client(remote.url, { sync: { conflicts: "overwrite" } });
    await a.db.pull();
    await a.db.sync();
    await a.db.query(`INSERT INTO items (client, n) VALUES ('a', 5)`);
    await remote.sql`INSERT INTO items (client, n) VALUES ('server', 5)`;
    expect(await a.db.sync()).toMatchObject({ rejected: 0, conflicts: 0 });
    expect(await remote.sql`SELECT client, n FROM items WHERE n = 5 ORDER BY client`).toEqual([
      { client: "a", n: 5 },
      { client: "server", n: 5 },
    ]);
  });

  it("a later block not adjacent to the current one (another client leased in between): no id past the blocks", async () => {
    const a = await client(remote.url, { leaseSize: 3 });
    const b = await client(remote.url, { leaseSize: 3 });
    await a.db.sync(); // a holds 1-6
    await b.db.sync(); // b holds 7-12
    const insert = async (c: typeof a, n: number) => {
      for (let i = 0; i < n; i++)
        await c.db.query(`INSERT INTO items (client, n) VALUES ($1, $2)`, [c === a ? "a" : "b", i]);
    };
    await insert(a, 4);
    await a.db.sync(); // 2 ids of 1-6 left: a leases 13-16, so its sequence moves there (5 and 6 are abandoned)
    await insert(a, 4);
    await insert(b, 4);
    const [aIds, bIds] = [await ids(a.db), await ids(b.db)];
    expect(aIds.filter((id) => bIds.includes(id))).toEqual([]);
    for (const c of [a, b]) expect(await c.db.sync()).toMatchObject({ pushed: 4, rejected: 0 });
    expect(await remote.sql`SELECT count(*)::int AS n FROM items`).toEqual([{ n: 12 }]);
    expect(a.warnings).toEqual([]);
    expect(b.warnings).toEqual([]);
  });

  it("more ids than the leased blocks held between two syncs: they still work, and a warning says so", async () => {
    const a = await client(remote.url, { leaseSize: 2 });
    await a.db.sync();
    for (let i = 0; i < 6; i++) await a.db.query(`INSERT INTO items (client, n) VALUES ('a', $1)`, [i]);
    await a.db.sync();
    expect(a.warnings).toMatchObject([{ code: "SEQUENCE_LEASE_OVERRUN", table: "public.items" }]);
    expect(a.warnings[0]!.message).toContain("leaseSize");
    expect(await remote.sql`SELECT count(*)::int AS n FROM items`).toEqual([{ n: 6 }]);
  });
  it("a sequence found past its blocks when the database opens (a crash skips up to 32 values) is warned of too", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ominipg-seq-"));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const first = await client(remote.url, { url: dir, leaseSize: 2 });
    await first.db.sync();
    // What crash recovery does to a sequence: its next value is up to 32 past the last one handed out.
    await first.db.query(`SELECT setval('items_id_seq', 40)`);
    await first.db.close();
    const again = await client(remote.url, { url: dir, leaseSize: 2 });
    await again.db.sync();
    expect(again.warnings).toMatchObject([{ code: "SEQUENCE_LEASE_OVERRUN", table: "public.items" }]);
  });
});

describe("leases while the server inserts", () => {
  it("a lease is one run of ids, not pieces between the server's: a client stays inside it", async () => {
    const { db, warnings } = await client(remote.url, { leaseSize: 4000 });
    let stop = false;
    const writer = async () => {
      while (!stop) await remote.sql`INSERT INTO items (client, n) SELECT 'server', g FROM generate_series(1, 20) g`;
    };
    const writers = [writer(), writer()];
    await new Promise((r) => setTimeout(r, 50));
    await db.sync();
    stop = true;
    await Promise.all(writers);
    // Without holding the server's inserts off, the 8,000 ids came in hundreds of pieces, of which the sequence
    // could follow only the last: the inserts below ran into the server's ids and were refused.
    expect((await db.query(`SELECT (hi - lo + 1)::int AS n FROM _ominipg_leases`)).rows).toEqual([{ n: 8000 }]);
    await db.query(`INSERT INTO items (client, n) SELECT 'a', g FROM generate_series(1, 3000) g`);
    expect(await db.sync()).toMatchObject({ pushed: 3000, rejected: 0 });
    expect(warnings).toEqual([]);
  });
});

describe("a lease behind a long write", () => {
  it("does not wait for a transaction writing the table: the ids are taken without holding inserts off", async () => {
    const writer = await remote.sql.reserve();
    try {
      await writer.unsafe(`BEGIN; INSERT INTO items (client, n) VALUES ('server', 0)`).simple();
      const { db, warnings } = await client(remote.url, { leaseSize: 10 });
      await db.sync(); // its lock timed out: caught, not the sync's failure
      expect((await db.query(`SELECT sum(hi - lo + 1)::int AS n FROM _ominipg_leases`)).rows).toEqual([{ n: 20 }]);
      expect(warnings).toEqual([]);
      await writer.unsafe(`COMMIT`);
    } finally {
      writer.release();
    }
  });
});

describe("a remote sequence RESTARTed near its MAXVALUE", () => {
  it("is leased the ids it has left from where it was restarted, not failed part-way", async () => {
    const schema = [
      `CREATE TABLE IF NOT EXISTS capped (id int GENERATED BY DEFAULT AS IDENTITY (MAXVALUE 100) PRIMARY KEY)`,
    ];
    const own = await ownDatabase(schema);
    await own.sql.unsafe(`ALTER TABLE capped ALTER COLUMN id RESTART WITH 95`);
    const { db, warnings } = await client(own.url, { leaseSize: 10 }, schema);
    await db.sync();
    // It counted from the START (1): asked for 20 ids, failed at 101, having burnt the 6 left.
    expect(warnings).toEqual([]);
    expect((await db.query(`SELECT lo::int AS lo, hi::int AS hi FROM _ominipg_leases`)).rows).toEqual([
      { lo: 95, hi: 100 },
    ]);
  });
});

describe("ids pushed past the remote sequence's MAXVALUE", () => {
  it("move it to its MAXVALUE, not past it: the syncs go on", async () => {
    const schema = [
      `CREATE TABLE IF NOT EXISTS bounded (id int GENERATED BY DEFAULT AS IDENTITY (MAXVALUE 30) PRIMARY KEY)`,
    ];
    const own = await ownDatabase(schema);
    const { db } = await client(own.url, { sequences: "advance" }, schema);
    await db.query(`ALTER SEQUENCE bounded_id_seq MAXVALUE 100`); // the local one bounded otherwise
    await db.query(`INSERT INTO bounded SELECT FROM generate_series(1, 40)`);
    // setval(40) on a sequence bounded at 30 failed, and every sync with it.
    expect(await db.sync()).toMatchObject({ pushed: 40 });
    expect(await db.sync()).toMatchObject({ pushed: 0 });
    expect(await own.sql`SELECT last_value::int AS v, is_called FROM bounded_id_seq`).toEqual([
      { v: 30, is_called: true },
    ]);
  });
});

describe("a sequence no column owns, called by a DEFAULT", () => {
  it("is leased, moved past pushed and pulled ids, like a SERIAL's", async () => {
    const schema = [
      `CREATE SCHEMA IF NOT EXISTS ids`,
      `CREATE SEQUENCE IF NOT EXISTS ids.ticket_seq`,
      `CREATE TABLE IF NOT EXISTS tickets (id bigint PRIMARY KEY DEFAULT nextval('ids.ticket_seq'), title text)`,
    ];
    const own = await ownDatabase(schema);
    const open = async (sequences: "auto" | "advance") =>
      (await client(own.url, { sequences, leaseSize: 100, sync: { onReject: "skip" } }, schema)).db;
    const [a, b] = [await open("auto"), await open("auto")];
    await a.sync();
    await b.sync();
    await own.sql`INSERT INTO tickets (title) VALUES ('server')`;
    await a.query(`INSERT INTO tickets (title) VALUES ('a')`);
    await b.query(`INSERT INTO tickets (title) VALUES ('b')`);
    // Without the DEFAULT's sequence, a, b and the server all took id 1.
    expect(await a.sync()).toMatchObject({ pushed: 1, rejected: 0 });
    expect(await b.sync()).toMatchObject({ pushed: 1, rejected: 0 });
    expect(await own.sql`SELECT count(DISTINCT id)::int AS n FROM tickets`).toEqual([{ n: 3 }]);
    // "advance": a pull moves the local sequence past the pulled ids, a push moves the remote one past its own.
    const c = await open("advance");
    await c.pull();
    await c.query(`INSERT INTO tickets (title) VALUES ('c')`); // failed with a duplicate key
    expect(await c.sync()).toMatchObject({ pushed: 1, rejected: 0 });
    await own.sql`INSERT INTO tickets (title) VALUES ('server again')`; // failed with a duplicate key
    expect(await own.sql`SELECT count(DISTINCT id)::int AS n FROM tickets`).toEqual([{ n: 5 }]);
  });
});

describe("warnings about configurations that can still collide", () => {
  it('sequences: "advance": one warning per table keyed by a sequence, at the first sync, once', async () => {
    const a = await client(remote.url, { sequences: "advance" });
    await a.db.sync();
    await a.db.sync();
    expect(a.warnings).toEqual([
      { code: "SEQUENCE_IDS_MAY_COLLIDE", table: "public.items", message: expect.stringContaining("advance") },
    ]);
  });

  it('"auto" for a column the remote gives no sequence: inserts work, a warning says why, once', async () => {
    // Locally SERIAL, on the remote a plain integer key: nothing to lease from.
    const local = [...SCHEMA, `CREATE TABLE IF NOT EXISTS counters (id serial PRIMARY KEY, n int NOT NULL)`];
    await remote.sql`CREATE TABLE IF NOT EXISTS counters (id int PRIMARY KEY, n int NOT NULL)`;
    cleanups.push(async () => {
      await remote.sql`DROP TABLE counters`;
    });
    const db = await openSynced(remote.url, local, { remoteSchema: "skip" });
    cleanups.push(() => db.close());
    const warnings: OminipgWarning[] = [];
    db.on("warning", (w) => warnings.push(w));
    await db.query(`INSERT INTO counters (n) VALUES (1)`);
    await expect(db.sync()).resolves.toMatchObject({ pushed: 1 });
    await db.query(`INSERT INTO counters (n) VALUES (2)`);
    await db.sync();
    expect(warnings).toMatchObject([{ code: "SEQUENCE_LEASE_FAILED", table: "public.counters" }]);
    expect(warnings[0]!.message).toContain("has no sequence");
    expect(await remote.sql`SELECT id, n FROM counters ORDER BY n`).toEqual([
      { id: 1, n: 1 },
      { id: 2, n: 2 },
    ]);
  });
});

describe("leases when the remote refuses a change", () => {
  // A CHECK only the remote has refuses the change (REMOTE_REJECTED, onReject "stop"): the push stops there.
  const REFUSING = [...SCHEMA, `CREATE TABLE IF NOT EXISTS checked (k text PRIMARY KEY, v int)`];

  for (const sequences of ["auto", "lease"] as const) {
    it(`${sequences}: a push stopped by a refused change of another table still leases ids`, async () => {
      const own = await ownDatabase(REFUSING);
      await own.sql`ALTER TABLE checked ADD CONSTRAINT positive CHECK (v > 0)`;
      const a = await client(own.url, { sequences, leaseSize: 5 }, REFUSING);
      const b = await client(own.url, { sequences, leaseSize: 5 }, REFUSING);
      await a.db.query(`INSERT INTO checked VALUES ('bad', -1)`);
      await expect(a.db.sync()).rejects.toMatchObject({ code: "REMOTE_REJECTED" });
      await b.db.sync();
      const insert = (db: Ominipg) =>
        db.query<{ id: number }>(`INSERT INTO items (client, n) VALUES ('x', 1) RETURNING id`);
      const [ofA, ofB] = [(await insert(a.db)).rows[0]!.id, (await insert(b.db)).rows[0]!.id];
      expect(ofA).not.toBe(ofB);
      expect(a.warnings).toEqual([]);
    });
  }

  it(`"lease": a table's own MAXVALUE reached is PostgreSQL's error, not a lease running out`, async () => {
    const schema = [
      ...SCHEMA,
      `CREATE TABLE IF NOT EXISTS scratch (id smallint GENERATED BY DEFAULT AS IDENTITY (MAXVALUE 2) PRIMARY KEY)`,
    ];
    const { db } = await client(
      remote.url,
      { sequences: "lease", leaseSize: 5, sync: { exclude: ["scratch"] } },
      schema,
    );
    await db.query(`INSERT INTO scratch DEFAULT VALUES`);
    await db.query(`INSERT INTO scratch DEFAULT VALUES`);
    await expect(db.query(`INSERT INTO scratch DEFAULT VALUES`)).rejects.toMatchObject({ code: "2200H" });
    // A leased sequence that runs out is still the lease's error.
    await expect(db.query(`INSERT INTO items (client, n) VALUES ('x', 1)`)).rejects.toMatchObject({
      code: "SEQUENCE_LEASE_EXHAUSTED",
    });
  });
});

describe("TRUNCATE ... RESTART IDENTITY with leased ids", () => {
  for (const sequences of ["auto", "lease"] as const) {
    it(`${sequences}: the sequences do not restart at their start, which another client's block holds`, async () => {
      const own = await ownDatabase(SCHEMA);
      const b = await client(own.url, { sequences, leaseSize: 5 });
      await b.db.sync(); // b holds ids 1-10
      const a = await client(own.url, { sequences, leaseSize: 5 });
      await a.db.sync(); // a holds 11-20
      await a.db.query(`INSERT INTO items (client, n) VALUES ('a', 1)`);
      await a.db.query(`TRUNCATE items RESTART IDENTITY`);
      await a.db.query(`INSERT INTO items (client, n) VALUES ('a', 2)`);
      await b.db.query(`INSERT INTO items (client, n) VALUES ('b', 1)`);
      const [[ofA], [ofB]] = [await ids(a.db), await ids(b.db)];
      expect(ofA).toBeGreaterThan(10);
      expect(ofB).toBeLessThanOrEqual(10);
      expect(await a.db.sync()).toMatchObject({ rejected: 0 });
      expect(await b.db.sync()).toMatchObject({ rejected: 0 });
      expect(await own.sql`SELECT client FROM items ORDER BY id`).toEqual([{ client: "b" }, { client: "a" }]);
      // In one script, an insert after the truncation takes its id where the restart leaves the sequence.
      await a.db.query(`TRUNCATE items RESTART IDENTITY; INSERT INTO items (client, n) VALUES ('a', 3)`);
      expect((await ids(a.db))[0]).toBeGreaterThan(10);
      // A script that fails after the truncation is undone whole, as PostgreSQL runs it: nothing truncated, nothing
      // logged; with a COMMIT of its own too.
      const before = await a.db.query(`SELECT count(*)::int AS n FROM _sync_queue`);
      for (const end of ["", "; COMMIT"])
        await expect(
          a.db.query(`TRUNCATE items RESTART IDENTITY; INSERT INTO items (client, n) VALUES ('a', NULL)${end}`),
        ).rejects.toThrow(/null value/);
      expect(await ids(a.db)).toHaveLength(1);
      expect(await a.db.query(`SELECT count(*)::int AS n FROM _sync_queue`)).toMatchObject({ rows: before.rows });
    });
  }
});
