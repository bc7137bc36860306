// Runs of inserts pushed by COPY: every scalar type exactly, the fall-back to the windows (a key the remote
// has, a row it refuses, tables and images COPY cannot take, also in the middle of a batch), foreign keys
// across chunks and batches, exactly once, and the log emptied afterwards. `batches: 1` for many rows at batchSize 2 is how a test knows COPY
// carried them (the windows would need one batch per 2 rows).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestHooks } from "../src/core/options.js";
import { ConfigError, SyncError, type Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, ledgerRows, openSynced, queued, startProxy } from "./sync-helpers.js";

/** Fault injection handed to the clients this file opens (connect option `testHooks`). */
const testHooks: TestHooks = {};

const SCHEMA = [
  `DO $$ BEGIN CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
  `CREATE TABLE IF NOT EXISTS scalars (
     id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     big int8, small int2, num numeric, fixed numeric(30, 10), f8 float8, f4 real, j jsonb, js json, b bytea,
     tstz timestamptz, ts timestamp, d date, tm time, iv interval, u uuid, m mood, flag boolean, addr inet,
     r int4range, c char(3), vc varchar(5), tsv tsvector, t text,
     doubled numeric GENERATED ALWAYS AS (num * 2) STORED)`,
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, n int NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS tagged (id int PRIMARY KEY, tags int[])`,
  `CREATE TABLE IF NOT EXISTS labels (id int PRIMARY KEY)`,
  `CREATE TABLE IF NOT EXISTS parents (id int PRIMARY KEY, up int REFERENCES parents (id))`,
  `CREATE TABLE IF NOT EXISTS children (id int PRIMARY KEY, parent int NOT NULL REFERENCES parents (id))`,
];

const SCALAR_ROWS = [
  `INSERT INTO scalars (big, small, num, fixed, f8, f4, j, js, b, tstz, ts, d, tm, iv, u, m, flag, addr, r, c, vc, tsv, t)
   VALUES (9007199254740993, -32768, 123456789012345678901234567890.123456789012345678901234567890, 12345678901234567890.0123456789,
           0.1, 3.4028235e38, '{"big": 123456789012345678901234567890, "s": "x\\"y\\\\z\\ttab", "u": "\\u00e9"}',
           '{"b": 1,  "a": [2, 3.50],   "a": "dup"}', '\\x00ff5c09'::bytea,
           '2024-02-29 12:34:56.123456+05:30', '2024-02-29 12:34:56.654321', '2024-02-29', '23:59:59.999999',
           '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', true,
           '192.168.0.1/24', '[1,10)', 'ab', 'xyz', 'a fat cat', E'tab\\there, new\\nline, cr\\r, back\\\\slash, "quotes"')`,
  `INSERT INTO scalars DEFAULT VALUES`, // every column NULL
  `INSERT INTO scalars (num, f8, f4, j, js, b, tstz, ts, d, t) VALUES ('NaN', 'NaN', '-Infinity', '"a string"', '{}', '\\x'::bytea, 'infinity', '-infinity', '4713-01-01 BC', 'NULL')`,
  // json text kept as written, whitespace around it included; a control character (\u0001 in the image), quotes, a backslash, a 4-byte character.
  `INSERT INTO scalars (js, t) VALUES (E' {"a":\\n 1}\\t ', E'\\x01ctl "q" \\\\ 😀')`,
  `INSERT INTO scalars (js, t) VALUES (' 5 ', '😀')`,
  ...[`'\\N'`, `''`, `' spaced '`, `'ünï €'`, `'\\\\'`, `'{"looks": "like json"}'`, `'a	b'`, `'null'`].map(
    (t) => `INSERT INTO scalars (t, js) VALUES (E${t}, '[1,  2]')`,
  ),
];

