// A json (not jsonb) value is its text: whitespace inside and around it, key order, duplicate keys, unicode
// escapes and the spelling of numbers arrive byte for byte on every path, against the real server: the push
// by windows (inserts, updates, a key change), by COPY, a conflict settled under each strategy, the pull by
// copy and by diff; and verify() sees a difference in a json text alone, while other types stay equal for equal.
import type postgres from "postgres";
import { describe, expect, it } from "vitest";
import { Ominipg, type ConnectOptions, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { dbNameOf, makeRemoteHostile } from "./pull-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS docs (id int PRIMARY KEY, title text, body text, js json, js2 json, jb jsonb, n numeric, f float8)`,
];

/** json texts PostgreSQL keeps as written (a jsonb would rewrite each of them). */
const TEXTS = [
  '{"b": 1,  "a": 2, "a": 3}', // spacing, key order, a duplicate key
  ' {"z": "\\u00e9\\u2028\\ud83d\\ude00", "q": "\\"\\/", "raw": "é😀"}\n', // unicode escapes, whitespace around
  "[1, [2, [3.10, 1e400, -0]],\n 123456789012345678901234567890.000]", // nested arrays, big and odd numbers
  '{"n": 9007199254740993, "x": 1E+2,\t"deep": {"y": [ ], "z": {}}}',
  '\t"just a string"\r\n',
  "  42  ",
];

const cleanup = cleanupAfterEach();

async function remoteDb(): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  return remote;
}

async function client(remote: TestDatabase, sync: SyncOptions = {}, extra: Partial<ConnectOptions> = {}) {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: SCHEMA,
    sync: { retry: { attempts: 1 }, ...sync },
    ...extra,
  });
  cleanup(() => db.close());
  return db;
}

type Texts = { id: number; js: string | null; js2: string | null }[];
const SELECT = `SELECT id, js::text AS js, js2::text AS js2 FROM docs ORDER BY id`;

async function localTexts(db: Ominipg): Promise<Texts> {
  return (await db.query<Texts[number]>(SELECT)).rows;
}

async function remoteTexts(sql: postgres.Sql): Promise<Texts> {
  return [...(await sql.unsafe<Texts>(SELECT))];
}

/** Rows 1..n with js = TEXTS[i] and js2 = the next text. */
function rowsOf(texts: string[], from = 1): Texts {
  return texts.map((js, i) => ({ id: from + i, js, js2: texts[(i + 1) % texts.length]! }));
}

async function insertLocal(db: Ominipg, rows: Texts): Promise<void> {
  // One statement: a run of inserts (COPY takes it when it is longer than batchSize).
  await db.query(
    `INSERT INTO docs (id, title, js, js2) SELECT r.id, 'doc ' || r.id, r.js::json, r.js2::json FROM json_to_recordset($1::text::json) AS r(id int, js text, js2 text)`,
    [JSON.stringify(rows)],
  );
}

async function insertRemote(sql: postgres.Sql, rows: Texts): Promise<void> {
  for (const r of rows) {
    await sql.unsafe(
      `INSERT INTO docs (id, title, body, js, js2) VALUES ($1, $2, 'body', $3::text::json, $4::text::json)`,
      [r.id, `doc ${r.id}`, r.js, r.js2],
    );
  }
}

/** Both sides hold exactly `expected`, and verify() agrees. */
async function expectEverywhere(db: Ominipg, sql: postgres.Sql, expected: Texts): Promise<void> {
  expect(await localTexts(db), "local").toEqual(expected);
  expect(await remoteTexts(sql), "remote").toEqual(expected);
  expect((await db.verify()).ok).toBe(true);
}

