// Every column type round-trips exactly: the remote row equals the local row, as jsonb and as text.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [
  `DO $$ BEGIN CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
  `CREATE TABLE IF NOT EXISTS every (
     id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     big int8, small int2, num numeric, fixed numeric(30, 10), f8 float8, f4 real,
     ints int[], grid int[][], texts text[], j jsonb, js json, b bytea,
     tstz timestamptz, ts timestamp, d date, tm time, iv interval, u uuid,
     m mood, moods mood[], flag boolean, addr inet, r int4range, c char(3), vc varchar(5), tsv tsvector,
     doubled numeric GENERATED ALWAYS AS (num * 2) STORED,
     first_text text GENERATED ALWAYS AS (upper(texts[1])) STORED)`,
  `CREATE TABLE IF NOT EXISTS keyed (k text, at timestamptz, n numeric, v text, PRIMARY KEY (k, at, n))`,
  `CREATE TABLE IF NOT EXISTS bounded (id int PRIMARY KEY, arr int[], grid text[][], note text)`,
  `DO $$ BEGIN CREATE TYPE arr_pair AS (a int[], t text); EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
  `DO $$ BEGIN CREATE DOMAIN int_list AS int[]; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
  `CREATE TABLE IF NOT EXISTS bounded_inside (id int PRIMARY KEY, p arr_pair, l int_list, note text)`,
];

const FULL_ROW = `INSERT INTO every (big, small, num, fixed, f8, f4, ints, grid, texts, j, js, b, tstz, ts, d, tm, iv, u, m, moods, flag, addr, r, c, vc, tsv)
  VALUES (9007199254740993, -32768, 123456789012345678901234567890.123456789012345678901234567890, 12345678901234567890.0123456789,
          0.1, 3.4028235e38, '{1,NULL,3}', '{{1,2},{3,4}}',
          ARRAY['a,b', 'say "hi"', 'back\\slash', NULL, '', 'NULL', '{x}', ' sp ', 'ünï €'],
          '{"big": 123456789012345678901234567890, "n": 9007199254740993, "f": 1.10, "s": "x\\"y", "nested": [1.5, {"a": null}]}',
          '{"b": 1,  "a": [2, 3.50],   "a": "dup"}', '\\x00ff10'::bytea,
          '2024-02-29 12:34:56.123456+05:30', '2024-02-29 12:34:56.654321', '2024-02-29', '23:59:59.999999',
          '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', '{sad,happy}', true,
          '192.168.0.1/24', '[1,10)', 'ab', 'xyz', 'a fat cat')`;

const EXTREMES = `INSERT INTO every (big, small, num, f8, f4, ints, texts, j, b, tstz, ts, d, iv)
  VALUES (-9223372036854775808, 32767, 'NaN', 'NaN', '-Infinity', '{}', '{}', '[]', '\\x'::bytea,
          'infinity', '-infinity', '4713-01-01 BC', '-178000000 years')`;

const COLUMNS =
  "id big small num fixed f8 f4 ints grid texts j js b tstz ts d tm iv u m moods flag addr r c vc tsv doubled first_text".split(
    " ",
  );

describe("sync: column types", () => {
  let remote: TestDatabase;
  let db: Ominipg;
  beforeAll(async () => {
    remote = await createTestDatabase();
    db = await openSynced(remote.url, SCHEMA);
  });
  afterAll(async () => {
    await db?.close();
    await remote.drop();
  });

  it("round-trips every column type exactly, with identity keys pushed as they are and generated columns recomputed remotely", async () => {
    await db.query(FULL_ROW);
    await db.query(`INSERT INTO every DEFAULT VALUES`); // all NULL
    await db.query(EXTREMES);
    await db.query(`INSERT INTO every (id, big) OVERRIDING SYSTEM VALUE VALUES (1000, 1)`);
    expect((await db.sync()).rejected).toBe(0);
    await expectSame();

    // Updates of values where text comparisons matter: a big number inside jsonb, numeric scale, arrays.
    await db.query(`UPDATE every SET j = jsonb_set(j, '{n}', '9007199254740995') WHERE id = 1`);
    await db.query(`UPDATE every SET num = 1.50, texts = ARRAY['x,"y"'] WHERE id = 1`); // doubled and first_text change remotely too
    await db.query(`UPDATE every SET big = 9223372036854775807, grid = '{{5,6},{7,8}}' WHERE id = 2`);
    await db.query(`UPDATE every SET iv = iv * 2, tstz = tstz + interval '1 microsecond' WHERE id = 1`);
    expect((await db.sync()).rejected).toBe(0);
    await expectSame();
    const [row] =
      await remote.sql`SELECT big::text, (j->>'n') AS n, doubled::text, first_text FROM every WHERE id IN (1, 2) ORDER BY id`;
    expect(row).toEqual({ big: "9007199254740993", n: "9007199254740995", doubled: "3.00", first_text: 'X,"Y"' });

    async function expectSame() {
      await expectSameRows(db, remote.sql, { every: "id" });
      // Row text too (numeric scale, float digits, char padding, array quoting); json: see the next test.
      const select = `SELECT ROW(${COLUMNS.filter((c) => c !== "js").join(", ")})::text AS t FROM every ORDER BY id`;
      const local = (await db.query<{ t: string }>(select)).rows.map((r) => r.t);
      const rows = await remote.sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL TimeZone TO 'UTC'`);
        return tx.unsafe<{ t: string }[]>(select);
      });
      expect(rows.map((r) => r.t)).toEqual(local);
    }
  });

  it("keeps arrays' lower bounds, on inserts, updates of other columns or of the array, key changes and MERGE", async () => {
    await db.query(
      `INSERT INTO bounded VALUES (1, '{10,20}', NULL, 'a'), (2, '[5:6]={50,60}', '[0:1][2:3]={{a,b},{c,d}}', 'b'), (3, NULL, '{}', 'c')`,
    );
    await db.query(`UPDATE bounded SET arr[0] = 0 WHERE id = 1`);
    await db.query(`UPDATE bounded SET note = 'b2' WHERE id = 2`);
    await db.query(`UPDATE bounded SET id = 4, arr = '[-2:-2]={7}' WHERE id = 3`);
    await db.query(
      `MERGE INTO bounded t USING (VALUES (2), (5)) AS s(id) ON t.id = s.id WHEN MATCHED THEN UPDATE SET grid[0][2] = 'z' WHEN NOT MATCHED THEN INSERT VALUES (s.id, '[3:3]={3}', NULL, 'm')`,
    );
    expect(await db.sync()).toMatchObject({ rejected: 0, conflicts: 0 });
    const select = `SELECT id, arr::text AS arr, grid::text AS grid, note FROM bounded ORDER BY id`;
    const local = (await db.query(select)).rows;
    expect(local).toContainEqual({ id: 1, arr: "[0:2]={0,10,20}", grid: null, note: "a" });
    expect(await remote.sql.unsafe(select)).toEqual(local);
    expect((await db.verify()).ok).toBe(true);
  });

  it("a local session with array_nulls off: a pulled array's NULL element stays NULL (it was written as the text NULL)", async () => {
    await db.query(`SET array_nulls = off`);
    try {
      await db.query(`INSERT INTO bounded VALUES (20, ARRAY[1, NULL], ARRAY[['a', NULL]], 'local')`);
      await db.sync();
      await remote.sql`INSERT INTO bounded VALUES (21, ARRAY[2, NULL], ARRAY[['b', NULL]], 'remote')`;
      await db.pull();
      const select = `SELECT id, arr::text AS arr, grid::text AS grid, arr[array_upper(arr, 1)] IS NULL AS last_null FROM bounded WHERE id >= 20 ORDER BY id`;
      const local = (await db.query(select)).rows;
      expect(local).toEqual([
        { id: 20, arr: "{1,NULL}", grid: "{{a,NULL}}", last_null: true },
        { id: 21, arr: "{2,NULL}", grid: "{{b,NULL}}", last_null: true },
      ]);
      expect(await remote.sql.unsafe(select)).toEqual(local);
    } finally {
      await db.query(`RESET array_nulls`);
    }
  });

  it("keeps the lower bounds of arrays inside composites and of domains over arrays", async () => {
    await db.query(
      `INSERT INTO bounded_inside VALUES (1, ROW('[0:1]={1,2}', '[0:1]=x'), '[0:1]={3,4}', 'a'), (2, ROW('{5}', 'y'), '{6}', 'b'), (3, NULL, NULL, 'c')`,
    );
    await db.query(`UPDATE bounded_inside SET p = ROW('[2:2]={9}', 'z'), l = '[5:5]={7}' WHERE id = 3`);
    await db.query(`UPDATE bounded_inside SET note = 'a2' WHERE id = 1`);
    expect(await db.sync()).toMatchObject({ rejected: 0, conflicts: 0 });
    const select = `SELECT id, p::text AS p, l::text AS l, note FROM bounded_inside ORDER BY id`;
    const local = (await db.query(select)).rows;
    expect(local).toContainEqual({ id: 3, p: "([2:2]={9},z)", l: "[5:5]={7}", note: "c" });
    expect(await remote.sql.unsafe(select)).toEqual(local);
  });

  // A json value is its text: key order, spacing and duplicate keys (tests/json-text.test.ts: every path).
  it("keeps the exact text of json values", async () => {
    await db.query(`INSERT INTO every (id, js) OVERRIDING SYSTEM VALUE VALUES (5000, '{"b": 1,  "a": 2, "a": 3}')`);
    await db.sync();
    const [row] = await remote.sql`SELECT js::text AS js FROM every WHERE id = 5000`;
    expect(row?.js).toBe('{"b": 1,  "a": 2, "a": 3}');
  });

  it("finds rows by keys of any type (text with quotes, timestamptz, numeric) for updates, key changes and deletes", async () => {
    await db.query(
      `INSERT INTO keyed VALUES ('it''s "q"', '2024-01-01 00:00:00.000001+00', 1.5, 'a'), ('x,y', '2024-01-01 10:00+02', 10, 'b'), ('z', 'infinity', 0.1, 'c')`,
    );
    await db.sync();
    await db.query(`UPDATE keyed SET v = 'a2' WHERE k = 'it''s "q"'`);
    await db.query(`UPDATE keyed SET at = at + interval '1 hour', n = 20 WHERE k = 'x,y'`);
    await db.query(`DELETE FROM keyed WHERE k = 'z'`);
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: 3, applied: 3, rejected: 0 });
    await expectSameRows(db, remote.sql, { keyed: "k, at, n" });
    expect(await queued(db)).toBe(0);
  });

  it("takes a key spelled another way for the same row: a timestamptz after SET TimeZone, a numeric of another scale", async () => {
    await db.query(`SET TimeZone = 'UTC'`);
    await db.query(
      `INSERT INTO keyed VALUES ('tz', '2024-03-01 10:00+00', 1.0, 'v0'), ('num', '2024-03-01 10:00+00', 2.0, 'v0')`,
    );
    await db.query(`SET TimeZone = 'Europe/Berlin'`); // the same instant now prints as 11:00+01
    await db.query(`UPDATE keyed SET v = 'v1' WHERE k = 'tz'`);
    await db.query(`DELETE FROM keyed WHERE k = 'num'`);
    await db.query(`INSERT INTO keyed VALUES ('num', '2024-03-01 11:00+01', 2.00, 'v2')`); // the same key, spelled anew
    await db.query(`RESET TimeZone`);
    // One row each: before, two writes of one key in one statement (refused for good), or a delete after the insert.
    expect(await db.sync()).toMatchObject({ pushed: 5, applied: 2, rejected: 0 });
    expect(await queued(db)).toBe(0);
    expect(await remote.sql`SELECT k, v FROM keyed WHERE k IN ('tz', 'num') ORDER BY k`).toEqual([
      { k: "num", v: "v2" },
      { k: "tz", v: "v1" },
    ]);
  });

  it("a key spelled another way in one sync is one row: a float's 0 and -0, a domain over numeric or timestamptz", async () => {
    const ddl = [
      `CREATE DOMAIN amount AS numeric`,
      `CREATE DOMAIN moment AS timestamptz`,
      `CREATE TABLE IF NOT EXISTS floats (f float8 PRIMARY KEY, v text)`,
      `CREATE TABLE IF NOT EXISTS amounts (a amount PRIMARY KEY, v text)`,
      `CREATE TABLE IF NOT EXISTS moments (m moment PRIMARY KEY, v text)`,
    ];
    for (const d of ddl) {
      await db.query(d);
      await remote.sql.unsafe(d);
    }
    await db.query(`INSERT INTO floats VALUES (0, 'a')`);
    await db.query(`INSERT INTO amounts VALUES (1.0, 'a')`);
    await db.sync();
    // A delete and an insert of the same key: the insert met the remote row, and the delete then removed it.
    await db.query(`DELETE FROM floats WHERE f = 0`);
    await db.query(`INSERT INTO floats VALUES ('-0', 'b')`);
    await db.query(`DELETE FROM amounts WHERE a = 1`);
    await db.query(`INSERT INTO amounts VALUES (1.00, 'b')`);
    // An insert and an update of one row across a SET TimeZone: two writes of one key in one statement, refused.
    await db.query(`INSERT INTO moments VALUES ('2024-03-01 10:00+00', 'a')`);
    await db.query(`SET TimeZone = 'Europe/Berlin'`);
    await db.query(`UPDATE moments SET v = 'b'`);
    await db.query(`RESET TimeZone`);
    expect(await db.sync()).toMatchObject({ rejected: 0, conflicts: 0 });
    expect(await queued(db)).toBe(0);
    for (const t of ["floats", "amounts", "moments"])
      expect(await remote.sql.unsafe(`SELECT v FROM ${t}`)).toEqual([{ v: "b" }]);
    // verify() takes a domain-numeric key spelled otherwise on each side for one row too.
    await remote.sql.unsafe(`UPDATE amounts SET a = 1.000`);
    const amounts = (await db.verify()).tables.find((t) => t.table === "public.amounts");
    expect(amounts).toMatchObject({ onlyLocal: [], onlyRemote: [], counts: { different: 1 } }); // its text differs
  });

  it("verify(): a key spelled another way on each side (a numeric of another scale, -0) is one row, the same or different", async () => {
    await db.query(`CREATE TABLE IF NOT EXISTS spelled (n numeric, f float8, v text, PRIMARY KEY (n, f))`);
    await remote.sql.unsafe(`CREATE TABLE IF NOT EXISTS spelled (n numeric, f float8, v text, PRIMARY KEY (n, f))`);
    await db.query(`INSERT INTO spelled VALUES (2, 0, 'same'), (3, 1, 'changed')`);
    await db.sync();
    await remote.sql.unsafe(`UPDATE spelled SET n = 2.00, f = '-0' WHERE v = 'same'`);
    await remote.sql.unsafe(`UPDATE spelled SET n = 3.0, v = 'changed remotely' WHERE v = 'changed'`);
    const spelled = (await db.verify()).tables.find((t) => t.table === "public.spelled");
    expect(spelled).toMatchObject({ onlyLocal: [], onlyRemote: [], counts: { different: 2 } });
    // Not every key whose type starts so is a number: an array of them compares as it is.
    const arrays = `CREATE TABLE IF NOT EXISTS spelled_arrays (k numeric[] PRIMARY KEY, m numeric(6, 2))`;
    await db.query(arrays);
    await remote.sql.unsafe(arrays);
    await db.query(`INSERT INTO spelled_arrays VALUES ('{1.5,2}', 1)`);
    await db.sync();
    const verified = (await db.verify()).tables.find((t) => t.table === "public.spelled_arrays");
    expect(verified).toMatchObject({ counts: { onlyLocal: 0, onlyRemote: 0, different: 0 } });
  });
});