describe("sync: runs of inserts by COPY", () => {
  let remote: TestDatabase;
  let db: Ominipg;
  beforeAll(async () => {
    remote = await createTestDatabase();
    db = await openSynced(remote.url, SCHEMA, { testHooks, sync: { batchSize: 2 } });
    await db.sync();
  });
  afterAll(async () => {
    testHooks.afterRemoteCommit = undefined;
    await db?.close();
    await remote.drop();
  });

  it("carries every scalar type exactly, json text as written, identity keys as they are, generated columns recomputed", async () => {
    for (const sql of SCALAR_ROWS) await db.query(sql);
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: SCALAR_ROWS.length, applied: SCALAR_ROWS.length, batches: 1, rejected: 0 });
    await expectSameRows(db, remote.sql, { scalars: "id" });
    // Row text too: numeric scale, float digits, char padding, json exactly as written.
    const select = `SELECT ROW(scalars.*)::text AS t FROM scalars ORDER BY id`;
    const local = (await db.query<{ t: string }>(select)).rows.map((r) => r.t);
    const rows = await remote.sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL TimeZone TO 'UTC'`);
      return tx.unsafe<{ t: string }[]>(select);
    });
    expect(rows.map((r) => r.t)).toEqual(local);
    expect(await remote.sql`SELECT js::text AS js FROM scalars WHERE id = 1`).toEqual([
      { js: '{"b": 1,  "a": [2, 3.50],   "a": "dup"}' },
    ]);
    expect(await queued(db)).toBe(0);
  });

  it("copyBatchSize cuts a run into remote transactions; 0 turns COPY off; anything else is refused", async () => {
    const copied = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 2, copyBatchSize: 4 } });
    await copied.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(1, 10) g`);
    expect(await copied.sync()).toMatchObject({ pushed: 10, applied: 10, batches: 3 });
    await copied.close();
    const upserted = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 2, copyBatchSize: 0 } });
    await upserted.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(11, 20) g`);
    expect(await upserted.sync()).toMatchObject({ pushed: 10, applied: 10, batches: 5 });
    await upserted.close();
    await expect(openSynced(remote.url, SCHEMA, { sync: { copyBatchSize: -1 } })).rejects.toBeInstanceOf(ConfigError);
    await remote.sql`TRUNCATE items`;
  });

  it("a run whose rows change later in the same sync is left to the windows, which fold each row into one write", async () => {
    await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(1, 10) g`);
    await db.query(`UPDATE items SET n = n + 100`);
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: 20, applied: 10, batches: 5 });
    await expectSameRows(db, remote.sql, { items: "id" });
  });

  it("a key the remote already has: the batch goes to the windows, which settle the conflict", async () => {
    await remote.sql`INSERT INTO items VALUES (13, -13)`;
    const conflicts: unknown[] = [];
    db.on("conflict", (c) => conflicts.push(c));
    await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(11, 20) g`);
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: 10, applied: 10, conflicts: 1, rejected: 0 });
    expect(conflicts).toEqual([expect.objectContaining({ table: "public.items", key: { id: 13 } })]);
    await expectSameRows(db, remote.sql, { items: "id" });
    expect(await ledgerRows(remote.sql)).toBe(0);
  });

  it("rows the remote refuses: the windows find them, and the rest is applied", async () => {
    await remote.sql`ALTER TABLE items ADD CONSTRAINT n_small CHECK (n < 1000)`;
    try {
      const skipping = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 2, onReject: "skip" } });
      await skipping.query(
        `INSERT INTO items (id, n) SELECT g, CASE WHEN g = 25 THEN 5000 ELSE g END FROM generate_series(21, 30) g`,
      );
      expect(await skipping.sync()).toMatchObject({ pushed: 10, applied: 9, rejected: 1 });
      expect(await remote.sql`SELECT count(*)::int AS n FROM items WHERE id BETWEEN 21 AND 30`).toEqual([{ n: 9 }]);
      expect((await skipping.query(`SELECT row_key FROM _ominipg_rejected`)).rows).toEqual([{ row_key: { id: 25 } }]);
      await skipping.close();
    } finally {
      await remote.sql`ALTER TABLE items DROP CONSTRAINT n_small`;
      await remote.sql`DELETE FROM items WHERE id BETWEEN 21 AND 30`;
    }
  });

  it("a COPY the remote's statement_timeout cancels at each attempt: the windows push the rows in batches", async () => {
    const database = new URL(remote.url).pathname.slice(1);
    await remote.sql.unsafe(
      `CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$;
       CREATE TRIGGER slow BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION slow_row();
       ALTER DATABASE ${database} SET statement_timeout = '300ms';`,
    );
    try {
      const timed = await openSynced(remote.url, SCHEMA, {
        sync: { batchSize: 50, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } },
      });
      await timed.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(5001, 5300) g`); // ~600 ms by COPY
      expect(await timed.sync()).toMatchObject({ pushed: 300, applied: 300, batches: 6 });
      expect(await remote.sql`SELECT count(*)::int AS n FROM items WHERE id > 5000`).toEqual([{ n: 300 }]);
      await timed.close();
    } finally {
      await remote.sql.unsafe(
        `ALTER DATABASE ${database} RESET statement_timeout; DROP TRIGGER slow ON items; DROP FUNCTION slow_row();
         DELETE FROM items WHERE id > 5000`,
      );
    }
  });

  it("parents and children in one run, cut into batches: each arrives after what it references", async () => {
    const fk = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 1, copyBatchSize: 3 } });
    await fk.query(`INSERT INTO parents (id) VALUES (100)`);
    for (let i = 101; i <= 120; i++) {
      await fk.query(`INSERT INTO parents (id, up) VALUES ($1, $2)`, [i, i - 1]); // a chain through the batches
      await fk.query(`INSERT INTO children VALUES ($1, $2)`, [i, i]);
    }
    const result = await fk.sync();
    expect(result).toMatchObject({ pushed: 41, applied: 41, batches: 14, rejected: 0 });
    await expectSameRows(fk, remote.sql, { parents: "id", children: "id" });
    await fk.close();
  });

  it("a batch of many chunks: parents and children interleaved, each chunk's parents first, one remote transaction", async () => {
    await remote.sql`TRUNCATE parents, children`;
    const fk = await openSynced(remote.url, SCHEMA, { sync: { batchSize: 10, copyBatchSize: 20_000 } });
    // 12 blocks of 500 parents (a chain through all of them) and 500 children of the block before: chunks (a few
    // thousand entries) hold both tables, and rows that reference rows of earlier chunks.
    for (let block = 0; block < 12; block++) {
      const lo = 1000 + block * 500;
      await fk.query(
        `INSERT INTO parents (id, up) SELECT g, nullif(g - 1, 999) FROM generate_series($1::int, $1::int + 499) g`,
        [lo],
      );
      await fk.query(
        `INSERT INTO children SELECT g, greatest(g - 500, 1000) FROM generate_series($1::int, $1::int + 499) g`,
        [lo],
      );
    }
    const progress: number[] = [];
    fk.on("sync:progress", ({ done }) => progress.push(done));
    expect(await fk.sync()).toMatchObject({ pushed: 12_000, applied: 12_000, batches: 1, rejected: 0 });
    // Progress as the chunks go out, not only when the batch commits; always up, ending at the total.
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.at(-1)).toBe(12_000);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThan(progress[i - 1]!);
    await expectSameRows(fk, remote.sql, { parents: "id", children: "id" });
    expect(await queued(fk)).toBe(0);
    await fk.close();
  });

  it("a chunk COPY cannot take in the middle of a batch: what came before is applied (a lost COMMIT reply included), the rest goes through the windows", async () => {
    const schema = [
      `CREATE TABLE IF NOT EXISTS streamed (id int PRIMARY KEY, n int NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS streamed_tags (id int PRIMARY KEY, tags int[])`,
    ];
    for (const ddl of schema) await remote.sql.unsafe(ddl);
    await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS streamed_hits (id int PRIMARY KEY, n int NOT NULL)`);
    await remote.sql.unsafe(`CREATE OR REPLACE FUNCTION count_streamed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      INSERT INTO streamed_hits VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = streamed_hits.n + 1; RETURN NULL; END $$`);
    await remote.sql.unsafe(
      `CREATE OR REPLACE TRIGGER streamed_hits AFTER INSERT OR UPDATE ON streamed FOR EACH ROW EXECUTE FUNCTION count_streamed()`,
    );
    const mixed = await openSynced(remote.url, schema, { testHooks, sync: { batchSize: 500, copyBatchSize: 20_000 } });
    let commits = 0;
    testHooks.afterRemoteCommit = () => {
      if (commits++ === 0) throw Object.assign(new Error("connection reset after COMMIT"), { code: "ECONNRESET" });
    };
    try {
      // The first chunks (a few thousand entries each) are all `streamed`; the last holds the rest of it and rows with an array.
      await mixed.query(`INSERT INTO streamed SELECT g, g FROM generate_series(1, 6000) g`);
      await mixed.query(`INSERT INTO streamed_tags SELECT g, ARRAY[g] FROM generate_series(1, 10) g`);
      const result = await mixed.sync();
      expect(result).toMatchObject({ pushed: 6010, rejected: 0 });
      expect(result.batches).toBeGreaterThan(1); // the windows took the second chunk
      expect(commits).toBeGreaterThan(2);
      expect(
        await remote.sql`SELECT min(n)::int AS min, max(n)::int AS max, count(*)::int AS rows FROM streamed_hits`,
      ).toEqual([{ min: 1, max: 1, rows: 6000 }]);
      await expectSameRows(mixed, remote.sql, { streamed: "id", streamed_tags: "id" });
      expect(await queued(mixed)).toBe(0);
      expect(await ledgerRows(remote.sql)).toBe(0);
    } finally {
      testHooks.afterRemoteCommit = undefined;
      await mixed.close();
    }
  });

  it("ids left unused by writes rolled back (a gap wider than a chunk) are skipped, not taken for the end of the run", async () => {
    const schema = [`CREATE TABLE IF NOT EXISTS gaps (id int PRIMARY KEY)`];
    for (const ddl of schema) await remote.sql.unsafe(ddl);
    const gappy = await openSynced(remote.url, schema, { sync: { batchSize: 10, copyBatchSize: 7000 } });
    try {
      await gappy.query(`INSERT INTO gaps SELECT generate_series(1, 3000)`);
      await gappy
        .transaction(async (tx) => {
          await tx.query(`INSERT INTO gaps SELECT generate_series(100001, 110000)`);
          throw new Error("rolled back");
        })
        .catch(() => {});
      await gappy.query(`INSERT INTO gaps SELECT generate_series(3001, 6000)`);
      // Log ids: 3,000, then 10,000 unused, then 3,000. Batches of 7,000 ids from their first entry, chunks of a
      // few thousand: the first batch ends with a chunk of nothing, the second starts after the gap.
      expect(await gappy.sync()).toMatchObject({ pushed: 6000, applied: 6000, batches: 2, rejected: 0 });
      expect(await remote.sql`SELECT count(*)::int AS n, max(id) AS max FROM gaps`).toEqual([{ n: 6000, max: 6000 }]);
      expect(await queued(gappy)).toBe(0);
    } finally {
      await gappy.close();
    }
  });

  it("a lost COMMIT reply of a COPY batch: the retry finds its ledger row and copies nothing twice", async () => {
    await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS hits (id int PRIMARY KEY, n int NOT NULL)`);
    await remote.sql.unsafe(`CREATE OR REPLACE FUNCTION count_hit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      INSERT INTO hits VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = hits.n + 1; RETURN NULL; END $$`);
    await remote.sql.unsafe(
      `CREATE OR REPLACE TRIGGER items_hits AFTER INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION count_hit()`,
    );
    let lost = 0;
    testHooks.afterRemoteCommit = () => {
      if (lost++ === 0) throw Object.assign(new Error("connection reset after COMMIT"), { code: "ECONNRESET" });
    };
    try {
      await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(41, 50) g`);
      expect(await db.sync()).toMatchObject({ pushed: 10, batches: 0, rejected: 0 }); // applied by the first attempt
    } finally {
      testHooks.afterRemoteCommit = undefined;
      await remote.sql.unsafe(`DROP TRIGGER items_hits ON items`);
    }
    expect(lost).toBe(2);
    expect(await remote.sql`SELECT min(n)::int AS min, max(n)::int AS max, count(*)::int AS rows FROM hits`).toEqual([
      { min: 1, max: 1, rows: 10 },
    ]);
    await expectSameRows(db, remote.sql, { items: "id" });
    expect(await queued(db)).toBe(0);
    expect(await ledgerRows(remote.sql)).toBe(0);
  });

  it("the server gone in the middle of COPY batches (some applied, some cut mid-stream): the next sync finishes, each row copied once", async () => {
    await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS copied (id int PRIMARY KEY, body text NOT NULL)`);
    await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS copy_hits (id int PRIMARY KEY, n int NOT NULL)`);
    await remote.sql.unsafe(`CREATE OR REPLACE FUNCTION count_copy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      INSERT INTO copy_hits VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = copy_hits.n + 1; RETURN NULL; END $$`);
    await remote.sql.unsafe(
      `CREATE OR REPLACE TRIGGER copied_hits AFTER INSERT ON copied FOR EACH ROW EXECUTE FUNCTION count_copy()`,
    );
    const proxy = await startProxy(remote.url);
    const schema = [`CREATE TABLE IF NOT EXISTS copied (id int PRIMARY KEY, body text NOT NULL)`];
    const cutting = await openSynced(proxy.url, schema, {
      sync: { batchSize: 10, copyBatchSize: 500, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 40 } },
    });
    cutting.on("error", () => {});
    try {
      await cutting.query(`INSERT INTO copied SELECT g, repeat('x', 200) || g FROM generate_series(1, 20000) g`);
      let cut = false;
      cutting.on("sync:progress", ({ done }) => {
        if (!cut && done >= 1500) {
          cut = true;
          void proxy.close();
        }
      });
      const err = await cutting.sync().catch((e: unknown) => e);
      expect(cut).toBe(true);
      expect(err).toBeInstanceOf(SyncError);
      expect(err).toMatchObject({ retryable: true });
      const left = await queued(cutting);
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(20000 - 1000); // progress counts rows sent: 1,500 means the batches up to 1,000 committed
      await proxy.open();
      // Once in a while a connection opened while the proxy went down fails the first round trips after it is
      // back (retryable, like any outage): the app's next sync, tried again here, finishes the job.
      const again = await cutting.sync().catch((e: unknown) => {
        expect(e).toMatchObject({ retryable: true });
        return cutting.sync();
      });
      expect(again).toMatchObject({ rejected: 0 });
      expect(await queued(cutting)).toBe(0);
      await expectSameRows(cutting, remote.sql, { copied: "id" });
      expect(await remote.sql`SELECT count(*)::int AS rows, max(n)::int AS max FROM copy_hits`).toEqual([
        { rows: 20000, max: 1 },
      ]);
      expect(await ledgerRows(remote.sql)).toBe(0);
    } finally {
      await cutting.close();
      await proxy.close();
    }
  });

  it("a batch that fails after others were applied: its entries and the later ones stay queued (only what was applied is dropped)", async () => {
    await remote.sql.unsafe(`CREATE OR REPLACE FUNCTION refuse_15() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF NEW.id = 1015 THEN RAISE EXCEPTION 'try again later' USING ERRCODE = 'serialization_failure'; END IF; RETURN NEW; END $$`);
    await remote.sql.unsafe(
      `CREATE TRIGGER items_refuse_15 BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION refuse_15()`,
    );
    const failing = await openSynced(remote.url, SCHEMA, {
      sync: { batchSize: 2, copyBatchSize: 10, retry: { attempts: 1 } },
    });
    failing.on("error", () => {});
    try {
      await failing.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(1001, 1040) g`);
      await expect(failing.sync()).rejects.toMatchObject({ retryable: true });
      const pending = (
        await failing.query<{ id: number }>(`SELECT (new_row->>'id')::int AS id FROM _sync_queue ORDER BY id`)
      ).rows.map((r) => r.id);
      const copied = (await remote.sql<{ id: number }[]>`SELECT id FROM items WHERE id > 1000 ORDER BY id`).map(
        (r) => r.id,
      );
      expect(pending).toContain(1015);
      expect([...pending, ...copied].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => 1001 + i));
      await remote.sql.unsafe(`DROP TRIGGER items_refuse_15 ON items`);
      expect(await failing.sync()).toMatchObject({ rejected: 0 });
      expect(await remote.sql`SELECT count(*)::int AS n FROM items WHERE id > 1000`).toEqual([{ n: 40 }]);
    } finally {
      await remote.sql.unsafe(`DROP TRIGGER IF EXISTS items_refuse_15 ON items`);
      await remote.sql`DELETE FROM items WHERE id > 1000`;
      await failing.close();
    }
  });

  it("the log is emptied by TRUNCATE when the run was all of it, by DELETE when more follows", async () => {
    const file = async () =>
      (await db.query<{ f: number }>(`SELECT relfilenode::int8 AS f FROM pg_class WHERE relname = '_sync_queue'`))
        .rows[0]!.f;
    await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(51, 60) g`);
    const before = await file();
    await db.sync();
    expect(await file()).not.toBe(before); // TRUNCATE gives the table a new file
    await db.query(`INSERT INTO items (id, n) SELECT g, g FROM generate_series(61, 70) g`);
    await db.query(`INSERT INTO tagged VALUES (500, '{5}')`); // after the run, another table
    const kept = await file();
    expect(await db.sync()).toMatchObject({ pushed: 11, applied: 11 });
    expect(await file()).toBe(kept);
    expect(await queued(db)).toBe(0);
    await expectSameRows(db, remote.sql, { items: "id", tagged: "id" });
  });
  it("arrays, and row images from before a column was added, go through the windows", async () => {
    await db.query(`INSERT INTO tagged SELECT g, ARRAY[g, g + 1] FROM generate_series(1, 6) g`);
    expect(await db.sync()).toMatchObject({ pushed: 6, applied: 6, batches: 3 });
    await db.query(`INSERT INTO labels (id) SELECT g FROM generate_series(1, 6) g`);
    await db.query(`ALTER TABLE labels ADD COLUMN label text NOT NULL DEFAULT 'old'`);
    await remote.sql`ALTER TABLE labels ADD COLUMN label text NOT NULL DEFAULT 'old'`;
    await db.query(`INSERT INTO labels (id, label) SELECT g, 'new' FROM generate_series(7, 12) g`);
    expect(await db.sync()).toMatchObject({ pushed: 12, applied: 12, batches: 6 });
    await expectSameRows(db, remote.sql, { tagged: "id", labels: "id" });
  });
});