describe("push", () => {
  it("by the windows (upserts): inserts, updates of the text alone (inside, around, key order) and a key change", async () => {
    const remote = await remoteDb();
    const db = await client(remote, { copyBatchSize: 0 });
    const rows = rowsOf(TEXTS);
    await insertLocal(db, rows);
    expect(await db.sync()).toMatchObject({ applied: rows.length, rejected: 0, conflicts: 0 });
    await expectEverywhere(db, remote.sql, rows);

    // UPDATEs of existing rows: only the text differs from the remote's, as jsonb would see it.
    const update = (id: number, js: string) => db.query(`UPDATE docs SET js = $2::text::json WHERE id = $1`, [id, js]);
    rows[0]!.js = '{"b": 1, "a": 2, "a": 3}';
    rows[1]!.js = TEXTS[1]!.trim();
    rows[2]!.js = `${TEXTS[2]}\n`;
    rows[3]!.js = '{"x": 1E+2, "n": 9007199254740993,\t"deep": {"z": {}, "y": [ ]}}';
    for (const r of rows.slice(0, 4)) await update(r.id, r.js!);
    // A key change with a new text: an UPDATE of the remote row's key.
    await db.query(`UPDATE docs SET id = 100, js2 = $1::text::json WHERE id = 5`, [' [ "moved" ] ']);
    // A delete: its check compares every column, json texts included, with the row it expects.
    await db.query(`DELETE FROM docs WHERE id = 6`);
    rows.splice(4, 2);
    rows.push({ id: 100, js: TEXTS[4]!, js2: ' [ "moved" ] ' });
    // No conflict: each check compares the remote row with the one the change expects, json values as values.
    expect(await db.sync()).toMatchObject({ applied: 6, rejected: 0, conflicts: 0 });
    await expectEverywhere(db, remote.sql, rows);
  });

  it("by COPY, then pulled by another client: the same text on all three", async () => {
    const remote = await remoteDb();
    const a = await client(remote, { batchSize: 2 });
    const rows = rowsOf(TEXTS);
    await insertLocal(a, rows);
    expect(await a.sync()).toMatchObject({ applied: rows.length, batches: 1 }); // one batch of 6 at batchSize 2: COPY
    await expectEverywhere(a, remote.sql, rows);
    const b = await client(remote);
    await b.pull();
    await expectEverywhere(b, remote.sql, rows);
  });

  it("NULL stays NULL and JSON null arrives as SQL NULL (a row image cannot tell them apart), by upsert and by COPY", async () => {
    for (const sync of [{ copyBatchSize: 0 }, { batchSize: 2 }]) {
      const remote = await remoteDb();
      const db = await client(remote, sync);
      await insertLocal(db, [
        { id: 1, js: null, js2: "null" },
        { id: 2, js: " null ", js2: TEXTS[0]! },
        { id: 3, js: "[null]", js2: null },
      ]);
      await db.sync();
      expect(await remoteTexts(remote.sql)).toEqual([
        { id: 1, js: null, js2: null },
        { id: 2, js: null, js2: TEXTS[0] },
        { id: 3, js: "[null]", js2: null },
      ]);
      expect((await db.verify()).ok).toBe(true); // JSON null counts as NULL there too
    }
  });
});

describe("push of json and jsonb arrays", () => {
  it("keeps each json element's text and a JSON null element apart from NULL, on inserts and updates", async () => {
    const remote = await remoteDb();
    const table = `CREATE TABLE IF NOT EXISTS arrs (id int PRIMARY KEY, ja json[], jba jsonb[], note text)`;
    const db = await client(remote, {}, { schemaSQL: [...SCHEMA, table] });
    await db.query(
      `INSERT INTO arrs VALUES (1, ARRAY['{"b": 1,  "a" :2}', 'null', NULL]::json[], ARRAY['null', NULL]::jsonb[], 'x')`,
    );
    await db.query(`INSERT INTO arrs VALUES (2, NULL, NULL, 'y')`);
    await db.query(
      `UPDATE arrs SET ja = ARRAY[' [1,  2] ']::json[], jba = ARRAY['{"k": null}', 'null']::jsonb[] WHERE id = 2`,
    );
    await db.query(`UPDATE arrs SET note = 'x2' WHERE id = 1`);
    await db.sync();
    const select = `SELECT id, ja::text AS ja, jba::text AS jba, note FROM arrs ORDER BY id`;
    const local = (await db.query(select)).rows;
    expect(local[0]).toEqual({
      id: 1,
      ja: '{"{\\"b\\": 1,  \\"a\\" :2}","null",NULL}',
      jba: '{"null",NULL}',
      note: "x2",
    });
    expect([...(await remote.sql.unsafe(select))]).toEqual(local);
  });
});

