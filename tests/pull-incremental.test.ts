import { describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, withAdmin, type TestDatabase } from "./harness/index.js";
import { dbNameOf, expectSameRows, pullClient, queueLength, type PullClient } from "./pull-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE, price numeric(10, 2), seen timestamptz)`,
  `CREATE TABLE IF NOT EXISTS parts (item_id int NOT NULL REFERENCES items (id) ON DELETE CASCADE, n int NOT NULL, qty int8, note jsonb, PRIMARY KEY (item_id, n))`,
  `CREATE TABLE IF NOT EXISTS tree (id int PRIMARY KEY, parent int REFERENCES tree (id), label text)`,
];
const TABLES = { items: "id", parts: "item_id, n", tree: "id" };

const cleanup = cleanupAfterEach();

async function setup(items = 200): Promise<{ remote: TestDatabase; c: PullClient }> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  for (const s of SCHEMA) await remote.sql.unsafe(s);
  await remote.sql
    .unsafe(
      `
    INSERT INTO items SELECT g, 'item ' || g, 'i' || g || '@x.org', g * 1.25, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute' FROM generate_series(1, ${items}) g;
    INSERT INTO parts SELECT i, n, i * 1000000000000 + n, jsonb_build_object('i', i, 'n', n) FROM generate_series(1, ${items}) i, generate_series(1, 3) n;
    INSERT INTO tree SELECT g, CASE WHEN g > 1 THEN g / 2 END, 'node ' || g FROM generate_series(1, 100) g;
  `,
    )
    .simple();
  const c = await pullClient(remote.url, SCHEMA);
  cleanup(() => c.close());
  const first = await c.pull();
  expect(Object.values(first.tables).map((t) => t.strategy)).toEqual(["copy", "copy", "copy"]);
  return { remote, c };
}

