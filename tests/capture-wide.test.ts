// Wide rows (issue 18): an UPDATE logs only the columns it assigns, with the key and the columns the push's
// ordering needs (unique and self-referencing ones), never the untouched document; inserts and deletes log
// whole rows; a table whose BEFORE UPDATE trigger may change any column logs whole rows. Every form is
// replayed onto the state before it (capture-helpers: a partial image must match the row in each column it
// holds, and the replayed state must equal the database's), so a column changed but not logged fails.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ominipg } from "../src/index.js";
import {
  captureDb,
  closeAll,
  expectReplayGives,
  logSince,
  snapshot,
  tablesWithKeys,
  watermark,
  type Entry,
  type Table,
} from "./capture-helpers.js";
import { WIDE_SCHEMA, wideRow } from "./wide-helpers.js";
import { joinImage, splitImage } from "../src/core/image.js";

const SCHEMA = [
  ...WIDE_SCHEMA,
  `CREATE TABLE IF NOT EXISTS stamped (id int PRIMARY KEY, v int, changed_at int NOT NULL DEFAULT 0, doc text)`,
  `CREATE OR REPLACE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.changed_at := OLD.changed_at + 1; RETURN NEW; END $$`,
  `DROP TRIGGER IF EXISTS stamp ON stamped`,
  `CREATE TRIGGER stamp BEFORE UPDATE ON stamped FOR EACH ROW EXECUTE FUNCTION stamp()`,
  // The same trigger on a partition: a write through the parent runs it too.
  `CREATE TABLE IF NOT EXISTS parted (id int, k int, v int, changed_at int NOT NULL DEFAULT 0, PRIMARY KEY (id, k)) PARTITION BY LIST (k)`,
  `CREATE TABLE IF NOT EXISTS parted_1 PARTITION OF parted FOR VALUES IN (1)`,
  `DROP TRIGGER IF EXISTS stamp ON parted_1`,
  `CREATE TRIGGER stamp BEFORE UPDATE ON parted_1 FOR EACH ROW EXECUTE FUNCTION stamp()`,
  `CREATE TABLE IF NOT EXISTS odd ("key" int PRIMARY KEY, "we""ird" json, "Doc" jsonb, n int NOT NULL DEFAULT 0, "ñ x" text)`,
];

let db: Ominipg;
let tables: Table[];
beforeAll(async () => {
  db = await captureDb(SCHEMA);
  tables = await tablesWithKeys(db);
  for (const id of [1, 2, 3]) await db.query(wideRow(id));
  await db.query(`INSERT INTO stamped VALUES (1, 1, 0, repeat('d', 3000))`);
});
afterAll(closeAll);

/** Run the statements; the log they wrote must replay to the new state. Returns the entries. */
async function captured(...statements: string[]): Promise<Entry[]> {
  const before = await snapshot(db, tables);
  const mark = await watermark(db);
  for (const s of statements) await db.query(s);
  const entries = await logSince(db, mark);
  expectReplayGives(before, entries, await snapshot(db, tables), tables);
  return entries;
}

const columnsOf = (image: string | null) => (image === null ? null : Object.keys(JSON.parse(image) as object).sort());