describe("conflicts settled under each strategy keep json text", () => {
  const T0 = '{"v": 0,  "w": [0]}';
  const LOCAL = ' {"by": "local",   "z": 1, "a": 2}\n';
  const REMOTE = '{"by":"remote", "b":1,"b":2}';
  const REMOTE2 = '\t[ "remote", 2.50 ]';

  /**
   * The remote has doc 1; A pulled it, changed it offline (`local`, $1 = LOCAL), and meanwhile the remote changed
   * it too (`remoteChange` and its parameters).
   */
  async function conflict(conflicts: SyncOptions["conflicts"], local: string, remoteChange: [string, string[]]) {
    const remote = await remoteDb();
    await remote.sql.unsafe(SCHEMA[0]!);
    await insertRemote(remote.sql, [{ id: 1, js: T0, js2: T0 }]);
    const a = await client(remote, { conflicts });
    await a.pull();
    expect(await localTexts(a)).toEqual([{ id: 1, js: T0, js2: T0 }]);
    await a.query(local, [LOCAL]);
    await remote.sql.unsafe(...remoteChange);
    expect((await a.sync()).conflicts).toBe(1);
    return { a, remote };
  }

  it("overwrite: the local text is written over the remote's, and the remote's other json text comes back", async () => {
    const { a, remote } = await conflict("overwrite", `UPDATE docs SET js = $1::text::json, title = 'A' WHERE id = 1`, [
      `UPDATE docs SET js = $1::text::json, js2 = $2::text::json, title = 'R' WHERE id = 1`,
      [REMOTE, REMOTE2],
    ]);
    await expectEverywhere(a, remote.sql, [{ id: 1, js: LOCAL, js2: REMOTE2 }]);
  });

  it("remote-wins: the local row takes the remote's texts", async () => {
    const { a, remote } = await conflict("remote-wins", `UPDATE docs SET js = $1::text::json WHERE id = 1`, [
      `UPDATE docs SET js = $1::text::json, js2 = $2::text::json WHERE id = 1`,
      [REMOTE, REMOTE2],
    ]);
    await expectEverywhere(a, remote.sql, [{ id: 1, js: REMOTE, js2: REMOTE2 }]);
  });

  it("merge: a column only the local side changed keeps its text, one only the remote changed takes the remote's", async () => {
    const { a, remote } = await conflict("merge", `UPDATE docs SET js = $1::text::json, body = 'A' WHERE id = 1`, [
      `UPDATE docs SET js2 = $1::text::json, body = 'R' WHERE id = 1`,
      [REMOTE2],
    ]);
    await expectEverywhere(a, remote.sql, [{ id: 1, js: LOCAL, js2: REMOTE2 }]);
    expect((await a.query(`SELECT body FROM docs`)).rows).toEqual([{ body: "R" }]);
  });

  it("a resolver: the columns it leaves out keep their texts", async () => {
    const { a, remote } = await conflict(
      () => ({ title: "custom" }),
      `UPDATE docs SET js = $1::text::json, title = 'A' WHERE id = 1`,
      [`UPDATE docs SET js2 = $1::text::json, title = 'R' WHERE id = 1`, [REMOTE2]],
    );
    await expectEverywhere(a, remote.sql, [{ id: 1, js: LOCAL, js2: REMOTE2 }]);
    expect((await a.query(`SELECT title FROM docs`)).rows).toEqual([{ title: "custom" }]);
  });
});

describe("pull", () => {
  it.each([
    ["diff", "off"],
    ["feed", "auto"],
  ] as const)(
    "by copy, then by %s when only the texts changed remotely (inside, around, key order)",
    async (strategy, feed) => {
      const remote = await remoteDb();
      await remote.sql.unsafe(SCHEMA[0]!);
      const rows = rowsOf(TEXTS);
      await insertRemote(remote.sql, rows);
      const db = await client(remote, { feed });
      expect((await db.pull()).tables["public.docs"]).toMatchObject({ strategy: "copy", upserted: rows.length });
      await expectEverywhere(db, remote.sql, rows);

      rows[0]!.js = '{"a": 3, "b": 1,  "a": 2, "z": "x\\u0000y"}'; // valid json, refused by jsonb
      rows[1]!.js = TEXTS[1]!.trim();
      rows[2]!.js2 = `${rows[2]!.js2} `;
      for (const r of rows.slice(0, 3)) {
        await remote.sql.unsafe(`UPDATE docs SET js = $2::text::json, js2 = $3::text::json WHERE id = $1`, [
          r.id,
          r.js,
          r.js2,
        ]);
      }
      expect((await db.pull()).tables["public.docs"]).toMatchObject({ strategy, upserted: 3 });
      await expectEverywhere(db, remote.sql, rows);
      expect((await db.pull()).tables["public.docs"]).toMatchObject({ strategy, upserted: 0 });
    },
  );
});