describe("incremental pull", () => {
  it("applies exactly the remote inserts, updates and deletes made since the last pull", async () => {
    const { remote, c } = await setup(2000);
    await remote.sql
      .unsafe(
        `
      INSERT INTO items VALUES (5001, 'new a', 'na@x.org', 1, now()), (5002, 'new b', NULL, NULL, NULL);
      INSERT INTO parts VALUES (5001, 1, 9007199254740993, '{"x": 1}');
      UPDATE items SET name = 'renamed', price = price + 0.01 WHERE id IN (10, 20, 30);
      UPDATE parts SET qty = -1 WHERE item_id = 40 AND n = 2;
      DELETE FROM items WHERE id IN (50, 60);           -- cascades to 6 parts on the remote
      UPDATE tree SET parent = 99 WHERE id = 3;         -- re-parent (to a later id)
      DELETE FROM tree WHERE id = 100;
    `,
      )
      .simple();
    const r = await c.pull();
    expect(r.tables).toEqual({
      "public.items": { strategy: "diff", upserted: 5, deleted: 2, skipped: 0, rejected: 0 },
      "public.parts": { strategy: "diff", upserted: 2, deleted: 6, skipped: 0, rejected: 0 },
      "public.tree": { strategy: "diff", upserted: 1, deleted: 1, skipped: 0, rejected: 0 },
    });
    await expectSameRows(c.db, remote.sql, TABLES);
    expect(await queueLength(c.db)).toBe(0);
    // Only the differing buckets were read from the remote.
    const items = r.seen.progress.filter((p) => p.table === "public.items").at(-1)!;
    expect(items.total).toBeLessThan(400);

    const none = await c.pull();
    for (const t of Object.values(none.tables))
      expect(t).toEqual({ strategy: "diff", upserted: 0, deleted: 0, skipped: 0, rejected: 0 });
    expect(none.seen.progress.every((p) => p.total === 0)).toBe(true);
  });

  it("catches a client up in one pull after many remote transactions while it was offline", async () => {
    const { remote, c } = await setup(2000);
    // Offline: local work and many remote transactions.
    await c.db.query(`UPDATE items SET name = 'local edit' WHERE id = 2000`); // a row the remote leaves alone
    await c.db.query(`INSERT INTO items (id, name) VALUES (90001, 'local new')`);
    for (let i = 0; i < 40; i++) {
      await remote.sql
        .unsafe(
          `
        INSERT INTO items SELECT g, 'r' || g, NULL, g, now() FROM generate_series(${10000 + i * 50}, ${10000 + i * 50 + 49}) g;
        UPDATE items SET price = price * 2, seen = now() WHERE id % 40 = ${i} AND id < 2000;
        DELETE FROM items WHERE id = ${1000 + i * 3};
        UPDATE parts SET note = note || '{"v": ${i}}' WHERE item_id = ${200 + i};
      `,
        )
        .simple();
    }
    await remote.sql.unsafe(`DELETE FROM tree WHERE id > 50; UPDATE tree SET label = upper(label)`).simple();

    const r = await c.pull();
    // 2000 new rows, ids 1..1999 updated, 40 of them deleted.
    expect(r.tables["public.items"]).toMatchObject({
      strategy: "diff",
      upserted: 2000 + 1999 - 40,
      deleted: 40,
      skipped: 2,
      rejected: 0,
    }); // skipped: 2000 and 90001
    expect(r.tables["public.parts"]).toMatchObject({ strategy: "diff", upserted: 120, deleted: 120 });
    expect(r.tables["public.tree"]).toMatchObject({ strategy: "diff", upserted: 50, deleted: 50 });
    expect(r.conflicts).toBe(0); // the remote did not touch item 2000 or 90001
    // Pending changes stayed; everything else equals the remote.
    expect((await c.db.query(`SELECT name FROM items WHERE id IN (2000, 90001) ORDER BY id`)).rows).toEqual([
      { name: "local edit" },
      { name: "local new" },
    ]);
    await c.db.sync();
    expect(await queueLength(c.db)).toBe(0);
    await expectSameRows(c.db, remote.sql, TABLES);
    expect((await c.db.verify()).ok).toBe(true);
  });

  it("holds rows with pending local changes and reports the ones the remote also changed as conflicts", async () => {
    const { remote, c } = await setup(10);
    await c.db.query(`UPDATE items SET name = 'L2' WHERE id = 2`);
    await c.db.query(`UPDATE items SET name = 'L3' WHERE id = 3`);
    await c.db.query(`DELETE FROM parts WHERE item_id = 4`);
    await c.db.query(`DELETE FROM items WHERE id = 4`);
    await c.db.query(`UPDATE items SET name = 'L5' WHERE id = 5`);
    await c.db.query(`UPDATE items SET name = 'same' WHERE id = 6`);
    await c.db.query(`DELETE FROM parts WHERE item_id = 8`);
    await c.db.query(`UPDATE items SET id = 108 WHERE id = 8`); // a key change: both keys are pending
    const queued = await queueLength(c.db);

    await remote.sql
      .unsafe(
        `
      UPDATE items SET name = 'R2' WHERE id = 2;            -- both changed: conflict
      DELETE FROM parts WHERE item_id = 3; DELETE FROM items WHERE id = 3;  -- remote deleted what local changed: conflict
      UPDATE items SET name = 'R4' WHERE id = 4;            -- remote changed what local deleted: conflict
      UPDATE items SET name = 'same' WHERE id = 6;          -- the same change on both sides: no conflict
      UPDATE items SET name = 'R1' WHERE id = 1;            -- no local change: applied
      INSERT INTO items VALUES (11, 'R11', NULL, NULL, NULL);
      INSERT INTO items VALUES (108, 'R108', NULL, NULL, NULL); -- the key local moved 8 to: conflict
    `,
      )
      .simple();

    const r = await c.pull();
    const byKey = new Map(r.seen.conflicts.map((x) => [x.key, x]));
    expect([...byKey.keys()].sort()).toEqual([`{"id":108}`, `{"id":2}`, `{"id":3}`, `{"id":4}`]);
    const img = (s: string | null) => (s === null ? null : (JSON.parse(s) as { name: string }).name);
    expect([
      img(byKey.get(`{"id":2}`)!.base),
      img(byKey.get(`{"id":2}`)!.local),
      img(byKey.get(`{"id":2}`)!.remote),
    ]).toEqual(["item 2", "L2", "R2"]);
    expect([
      img(byKey.get(`{"id":3}`)!.base),
      img(byKey.get(`{"id":3}`)!.local),
      img(byKey.get(`{"id":3}`)!.remote),
    ]).toEqual(["item 3", "L3", null]);
    expect([
      img(byKey.get(`{"id":4}`)!.base),
      img(byKey.get(`{"id":4}`)!.local),
      img(byKey.get(`{"id":4}`)!.remote),
    ]).toEqual(["item 4", null, "R4"]);
    expect([
      img(byKey.get(`{"id":108}`)!.base),
      img(byKey.get(`{"id":108}`)!.local),
      img(byKey.get(`{"id":108}`)!.remote),
    ]).toEqual([null, "item 8", "R108"]);
    expect(r.conflicts).toBe(4);
    expect(r.tables["public.items"]).toMatchObject({ upserted: 2, deleted: 0, skipped: 6 }); // 2, 3, 4, 5, 8 (remote still has it), 108

    const { rows } = await c.db.query<{ id: number; name: string }>(`SELECT id, name FROM items ORDER BY id`);
    expect(rows.map((x) => `${x.id}:${x.name}`)).toEqual([
      "1:R1",
      "2:L2",
      "3:L3",
      "5:L5",
      "6:same",
      "7:item 7",
      "9:item 9",
      "10:item 10",
      "11:R11",
      "108:item 8",
    ]);
    expect(await queueLength(c.db)).toBe(queued);

    // Reported again by the next pull while still pending and different (store conflicts by table and key).
    const again = await c.pull();
    expect(again.conflicts).toBe(4);
    expect(again.tables["public.items"]).toMatchObject({ upserted: 0, deleted: 0 });
  });

  it("never echoes: a pull after a push changes nothing, a push after a pull pushes nothing", async () => {
    const { remote, c } = await setup(50);
    await c.db.query(
      `INSERT INTO items (id, name, price, seen) VALUES (500, 'mine', 3.14, '2024-05-05 05:05:05.123456+02')`,
    );
    await c.db.query(`UPDATE parts SET note = '{"big": 123456789012345678901234567890}' WHERE item_id = 1`);
    await c.db.query(`DELETE FROM tree WHERE id = 100`);
    expect((await c.db.sync()).pushed).toBe(5);
    const afterPush = await c.pull();
    for (const t of Object.values(afterPush.tables)) expect(t).toMatchObject({ upserted: 0, deleted: 0 });
    expect(afterPush.seen.progress.every((p) => p.total === 0)).toBe(true); // all buckets equal

    await remote.sql.unsafe(`UPDATE items SET name = 'remote' WHERE id < 5; DELETE FROM tree WHERE id = 99`).simple();
    const pulled = await c.pull();
    expect(pulled.tables["public.items"]).toMatchObject({ upserted: 4 });
    expect(pulled.tables["public.tree"]).toMatchObject({ deleted: 1 });
    expect(await queueLength(c.db)).toBe(0);
    expect((await c.db.sync()).pushed).toBe(0);
    await expectSameRows(c.db, remote.sql, TABLES);
  });

  it("re-reads a table whose local rows were changed behind capture's back, and makes it equal again", async () => {
    const { remote, c } = await setup(100);
    // Simulate local drift that capture never saw (e.g. rows written before sync was enabled).
    const inner = c.db as unknown as { local: import("../src/local/access.js").LocalAccess };
    await inner.local.run(async (d) => {
      await d.query(`UPDATE items SET name = 'drift' WHERE id % 10 = 0`);
      await d.query(`INSERT INTO items (id, name) VALUES (7777, 'stray')`);
      await d.query(`DELETE FROM parts WHERE item_id = 5`);
    });
    const r = await c.pull();
    expect(r.tables["public.items"]).toMatchObject({ upserted: 10, deleted: 1 });
    expect(r.tables["public.parts"]).toMatchObject({ upserted: 3, deleted: 0 });
    await expectSameRows(c.db, remote.sql, TABLES);
  });

  it("writes only rows whose values differ, to the byte: json text, numeric scale; dropped and generated columns", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const schema = [
      `CREATE TABLE IF NOT EXISTS docs (id int PRIMARY KEY, gone text, body json, n numeric, tags text[], twice int GENERATED ALWAYS AS (id * 2) STORED)`,
      `ALTER TABLE docs DROP COLUMN IF EXISTS gone`,
    ];
    for (const s of schema) await remote.sql.unsafe(s);
    await remote.sql.unsafe(
      `INSERT INTO docs (id, body, n, tags) SELECT g, '{"a":1}', 1.0, ARRAY['x', 'y'] FROM generate_series(1, 300) g`,
    );
    const c = await pullClient(remote.url, schema);
    cleanup(() => c.close());
    expect((await c.pull()).tables["public.docs"]).toMatchObject({ strategy: "copy", upserted: 300 });
    // Equal by value, not by text: each must be written.
    await remote.sql
      .unsafe(
        `UPDATE docs SET body = '{"a": 1}' WHERE id = 1; UPDATE docs SET n = 1.00 WHERE id = 2; ` +
          `UPDATE docs SET tags = ARRAY['x', 'y'] WHERE id = 3`,
      )
      .simple();
    const r = await c.pull();
    expect(r.tables["public.docs"]).toMatchObject({ strategy: "diff", upserted: 2, deleted: 0 });
    const { rows } = await c.db.query<{ body: string; n: string }>(
      `SELECT body::text, n::text FROM docs WHERE id <= 2 ORDER BY id`,
    );
    expect(rows).toEqual([
      { body: '{"a": 1}', n: "1.0" },
      { body: '{"a":1}', n: "1.00" },
    ]);
    expect((await c.pull()).tables["public.docs"]).toMatchObject({ upserted: 0, deleted: 0 });
  });

  it("writes values whose JSON form loses something exactly, and verify() tells them apart", async () => {
    // A JSON null in json and jsonb (not SQL NULL), -0, an array's lower bound, a jsonb array's JSON null element;
    // and the same in domains over those types and in a composite.
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const schema = [
      `CREATE DOMAIN djson AS json`,
      `CREATE DOMAIN dfloat AS float8`,
      `CREATE DOMAIN darr AS int[]`,
      `CREATE TYPE comp AS (f float8, j json)`,
      `CREATE TABLE IF NOT EXISTS lossy (id int PRIMARY KEY, jb jsonb, js json, f float8, r real, a int[], jba jsonb[],
         dj djson, df dfloat, da darr, c comp)`,
    ];
    for (const s of schema) await remote.sql.unsafe(s);
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: schema,
      remoteSchema: "skip",
      sync: { feed: "off" },
    });
    cleanup(() => db.close());
    await remote.sql.unsafe(`INSERT INTO lossy (id, jb, f, r, a, jba) VALUES (1, '{}', 1, 1, '{1}', '{}')`);
    await db.pull();
    await remote.sql.unsafe(
      `UPDATE lossy SET jb = 'null', js = 'null', f = '-0', r = '-0', a = '[0:2]={7,8,9}', jba = ARRAY['null'::jsonb, NULL],
         dj = '{ "a" : 1, "a": 2 }', df = '-0', da = '[0:1]={1,2}', c = ROW('-0', '{ "x" :  1 }')`,
    );
    expect((await db.pull()).tables["public.lossy"]).toMatchObject({ strategy: "diff", upserted: 1 });
    const select =
      `SELECT jb IS NULL AS sql_null, js IS NULL AS js_null, jb::text, js::text, f::text, r::text, a::text, ` +
      `jba::text, dj::text, df::text, da::text, c::text FROM lossy`;
    expect((await db.query(select)).rows).toEqual([...(await remote.sql.unsafe(select))]);
    expect((await db.verify()).ok).toBe(true);
    await remote.sql.unsafe(`UPDATE lossy SET f = 0`); // 0 where the local row holds -0
    expect((await db.verify()).ok).toBe(false);
    expect((await db.pull()).tables["public.lossy"]).toMatchObject({ strategy: "diff", upserted: 1 });
  });

  it.each([["off"], ["require"]] as const)(
    "takes a key the remote changed to an equal value of another text: numeric scale, -0, interval (feed %s)",
    async (feed) => {
      const remote = await createTestDatabase();
      cleanup(() => remote.drop());
      const schema = [`CREATE TABLE IF NOT EXISTS k (n numeric, f float8, i interval, v int, PRIMARY KEY (n, f, i))`];
      await remote.sql.unsafe(schema[0]!);
      await remote.sql.unsafe(`INSERT INTO k VALUES (1.0, 0, '1 day', 1)`);
      const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: schema, sync: { feed } });
      cleanup(() => db.close());
      await db.pull();
      await remote.sql.unsafe(`UPDATE k SET n = 1.000, f = '-0', i = '24 hours'`);
      const strategy = feed === "off" ? "diff" : "feed";
      expect((await db.pull()).tables["public.k"]).toMatchObject({ strategy, upserted: 1 });
      const select = `SELECT n::text, f::text, i::text, v FROM k`;
      expect((await db.query(select)).rows).toEqual([{ n: "1.000", f: "-0", i: "24:00:00", v: 1 }]);
      expect((await db.pull()).tables["public.k"]).toMatchObject({ strategy, upserted: 0 });
      expect((await db.verify()).ok).toBe(true);
    },
  );

  it("reads keys with backslashes from a database whose sessions have standard_conforming_strings off", async () => {
    // Keys go into Ominipg's SQL as literals (copy ranges, feed ranges): a backslash in '' is an escape there.
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const name = dbNameOf(remote.url);
    await withAdmin((a) =>
      a
        .unsafe(
          `ALTER DATABASE ${name} SET standard_conforming_strings = off; ALTER DATABASE ${name} SET escape_string_warning = off`,
        )
        .simple(),
    );
    const schema = [`CREATE TABLE IF NOT EXISTS bs (k text PRIMARY KEY, v text)`];
    await remote.sql.unsafe(schema[0]!);
    // Keys ending in a backslash, or in a backslash and a t (a tab, read as an escape).
    await remote.sql.unsafe(
      `INSERT INTO bs SELECT 'k' || lpad(g::text, 5, '0') || CASE WHEN g % 2 = 0 THEN chr(92) ELSE chr(92) || 't' END, 'v' || g FROM generate_series(1, 3000) g`,
    );
    const c = await pullClient(remote.url, schema, { chunkRows: 1000 });
    cleanup(() => c.close());
    expect((await c.pull()).tables["public.bs"]).toMatchObject({ strategy: "copy", upserted: 3000, rejected: 0 });
    await remote.sql.unsafe(`UPDATE bs SET v = 'changed' WHERE substr(k, 6, 1) = '0'`);
    expect((await c.pull()).tables["public.bs"]).toMatchObject({ strategy: "diff", upserted: 300, rejected: 0 });
    await expectSameRows(c.db, remote.sql, { bs: "k" });

    // The change feed's client, and a push of such a key.
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: schema, sync: { feed: "require" } });
    cleanup(() => db.close());
    await db.pull();
    await remote.sql.unsafe(`UPDATE bs SET v = 'again' WHERE substr(k, 6, 1) = '1'`);
    expect((await db.pull()).tables["public.bs"]).toMatchObject({ strategy: "feed", upserted: 300, rejected: 0 });
    await expectSameRows(db, remote.sql, { bs: "k" });
    await db.query(`INSERT INTO bs VALUES ($1, 'local')`, ["new\\'key\\"]);
    await db.sync();
    expect(await remote.sql`SELECT v FROM bs WHERE k = ${"new\\'key\\"}`).toEqual([{ v: "local" }]);
  });

  it.each([
    ["diff", "off"],
    ["feed", "require"],
  ] as const)(
    "writes a row taking a UNIQUE value another row of the same pull gives up (%s)",
    async (strategy, feed) => {
      const remote = await createTestDatabase();
      cleanup(() => remote.drop());
      const schema = [`CREATE TABLE IF NOT EXISTS u (id int PRIMARY KEY, email text UNIQUE)`];
      await remote.sql.unsafe(schema[0]!);
      await remote.sql.unsafe(`INSERT INTO u VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
      const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: schema, sync: { feed } });
      cleanup(() => db.close());
      await db.pull();
      // In three transactions, each row takes the value the next one gave up. The rows come in key order (by the
      // feed) or in the heap's (by the diff: VACUUM lets each new version take the place of an older one).
      await remote.sql.unsafe(`UPDATE u SET email = 'd' WHERE id = 3`);
      await remote.sql.unsafe(`VACUUM u`);
      await remote.sql.unsafe(`UPDATE u SET email = 'c' WHERE id = 2`);
      await remote.sql.unsafe(`VACUUM u`);
      await remote.sql.unsafe(`UPDATE u SET email = 'b' WHERE id = 1`);
      const r = await db.pull();
      expect(r.tables["public.u"]).toMatchObject({ strategy, upserted: 3, rejected: 0 });
      await expectSameRows(db, remote.sql, { u: "id" });
    },
  );

  it("keeps its feed position before a row the local table refuses: the next pull writes it once it can", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const schema = [`CREATE TABLE IF NOT EXISTS u (id int PRIMARY KEY, email text UNIQUE)`];
    await remote.sql.unsafe(schema[0]!);
    await remote.sql.unsafe(`INSERT INTO u VALUES (1, 'a'), (2, 'b')`);
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: schema, sync: { feed: "require" } });
    cleanup(() => db.close());
    await db.pull();
    await db.query(`INSERT INTO u VALUES (9, 'x')`); // pending, not pushed: it holds 'x' locally
    await remote.sql.unsafe(`UPDATE u SET email = 'x' WHERE id = 1`);
    await remote.sql.unsafe(`UPDATE u SET email = 'y' WHERE id = 2`);
    expect((await db.pull()).tables["public.u"]).toMatchObject({ strategy: "feed", upserted: 1, rejected: 1 });
    await db.query(`DELETE FROM u WHERE id = 9`);
    expect((await db.pull()).tables["public.u"]).toMatchObject({ strategy: "feed", upserted: 1, rejected: 0 });
    expect((await db.query(`SELECT id, email FROM u ORDER BY id`)).rows).toEqual([
      { id: 1, email: "x" },
      { id: 2, email: "y" },
    ]);
  });
});

describe("a remote value the local column type does not take", () => {
  it.each([["off"], ["require"]] as const)(
    "is reported and tried again by the next pull; the table's other changes and the other tables are pulled (feed %s)",
    async (feed) => {
      const remote = await createTestDatabase();
      cleanup(() => remote.drop());
      await remote.sql.unsafe(
        `CREATE TABLE v (id int PRIMARY KEY, code varchar(10)); CREATE TABLE w (id int PRIMARY KEY)`,
      );
      await remote.sql.unsafe(
        `INSERT INTO v VALUES (1, 'ab'), (2, 'abc'), (3, 'x'), (4, 'too long'); INSERT INTO w VALUES (1)`,
      );
      const schema = [
        `CREATE TABLE IF NOT EXISTS v (id int PRIMARY KEY, code varchar(3))`,
        `CREATE TABLE IF NOT EXISTS w (id int PRIMARY KEY)`,
      ];
      const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: schema, sync: { feed } });
      cleanup(() => db.close());
      expect((await db.pull()).tables["public.v"]).toMatchObject({ strategy: "copy", upserted: 3, rejected: 1 });
      await remote.sql.unsafe(`UPDATE v SET code = 'abcdefg' WHERE id = 1; UPDATE v SET code = 'xy' WHERE id = 2;
        DELETE FROM v WHERE id = 3; INSERT INTO w VALUES (2)`);
      const strategy = feed === "off" ? "diff" : "feed";
      for (let i = 0; i < 2; i++) {
        const r = await db.pull();
        // Refused rows since the copy: no feed position, the table diffs (and tries them again) until they are taken.
        expect(r.tables["public.v"]).toMatchObject({ strategy: "diff", rejected: 2 });
        expect(r.tables["public.w"]).toMatchObject({ strategy, rejected: 0 });
        expect((await db.query(`SELECT id, code FROM v ORDER BY id`)).rows).toEqual([
          { id: 1, code: "ab" }, // refused: the local row stays as it was, not deleted
          { id: 2, code: "xy" },
        ]);
        expect((await db.query(`SELECT id FROM w ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 2 }]);
      }
      await remote.sql.unsafe(`UPDATE v SET code = 'ok' WHERE id = 1; DELETE FROM v WHERE id = 4`);
      expect((await db.pull()).tables["public.v"]).toMatchObject({ rejected: 0 });
      expect((await db.query(`SELECT id, code FROM v ORDER BY id`)).rows).toEqual([
        { id: 1, code: "ok" },
        { id: 2, code: "xy" },
      ]);
    },
  );
});