describe("an UPDATE logs the columns it assigns", () => {
  it("one int column: the key, the unique and self-referencing columns, and that column, old and new", async () => {
    const [e] = await captured(`UPDATE wide SET n1 = n1 + 1 WHERE id = 1`);
    expect(e!.op).toBe("U");
    expect(columnsOf(e!.old)).toEqual(["email", "id", "n1", "parent"]);
    expect(columnsOf(e!.new)).toEqual(["email", "id", "n1", "parent"]);
    // Key and assigned values, old and new: nothing of the document or the text.
    const { rows } = await db.query<{ bytes: number }>(
      `SELECT (pg_column_size(old_row) + pg_column_size(new_row))::int AS bytes FROM _sync_queue WHERE id = $1`,
      [e!.id],
    );
    expect(rows[0]!.bytes).toBeLessThan(120);
  });

  it("the document: only the document is copied, and the untouched text is not", async () => {
    const [e] = await captured(`UPDATE wide SET doc = jsonb_set(doc, '{k1}', '"edited"') WHERE id = 2`);
    expect(columnsOf(e!.new)).toEqual(["doc", "email", "id", "parent"]);
    expect(e!.new).not.toContain("lorem");
  });

  it("row assignments, sub-selects and expressions in SET", async () => {
    const [e] = await captured(`UPDATE wide SET (n2, t2) = (SELECT 5, 'five'), m1 = m0 * 2 WHERE id = 3`);
    expect(columnsOf(e!.old)).toEqual(["email", "id", "m1", "n2", "parent", "t2"]);
  });

  it("ON CONFLICT DO UPDATE: a new row is a whole insert, an existing one a partial update", async () => {
    const entries = await captured(
      `INSERT INTO wide (id, email, doc, body) VALUES (4, 'u4@x', '{}', 'b'), (1, 'u1@x', '{}', 'b')
       ON CONFLICT (id) DO UPDATE SET t0 = 'upserted'`,
    );
    expect(entries.map((e) => [e.op, columnsOf(e.old)?.length ?? 0, columnsOf(e.new)!.length])).toEqual([
      ["I", 0, 32],
      ["U", 4, 4],
    ]);
  });

  it("MERGE: updates log the union of the columns their clauses assign; deletes and inserts whole rows", async () => {
    const entries = await captured(
      `MERGE INTO wide w USING (VALUES (1, 'x'), (4, 'y'), (9, 'z')) AS s(id, v) ON w.id = s.id
       WHEN MATCHED AND w.id = 1 THEN UPDATE SET t3 = s.v
       WHEN MATCHED AND w.id = 2 THEN UPDATE SET n3 = 3
       WHEN MATCHED THEN DELETE
       WHEN NOT MATCHED THEN INSERT (id, doc, body) VALUES (s.id, '{}', s.v)`,
    );
    expect(entries.map((e) => [e.op, columnsOf(e.old)?.length ?? 0, columnsOf(e.new)?.length ?? 0])).toEqual([
      ["U", 5, 5],
      ["D", 32, 0],
      ["I", 0, 32],
    ]);
    expect(columnsOf(entries[0]!.old)).toEqual(["email", "id", "n3", "parent", "t3"]);
  });

  it("a key change and a unique column are logged whole / always", async () => {
    const [moved] = await captured(`UPDATE wide SET id = 10, n4 = 1 WHERE id = 9`);
    expect(columnsOf(moved!.old)!.length).toBe(32);
    const [mail] = await captured(`UPDATE wide SET email = 'new@x' WHERE id = 3`);
    expect(columnsOf(mail!.old)).toEqual(["email", "id", "parent"]);
  });

  it("a table with a BEFORE UPDATE trigger (or a partition with one) logs whole rows: the trigger may change what was not assigned", async () => {
    const [e] = await captured(`UPDATE stamped SET v = 2`);
    expect(columnsOf(e!.old)).toEqual(["changed_at", "doc", "id", "v"]);
    expect(JSON.parse(e!.new!)).toMatchObject({ v: 2, changed_at: 1 });
    await db.query(`INSERT INTO parted VALUES (1, 1, 1)`);
    // Not by captured(): its replay check reads the partition as a synced table of its own.
    const mark = await watermark(db);
    await db.query(`UPDATE parted SET v = 2 WHERE id = 1`);
    const [p] = await logSince(db, mark);
    expect(p!.table).toBe("parted");
    expect(columnsOf(p!.old)).toEqual(["changed_at", "id", "k", "v"]);
    expect(JSON.parse(p!.new!)).toMatchObject({ v: 2, changed_at: 1 });
  });

  it("a partial image is the row's own to_json text, column for column: json whitespace, odd names", async () => {
    await db.query(`INSERT INTO odd VALUES (1, ' {"b":1,  "a":2} ', '{"z": [1, 2.50]}', 0, 'x "q" \\ y')`);
    const rowText = async () =>
      (await db.query<{ j: string }>(`SELECT to_json(o.*)::text AS j FROM odd o WHERE "key" = 1`)).rows[0]!.j;
    const before = await rowText();
    const mark = await watermark(db);
    await db.query(`UPDATE odd SET "we""ird" = '[1,  2 ]  ', "Doc" = '{"y": 1e3}', "ñ x" = 'new' WHERE "key" = 1`);
    const after = await rowText();
    const { rows } = await db.query<{ o: string; n: string }>(
      `SELECT old_row::text AS o, new_row::text AS n FROM _sync_queue WHERE id > $1`,
      [mark],
    );
    expect(rows).toHaveLength(1);
    const logged = [...splitImage(rows[0]!.n, true).keys()];
    expect(logged).toEqual(["key", 'we"ird', "Doc", "ñ x"]);
    expect(rows[0]!.o).toBe(joinImage(splitImage(before, true), logged));
    expect(rows[0]!.n).toBe(joinImage(splitImage(after, true), logged));
    expect(rows[0]!.n).toContain(`"we\\"ird":[1,  2 ]  ,`);
  });

  it("a DELETE logs the whole row (conflict detection compares every column)", async () => {
    const [e] = await captured(`DELETE FROM wide WHERE id = 2`);
    expect(columnsOf(e!.old)!.length).toBe(32);
  });
});

describe("the log's storage", () => {
  it("keeps images up to a page whole in its heap (no compression, no TOAST), also in a log made before", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ominipg-log-"));
    try {
      const reloptions = async (d: Ominipg) =>
        (await d.query<{ o: string[] | null }>(`SELECT reloptions AS o FROM pg_class WHERE relname = '_sync_queue'`))
          .rows[0]!.o;
      const first = await captureDb(SCHEMA, { url: path.join(dir, "db") });
      expect(await reloptions(first)).toEqual(["toast_tuple_target=8160"]);
      await first.query(wideRow(7));
      const { rows } = await first.query<{ inline: boolean }>(
        `SELECT pg_column_size(new_row) >= octet_length(new_row::text) AS inline FROM _sync_queue WHERE new_row ->> 'id' = '7'`,
      );
      expect(rows).toEqual([{ inline: true }]);
      await first.close();
      // A log made before this setting: reset behind Ominipg's back.
      const plain = new PGlite(path.join(dir, "db"));
      await plain.exec(`ALTER TABLE _sync_queue RESET (toast_tuple_target)`);
      await plain.close();
      const again = await captureDb(SCHEMA, { url: path.join(dir, "db") });
      expect(await reloptions(again)).toEqual(["toast_tuple_target=8160"]);
      await again.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