describe("verify()", () => {
  it("reports a row whose json text alone differs; equal values of other types stay equal under hostile remote settings", async () => {
    const remote = await remoteDb();
    await makeRemoteHostile(remote.sql, dbNameOf(remote.url));
    const db = await client(remote);
    await db.query(`SET TimeZone TO 'Asia/Kolkata'`);
    await db.query(
      `INSERT INTO docs (id, js, js2, jb, n, f) VALUES (1, '{"a": 1}', NULL, '{"b": 2, "a": [1.50]}', 1.50, 0.1),
                                                   (2, '[ ]', 'null', NULL, 'NaN', '-Infinity'),
                                                   (3, '"x"', '1', '"\\u00e9"', 123456789012345678901234567890.5, 1e300)`,
    );
    await db.sync();
    expect(await db.verify()).toMatchObject({ ok: true });

    await remote.sql.unsafe(`UPDATE docs SET js = '{"a":1}' WHERE id = 1`); // whitespace only
    await remote.sql.unsafe(`UPDATE docs SET js2 = '1 ' WHERE id = 3`); // whitespace around only
    const result = await db.verify();
    expect(result.ok).toBe(false);
    expect(result.tables).toEqual([
      expect.objectContaining({ table: "public.docs", onlyLocal: [], onlyRemote: [], counts: expect.anything() }),
    ]);
    expect(result.tables[0]!.different.sort()).toEqual(["[1]", "[3]"]);
    await db.pull();
    expect(await db.verify()).toMatchObject({ ok: true });
  });

  it("compares json and jsonb as the local column has them: a remote json under a local jsonb is no difference", async () => {
    const remote = await remoteDb();
    await remote.sql.unsafe(
      `CREATE TABLE a (id int PRIMARY KEY, j jsonb); CREATE TABLE b (id int PRIMARY KEY, j json)`,
    );
    for (const t of ["a", "b"])
      await remote.sql.unsafe(`INSERT INTO ${t} VALUES (1, '{"b": 1,   "a": [1, 2]}'), (2, NULL)`);
    const local = [
      `CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY, j json)`,
      `CREATE TABLE IF NOT EXISTS b (id int PRIMARY KEY, j jsonb)`,
    ];
    const db = await client(remote, {}, { schemaSQL: local, remoteSchema: "skip" });
    await db.pull();
    expect(await db.verify()).toMatchObject({ ok: true });
    await remote.sql.unsafe(`UPDATE b SET j = '{"a": [1, 2], "b": 2}' WHERE id = 1`);
    expect((await db.verify()).tables.find((t) => t.table === "public.b")).toMatchObject({ different: ["[1]"] });
  });

  it("compares rows of a table with a column named like its row alias", async () => {
    // verify() read `to_jsonb(r)` of a table aliased `r`: a column r was hashed in the row's place.
    const remote = await remoteDb();
    const schema = `CREATE TABLE IF NOT EXISTS ranges (id int PRIMARY KEY, r int4range, j json, v text)`;
    await remote.sql.unsafe(schema);
    const db = await client(remote, {}, { schemaSQL: [schema] });
    await db.query(`INSERT INTO ranges VALUES (1, '[1,5)', '{"a": 1}', 'local')`);
    await db.sync();
    expect(await db.verify()).toMatchObject({ ok: true });
    await remote.sql.unsafe(`UPDATE ranges SET v = 'changed remotely'`);
    expect((await db.verify()).tables[0]).toMatchObject({ table: "public.ranges", different: ["[1]"] });
  });
});
