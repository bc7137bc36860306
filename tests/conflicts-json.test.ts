// Conflict checks on tables with json and jsonb columns: a remote row that is gone is no row (not an object of
// nulls), and JSON null in such a column, which a row image cannot tell from SQL NULL, is no conflict by itself.
import { describe, expect, it } from "vitest";
import { Ominipg, type ConflictEvent, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";
import { expectSameRows } from "./pull-helpers.js";
import { queued } from "./sync-helpers.js";

const cleanup = cleanupAfterEach();

async function remoteWith(schema: string, rows: string): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  await remote.sql.unsafe(schema);
  await remote.sql.unsafe(rows);
  return remote;
}

async function client(remote: TestDatabase, schema: string, conflicts: SyncOptions["conflicts"]) {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: [schema],
    sync: { retry: { attempts: 1 }, conflicts },
  });
  cleanup(() => db.close());
  const events: ConflictEvent[] = [];
  db.on("conflict", (c) => events.push(c));
  await db.pull();
  return { db, events };
}

describe("conflicts on json and jsonb columns", () => {
  it("a local update of a row the remote deleted is settled by the strategy in a table with a json column", async () => {
    const schema = `CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v text, j json)`;
    const remote = await remoteWith(schema, `INSERT INTO t VALUES (1, 'a', '{"x": 1}'), (2, 'b', NULL)`);
    const seen: unknown[] = [];
    const cases: [SyncOptions["conflicts"], { id: number; v: string; j: string | null }[]][] = [
      ["overwrite", [{ id: 1, v: "local", j: '{"x": 1}' }]],
      ["remote-wins", []],
      ["merge", []],
      [(c) => (seen.push(c.remote), "remote"), []],
    ];
    for (const [conflicts, expected] of cases) {
      await remote.sql`DELETE FROM t`;
      await remote.sql`INSERT INTO t VALUES (1, 'a', '{"x": 1}')`;
      const { db, events } = await client(remote, schema, conflicts);
      await db.query(`UPDATE t SET v = 'local' WHERE id = 1`);
      await remote.sql`DELETE FROM t WHERE id = 1`;
      expect(await db.sync()).toMatchObject({ conflicts: 1 });
      expect(events).toMatchObject([{ key: { id: 1 }, remote: null }]);
      expect((await remote.sql`SELECT id, v, j::text FROM t`).map((r) => ({ ...r }))).toEqual(expected);
      await expectSameRows(db, remote.sql, { t: "id" });
      expect(await queued(db)).toBe(0);
      await db.close();
    }
    expect(seen).toEqual([null]);
  });

  it("JSON null in a json or jsonb column (or a domain over one): updates and deletes push without a conflict, a real conflict is settled", async () => {
    for (const type of ["json", "jsonb", "json_doc", "jsonb_doc"]) {
      const domains =
        `DO $$ BEGIN CREATE DOMAIN json_doc AS json; CREATE DOMAIN jsonb_doc AS jsonb; ` +
        `EXCEPTION WHEN duplicate_object THEN NULL; END $$; `;
      const schema = `${domains}CREATE TABLE IF NOT EXISTS w (id int PRIMARY KEY, a text, doc ${type})`;
      const remote = await remoteWith(
        schema,
        `INSERT INTO w VALUES (1, 'a0', 'null'), (2, 'a0', 'null'), (3, 'a0', 'null'), (4, 'a0', NULL)`,
      );
      const { db, events } = await client(remote, schema, "overwrite");
      await db.query(`UPDATE w SET doc = '{"k": 1}' WHERE id = 1`);
      await db.query(`DELETE FROM w WHERE id = 2`);
      await db.query(`UPDATE w SET a = 'local' WHERE id IN (3, 4)`);
      await remote.sql`UPDATE w SET a = 'remote' WHERE id = 3`;
      expect(await db.sync()).toMatchObject({ conflicts: 1 });
      expect(events).toMatchObject([{ key: { id: 3 }, resolution: "local" }]);
      expect(await remote.sql`SELECT id, a, doc::text FROM w ORDER BY id`).toEqual([
        { id: 1, a: "a0", doc: '{"k": 1}' },
        { id: 3, a: "local", doc: "null" },
        { id: 4, a: "local", doc: null },
      ]);
      expect(await queued(db)).toBe(0);
      await db.close();
    }
  });

  it("json values jsonb refuses (\\u0000, a lone surrogate): updates and deletes of their rows push, a conflict is settled, a refusal set aside", async () => {
    const schema = `CREATE TABLE IF NOT EXISTS odd (id int PRIMARY KEY, n int NOT NULL, doc json)`;
    const docs = [`{"s": "a\\u0000b"}`, `"\\ud83d"`, `[ "\\u0000" ]`, `{"x":  "\\udc00"}`];
    const remote = await remoteWith(
      schema,
      `INSERT INTO odd VALUES (1, 0, $1), (2, 0, $2), (3, 0, $3), (4, 0, $4)`.replace(
        /\$(\d)/g,
        (_, i: string) => `'${docs[Number(i) - 1]}'`,
      ),
    );
    await remote.sql.unsafe(`CREATE FUNCTION no_9() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF NEW.n = 9 THEN RAISE EXCEPTION 'nine refused'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER no_9 BEFORE UPDATE ON odd FOR EACH ROW EXECUTE FUNCTION no_9()`);
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: [schema],
      sync: { retry: { attempts: 1 }, onReject: "skip" },
    });
    cleanup(() => db.close());
    const events: ConflictEvent[] = [];
    db.on("conflict", (c) => events.push(c));
    await db.pull();
    await db.query(`UPDATE odd SET doc = '{"t": "\\u0000"}' WHERE id = 1`);
    await db.query(`DELETE FROM odd WHERE id = 2`);
    await db.query(`UPDATE odd SET n = 1 WHERE id = 3`);
    await remote.sql`UPDATE odd SET n = 5 WHERE id = 3`;
    expect(await db.sync()).toMatchObject({ conflicts: 1 });
    expect(events).toMatchObject([{ key: { id: 3 }, resolution: "local" }]);
    await db.query(`UPDATE odd SET n = 9, doc = '["\\u0000", 9]' WHERE id = 4`);
    expect(await db.sync()).toMatchObject({ rejected: 1 });
    expect(await remote.sql`SELECT id, n, doc::text FROM odd ORDER BY id`).toEqual([
      { id: 1, n: 0, doc: '{"t": "\\u0000"}' },
      { id: 3, n: 1, doc: docs[2] },
      { id: 4, n: 0, doc: docs[3] },
    ]);
    const { rows } = await db.query<{ r: string }>(`SELECT new_row::text AS r FROM _ominipg_rejected`);
    expect(rows).toEqual([{ r: expect.stringContaining('"doc":["\\u0000", 9]') }]); // the text as written
    expect(await queued(db)).toBe(0);
  });
});

describe("values a settled conflict writes", () => {
  // Rendered with to_jsonb (settle.ts), and completed from a to_json of the local row (complete.ts): an array's lower
  // bounds, a float's -0 and a JSON null element of a jsonb array were lost, on both sides.
  const schema = `CREATE TABLE IF NOT EXISTS vals (id int PRIMARY KEY, title text, a int[], f float8, jba jsonb[])`;
  const select = `SELECT id, title, a::text AS a, f::text AS f, jba::text AS jba FROM vals ORDER BY id`;

  it.each(["overwrite", "merge"] as const)("%s: they keep what their text says, on both sides", async (conflicts) => {
    const remote = await remoteWith(
      schema,
      `INSERT INTO vals VALUES (1, 'one', '[0:2]={0,10,20}', 1, NULL), (2, 'two', '{1}', 2, ARRAY['1'::jsonb])`,
    );
    const { db } = await client(remote, schema, conflicts);
    // Row 1: updated locally (the title alone: made whole from the local row), deleted remotely.
    await db.query(`UPDATE vals SET title = 'local' WHERE id = 1`);
    await remote.sql`DELETE FROM vals WHERE id = 1`;
    // Row 2: the title changed on both sides; the array, the float and the jsonb array locally.
    await db.query(
      `UPDATE vals SET title = 'local', a = '[5:6]={7,8}', f = '-0', jba = ARRAY['null', NULL]::jsonb[] WHERE id = 2`,
    );
    await remote.sql`UPDATE vals SET title = 'remote' WHERE id = 2`;
    expect(await db.sync()).toMatchObject({ conflicts: 2 });
    const two = { id: 2, a: "[5:6]={7,8}", f: "-0", jba: '{"null",NULL}' };
    const expected =
      conflicts === "overwrite"
        ? [
            { id: 1, title: "local", a: "[0:2]={0,10,20}", f: "1", jba: null },
            { ...two, title: "local" },
          ]
        : [{ ...two, title: "remote" }];
    expect([...(await remote.sql.unsafe(select))]).toEqual(expected);
    expect((await db.query(select)).rows).toEqual(expected);
  });
});
