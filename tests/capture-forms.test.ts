// Every statement form capture rewrites: (a) the log entries it writes, replayed onto the tables' state before
// the statement, give exactly their state after it (each old_row must be the row as it was, so a primary-key
// change must be an update carrying the OLD key), and (b) the caller sees exactly what plain PGlite returns for
// the original statement on an identical database.
import type { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ominipg } from "../src/index.js";
import {
  captureDb,
  closeAll,
  expectReplayGives,
  logSince,
  opsOf,
  plainDb,
  resultOf,
  snapshot,
  tablesWithKeys,
  watermark,
  type Entry,
  type Snapshot,
  type Table,
} from "./capture-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL DEFAULT 0, tags text[] DEFAULT '{}', meta jsonb DEFAULT '{}'::jsonb)`,
  `CREATE TABLE IF NOT EXISTS archive (id int PRIMARY KEY, name text, qty int)`,
  `CREATE TABLE IF NOT EXISTS prices (item_id int PRIMARY KEY, price numeric(10,2) NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS serials (id serial PRIMARY KEY, label text DEFAULT 'none', tenfold int GENERATED ALWAYS AS (id * 10) STORED)`,
  `CREATE TABLE IF NOT EXISTS idents (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS pairs (a int, b text, v int, PRIMARY KEY (a, b))`,
  `CREATE TABLE IF NOT EXISTS "Mixed Case" ("Id" int PRIMARY KEY, "Val" text)`,
  `CREATE SCHEMA IF NOT EXISTS "Other"`,
  `CREATE TABLE IF NOT EXISTS "Other"."Things" (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS old (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS notes (k int PRIMARY KEY, old int, new int, ominipg_t text)`,
  `CREATE TABLE IF NOT EXISTS kinds (id int PRIMARY KEY, j jsonb, ia int[], ta text[], b bytea, n numeric, u uuid, ts timestamptz, f float8, bo bool, t text)`,
  `CREATE TABLE IF NOT EXISTS local_note (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS parent (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS child_cascade (id int PRIMARY KEY, parent_id int REFERENCES parent (id) ON DELETE CASCADE ON UPDATE CASCADE)`,
  `CREATE TABLE IF NOT EXISTS child_setnull (id int PRIMARY KEY, parent_id int REFERENCES parent (id) ON DELETE SET NULL ON UPDATE SET NULL)`,
  `CREATE TABLE IF NOT EXISTS grandchild (id int PRIMARY KEY, child_id int REFERENCES child_cascade (id))`,
  `CREATE TABLE IF NOT EXISTS local_link (id int PRIMARY KEY, parent_id int REFERENCES parent (id))`,
  `CREATE TABLE IF NOT EXISTS leaf (id int PRIMARY KEY, link_id int REFERENCES local_link (id))`,
];
const SYNC = { schemas: ["public", "Other"], exclude: ["local_note", "local_link"], retry: { attempts: 1 } };

/** Same data in both databases before every test (sequences restarted, so defaults agree). */
const RESET = `
TRUNCATE items, archive, prices, serials, idents, pairs, "Mixed Case", "Other"."Things", old, notes, kinds, local_note, parent, child_cascade, child_setnull, grandchild, local_link, leaf RESTART IDENTITY;
INSERT INTO items VALUES (1, 'apple', 5, '{red}', '{"a": 1}'), (2, 'banana', 0, '{}', '{}'), (3, 'cherry', 12, '{red,dark}', '{"b": [1, 2]}'), (4, 'date', 7, NULL, NULL);
INSERT INTO archive VALUES (10, 'kept', 1);
INSERT INTO prices VALUES (1, 1.50), (2, 0.25), (3, 4.00);
INSERT INTO serials (label) VALUES ('s1'), ('s2');
INSERT INTO idents (v) VALUES ('i1');
INSERT INTO pairs VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', 3);
INSERT INTO "Mixed Case" VALUES (1, 'one');
INSERT INTO "Other"."Things" VALUES (1, 'a'), (2, 'b');
INSERT INTO old VALUES (1, 'o1');
INSERT INTO notes VALUES (1, 10, 20, 't1');
INSERT INTO kinds VALUES (1, '{"k": [1, 2]}', '{1,2}', '{a,b}', '\\x00ff', 1.5, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-01-02T03:04:05Z', 1.5, true, 'x');
INSERT INTO local_note VALUES (1, 'n');
INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
INSERT INTO child_cascade VALUES (10, 1), (11, 1), (12, 2);
INSERT INTO child_setnull VALUES (20, 1), (21, 2);
INSERT INTO grandchild VALUES (30, 12);
INSERT INTO local_link VALUES (40, 2);
INSERT INTO leaf VALUES (50, 40);
`;

let db: Ominipg;
let ref: PGlite;
let tables: Table[];

beforeAll(async () => {
  [db, ref] = await Promise.all([captureDb(SCHEMA, { sync: SYNC }), plainDb(SCHEMA)]);
  tables = (await tablesWithKeys(db, ["public", "Other"])).filter((t) => !t.name.startsWith("local_"));
});
afterAll(closeAll);

/**
 * Reset both databases to the same data, then run `sql` on both: the caller's result must equal plain PGlite's,
 * both databases must end up equal, and the log must replay the synced tables' change exactly. Returns the
 * captured entries.
 */
async function check(sql: string, params: unknown[] = []): Promise<Entry[]> {
  const { before, after, entries } = await run(sql, params);
  expectReplayGives(before, entries, after, tables);
  return entries;
}

/** `check` without the replay: the states before and after, and the entries, for tests that expect less in the log. */
async function run(
  sql: string,
  params: unknown[] = [],
): Promise<{ before: Snapshot; after: Snapshot; entries: Entry[] }> {
  await db.query(RESET);
  await ref.exec(RESET);
  const before = await snapshot(db, tables);
  const mark = await watermark(db);
  const expected =
    params.length > 0 || !sql.includes(";") ? await ref.query(sql, params) : (await ref.exec(sql)).at(-1)!;
  const actual = await db.query(sql, params);
  expect(resultOf(actual)).toEqual(resultOf(expected));
  const after = await snapshot(db, tables);
  expect(after).toEqual(await snapshot(ref, tables));
  return { before, after, entries: await logSince(db, mark) };
}

const sorted = (entries: Entry[]) => opsOf(entries).sort();

describe("INSERT", () => {
  it("multi-row VALUES with DEFAULT", async () => {
    const e = await check(
      `INSERT INTO items (id, name, qty, tags) VALUES (5, 'elder', DEFAULT, DEFAULT), (6, 'fig', 3, '{green}')`,
    );
    expect(opsOf(e)).toEqual(["I public.items", "I public.items"]);
  });

  it("DEFAULT VALUES, serial and generated columns, with and without RETURNING", async () => {
    expect(opsOf(await check(`INSERT INTO serials DEFAULT VALUES`))).toEqual(["I public.serials"]);
    const e = await check(`INSERT INTO serials DEFAULT VALUES RETURNING *`);
    expect(JSON.parse(e[0]!.new!)).toEqual({ id: 3, label: "none", tenfold: 30 });
    await check(`INSERT INTO serials (label) VALUES (DEFAULT), ('x') RETURNING tenfold, id`);
    await check(`INSERT INTO idents (v) VALUES ('i2') RETURNING id`);
    await check(`INSERT INTO idents OVERRIDING SYSTEM VALUE VALUES (50, 'forced')`);
  });

  it("INSERT ... SELECT, with ORDER BY / LIMIT and RETURNING", async () => {
    expect(sorted(await check(`INSERT INTO archive SELECT id, name, qty FROM items WHERE qty > 4`))).toEqual([
      "I public.archive",
      "I public.archive",
      "I public.archive",
    ]);
    await check(
      `INSERT INTO archive (id, name) SELECT id + 100, upper(name) FROM items ORDER BY id LIMIT 2 RETURNING *`,
    );
    await check(`INSERT INTO archive (id, name) WITH w AS (SELECT 200 AS id) SELECT id, 'w' FROM w`);
  });

  it("ON CONFLICT DO NOTHING: the skipped row captures nothing", async () => {
    const e = await check(`INSERT INTO items (id, name) VALUES (1, 'dup'), (7, 'grape') ON CONFLICT DO NOTHING`);
    expect(e.map((x) => [x.op, x.new && JSON.parse(x.new).id])).toEqual([["I", 7]]);
    expect(
      await check(`INSERT INTO items (id, name) VALUES (2, 'dup') ON CONFLICT (id) DO NOTHING RETURNING id`),
    ).toEqual([]);
  });

  it("ON CONFLICT DO UPDATE: the updated row is an update with its before image", async () => {
    const e = await check(
      `INSERT INTO items (id, name, qty) VALUES (1, 'apple', 1), (8, 'kiwi', 2) ON CONFLICT (id) DO UPDATE SET qty = items.qty + excluded.qty
       RETURNING id, qty, old.qty AS was, (old IS NULL) AS inserted`,
    );
    expect(e.map((x) => x.op)).toEqual(["U", "I"]);
    expect(JSON.parse(e[0]!.old!).qty).toBe(5);
    expect(JSON.parse(e[0]!.new!).qty).toBe(6);
    // DO UPDATE ... WHERE that skips the row: nothing captured for it.
    expect(
      await check(
        `INSERT INTO items (id, name) VALUES (3, 'c') ON CONFLICT (id) DO UPDATE SET name = excluded.name WHERE items.qty > 100`,
      ),
    ).toEqual([]);
    expect(
      opsOf(
        await check(
          `INSERT INTO pairs VALUES (1, 'x', 9) ON CONFLICT ON CONSTRAINT pairs_pkey DO UPDATE SET v = excluded.v`,
        ),
      ),
    ).toEqual(["U public.pairs"]);
  });
});

describe("UPDATE", () => {
  it("UPDATE ... FROM", async () => {
    expect(sorted(await check(`UPDATE items SET qty = p.price::int FROM prices p WHERE p.item_id = items.id`))).toEqual(
      ["U public.items", "U public.items", "U public.items"],
    );
    await check(
      `UPDATE items AS i SET qty = i.qty + 1 FROM prices AS p WHERE p.item_id = i.id AND p.price > 1 RETURNING i.id, p.price, old.qty AS before, new.qty AS after`,
    );
  });

  it("SET (a, b) = (...) and = (SELECT ...)", async () => {
    await check(`UPDATE items SET (name, qty) = ('z' || name, qty * 2) WHERE id <= 2`);
    await check(`UPDATE items SET (name, qty) = (SELECT 'sub', 99) WHERE id = 3 RETURNING *`);
  });

  it("changing the primary key is an update whose old_row carries the old key", async () => {
    const e = await check(`UPDATE items SET id = id + 10 WHERE id IN (1, 2)`);
    expect(e.map((x) => [x.op, JSON.parse(x.old!).id, JSON.parse(x.new!).id]).sort()).toEqual([
      ["U", 1, 11],
      ["U", 2, 12],
    ]);
    const c = await check(`UPDATE pairs SET b = b || '2' WHERE a = 1 RETURNING *`);
    expect(c.map((x) => JSON.parse(x.old!).b).sort()).toEqual(["x", "y"]);
  });

  it("a no-op update and an update of no rows", async () => {
    expect(opsOf(await check(`UPDATE items SET qty = qty WHERE id = 4`))).toEqual(["U public.items"]);
    expect(await check(`UPDATE items SET qty = 1 WHERE false`)).toEqual([]);
  });
});

describe("DELETE", () => {
  it("DELETE ... USING, with and without RETURNING", async () => {
    expect(
      opsOf(await check(`DELETE FROM items USING prices WHERE prices.item_id = items.id AND prices.price < 1`)),
    ).toEqual(["D public.items"]);
    await check(`DELETE FROM items i USING prices p WHERE p.item_id = i.id RETURNING i.*, p.price`);
  });

  it("with parameters", async () => {
    await check(`DELETE FROM items WHERE id = $1 OR name = $2`, [4, "cherry"]);
  });
});

describe("data-modifying WITH queries", () => {
  it("WITH d AS (DELETE ... RETURNING *) INSERT INTO ... SELECT ... FROM d", async () => {
    const e = await check(
      `WITH d AS (DELETE FROM items WHERE qty < 6 RETURNING *) INSERT INTO archive SELECT id, name, qty FROM d`,
    );
    expect(sorted(e)).toEqual(["D public.items", "D public.items", "I public.archive", "I public.archive"]);
  });

  it("RETURNING with duplicate and expression column names", async () => {
    await check(
      `WITH d AS (DELETE FROM items WHERE id > 2 RETURNING id, name, id, qty + 1, upper(name)) SELECT * FROM d`,
    );
    await check(
      `WITH u AS (UPDATE items SET qty = qty + 1 RETURNING id, upper(name), qty * 2) INSERT INTO archive SELECT * FROM u RETURNING *`,
    );
    await check(
      `WITH d (a, b) AS (DELETE FROM items WHERE id = 1 RETURNING id, name) INSERT INTO archive (id, name) SELECT a, b FROM d`,
    );
  });

  it("chained WITH queries, two synced tables, and a SELECT on top", async () => {
    await check(
      `WITH a AS (DELETE FROM items WHERE id = 1 RETURNING *), b AS (INSERT INTO archive SELECT id, name, qty FROM a RETURNING *) SELECT * FROM b`,
    );
    await check(`WITH i AS (INSERT INTO items (id, name) VALUES (9, 'nine') RETURNING *) SELECT * FROM i`);
    await check(`WITH x AS (DELETE FROM items WHERE id = 2) SELECT count(*)::int AS n FROM items`);
    await check(
      `WITH p AS (UPDATE prices SET price = price * 2 RETURNING item_id), q AS (UPDATE items SET qty = 0 WHERE id IN (SELECT item_id FROM p) RETURNING id) SELECT count(*) FROM q`,
    );
  });

  it("entries follow the order rows were changed in, not the order of the WITH queries", async () => {
    // PostgreSQL runs the DELETE first (the main query reads it), then the unreferenced INSERT: the INSERT only
    // succeeds because the row is gone, so the log must say D before I.
    const e = await check(
      `WITH a AS (INSERT INTO items (id, name) VALUES (1, 'again') RETURNING id), d AS (DELETE FROM items WHERE id = 1 RETURNING name) SELECT * FROM d`,
    );
    expect(opsOf(e)).toEqual(["D public.items", "I public.items"]);
    await check(
      `WITH a AS (INSERT INTO items (id, name) VALUES (2, 'again')), d AS (DELETE FROM items WHERE id = 2 RETURNING *) INSERT INTO archive SELECT id, name, qty FROM d`,
    );
  });

  it("a write to a table that is not synced is not captured, next to one that is", async () => {
    const e = await check(
      `WITH n AS (INSERT INTO local_note VALUES (2, 'x') RETURNING id) UPDATE items SET qty = 0 WHERE id IN (SELECT id FROM n) RETURNING *`,
    );
    expect(opsOf(e)).toEqual(["U public.items"]);
    expect(
      opsOf(
        await check(
          `WITH d AS (DELETE FROM items WHERE id = 3 RETURNING id, name) INSERT INTO local_note SELECT * FROM d`,
        ),
      ),
    ).toEqual(["D public.items"]);
    expect(await check(`INSERT INTO local_note VALUES (3, 'y')`)).toEqual([]);
  });

  it("WITH RECURSIVE around a write, and parameters only used after the data-modifying query", async () => {
    await check(
      `WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) DELETE FROM items WHERE id IN (SELECT n FROM r)`,
    );
    await check(
      `WITH d AS (DELETE FROM items WHERE id = $2 RETURNING *) INSERT INTO archive SELECT id, $1, qty FROM d`,
      ["renamed", 3],
    );
  });
});

describe("MERGE", () => {
  const merge = `MERGE INTO items t USING (VALUES (1, 5), (2, 0), (20, 3), (21, -1)) AS s(id, q) ON t.id = s.id
    WHEN MATCHED AND s.q = 0 THEN DELETE
    WHEN MATCHED THEN UPDATE SET qty = s.q, name = t.name || '!'
    WHEN NOT MATCHED AND s.q < 0 THEN DO NOTHING
    WHEN NOT MATCHED THEN INSERT (id, name, qty) VALUES (s.id, 'new', s.q)`;

  it("MATCHED UPDATE / DELETE, NOT MATCHED INSERT / DO NOTHING, without RETURNING", async () => {
    expect(sorted(await check(merge))).toEqual(["D public.items", "I public.items", "U public.items"]);
  });

  it("with RETURNING merge_action()", async () => {
    await check(`${merge} RETURNING merge_action(), t.*, old.qty`);
  });

  it("NOT MATCHED BY SOURCE, and a key change", async () => {
    await check(
      `MERGE INTO items t USING prices p ON t.id = p.item_id WHEN NOT MATCHED BY SOURCE THEN DELETE WHEN MATCHED THEN UPDATE SET id = t.id + 100 RETURNING merge_action(), t.id`,
    );
  });
});

describe("TRUNCATE", () => {
  it("is one table-level change T, not captured for tables that are not synced", async () => {
    expect(opsOf(await check(`TRUNCATE archive`))).toEqual(["T public.archive"]);
    expect(opsOf(await check(`TRUNCATE TABLE local_note, "Other"."Things"`))).toEqual(["T Other.Things"]);
    expect(await check(`TRUNCATE local_note`)).toEqual([]);
  });
});

describe("foreign key actions", () => {
  // Design decision: rows a foreign key action changes (ON DELETE CASCADE / SET NULL, ON UPDATE CASCADE) are not
  // captured. The remote has the same constraints and applies the action itself when the parent change is pushed.
  it("capture the parent's change only, not the children's cascaded changes", async () => {
    const del = await run(`DELETE FROM parent WHERE id = 1`);
    expect(opsOf(del.entries)).toEqual(["D public.parent"]);
    expect(del.after.get("public.child_cascade")!.size).toBe(1); // 10 and 11 went with their parent
    expect(JSON.parse(del.after.get("public.child_setnull")!.get("[20]")!).parent_id).toBeNull();
    const upd = await run(`UPDATE parent SET id = 5 WHERE id = 1`);
    expect(upd.entries.map((e) => [e.op, JSON.parse(e.old!).id, JSON.parse(e.new!).id])).toEqual([["U", 1, 5]]);
    expect(JSON.parse(upd.after.get("public.child_cascade")!.get("[10]")!).parent_id).toBe(5);
  });

  it("TRUNCATE ... CASCADE logs T for every synced table it empties", async () => {
    const e = await check(`TRUNCATE parent CASCADE`);
    // leaf references parent only through local_link, which is not synced: emptied all the same.
    expect(opsOf(e).sort()).toEqual([
      "T public.child_cascade",
      "T public.child_setnull",
      "T public.grandchild",
      "T public.leaf",
      "T public.parent",
    ]);
    expect(opsOf(await check(`TRUNCATE child_cascade CASCADE`)).sort()).toEqual([
      "T public.child_cascade",
      "T public.grandchild",
    ]);
  });
});

describe("scripts", () => {
  it("return the last statement's result, a SELECT or a write", async () => {
    const e = await check(
      `INSERT INTO items (id, name) VALUES (30, 'x'); UPDATE items SET qty = 1 WHERE id = 30; SELECT id, qty FROM items ORDER BY id`,
    );
    expect(opsOf(e)).toEqual(["I public.items", "U public.items"]);
    await check(`SELECT 1; DELETE FROM items WHERE id > 2`);
    await check(`UPDATE prices SET price = 0; INSERT INTO archive VALUES (40, 'x', 1) RETURNING *`);
    expect(
      opsOf(await check(`TRUNCATE archive; INSERT INTO archive VALUES (41, 'y', 2); SELECT * FROM archive`)),
    ).toEqual(["T public.archive", "I public.archive"]);
  });

  it("with their own BEGIN / COMMIT, and a data-modifying WITH in the middle", async () => {
    const e = await check(
      `BEGIN; DELETE FROM prices WHERE item_id = 1; COMMIT; WITH d AS (DELETE FROM items WHERE id = 2 RETURNING *) SELECT name FROM d; SELECT 42 AS answer`,
    );
    expect(opsOf(e)).toEqual(["D public.prices", "D public.items"]);
  });
});

describe("names", () => {
  it("quoted, mixed-case and schema-qualified tables", async () => {
    expect(opsOf(await check(`INSERT INTO "Mixed Case" ("Id", "Val") VALUES (2, 'two') RETURNING "Val"`))).toEqual([
      "I public.Mixed Case",
    ]);
    await check(`UPDATE public."Mixed Case" m SET "Val" = upper(m."Val")`);
    expect(opsOf(await check(`UPDATE "Other"."Things" SET v = v || '!' WHERE id = 1 RETURNING *`))).toEqual([
      "U Other.Things",
    ]);
    await check(`DELETE FROM "Other"."Things" USING "Mixed Case" WHERE "Things".id = "Mixed Case"."Id"`);
  });

  it("a table named old, and columns named old / new / ominipg_t", async () => {
    expect(opsOf(await check(`INSERT INTO old VALUES (2, 'o2') RETURNING *`))).toEqual(["I public.old"]);
    await check(`UPDATE old SET v = 'x' RETURNING id, v`);
    // A FROM item named old takes the name at the statement's level: old.x is that table, as in plain PostgreSQL.
    await check(`UPDATE items SET qty = old.id FROM old WHERE old.id = items.id RETURNING items.qty, old.id, new.qty`);
    // A table named old only inside a subquery leaves old.x meaning the row before the update.
    await check(`UPDATE items SET qty = (SELECT count(*) FROM old) WHERE id = 1 RETURNING old.qty, new.qty`);
    await check(`UPDATE old AS o SET v = 'y' RETURNING old.v, new.v, o.v`);
    await check(`UPDATE notes SET old = old + 1, new = new + 1, ominipg_t = 'changed' RETURNING old, new, ominipg_t`);
    await check(
      `INSERT INTO notes AS n VALUES (1, 0, 0, 'u') ON CONFLICT (k) DO UPDATE SET old = n.old * 2 RETURNING n.old, n.new`,
    );
  });

  it("the user's own RETURNING old.x / new.x, and RETURNING WITH (OLD AS ..)", async () => {
    await check(`UPDATE items SET qty = qty + 1 WHERE id = 1 RETURNING old.qty, new.qty, old.*, new.*`);
    await check(`DELETE FROM items WHERE id = 2 RETURNING old.name, new.name`);
    await check(
      `UPDATE items SET qty = 3 WHERE id = 3 RETURNING WITH (OLD AS o, NEW AS n) o.qty AS before, n.qty AS after`,
    );
    await check(`UPDATE notes SET new = 5 RETURNING WITH (OLD AS was) was.new, new.new`);
  });

  it("duplicate column names in RETURNING collapse as in plain PGlite", async () => {
    await check(`UPDATE items SET qty = 1 WHERE id = 1 RETURNING id, id, qty AS id, name`);
  });
});

describe("errors", () => {
  it("are PostgreSQL's errors for the original statement, positions included, and capture nothing", async () => {
    const cases: [string, unknown[]][] = [
      [`INSERT INTO items (id, name) VALUES (1, 'dup')`, []],
      [`INSERT INTO items (id, name) VALUES (9, NULL)`, []],
      [`UPDATE items SET qty = nope WHERE id = 1`, []],
      [`DELETE FROM items WHERE id = $1 RETURNING 1 / (qty - qty)`, [1]],
      [`INSERT INTO items (id, name) VALUES ($1, $2)`, ["not a number", "x"]],
      [`WITH d AS (DELETE FROM items RETURNING nope) SELECT * FROM d`, []],
      [`MERGE INTO items t USING prices p ON t.id = p.item_id WHEN MATCHED THEN UPDATE SET qty = 'x'`, []],
      [`UPDATE items SET id = 2 WHERE id = 1`, []],
    ];
    await db.query(RESET);
    await ref.exec(RESET);
    const mark = await watermark(db);
    for (const [sql, params] of cases) {
      const expected = await ref.query(sql, params).catch((e: unknown) => e as Record<string, unknown>);
      const actual = await db.query(sql, params).catch((e: unknown) => e as Record<string, unknown>);
      expect(expected, sql).toBeInstanceOf(Error);
      for (const k of ["code", "message", "detail", "position", "hint"])
        expect(actual[k as never], `${sql}: ${k}`).toEqual(expected[k as never]);
    }
    expect(await logSince(db, mark)).toEqual([]);
  });

  it("inside a transaction: the same, but a position in the rewritten text is PostgreSQL's internal position, never the caller's", async () => {
    const cases = [
      `UPDATE items SET qty = nope WHERE id = 1`,
      `DELETE FROM items WHERE id = 1 RETURNING nope`,
      `INSERT INTO items (id, name, qty) VALUES (9, 'x', 'not a number')`,
    ];
    const mark = await watermark(db);
    for (const sql of cases) {
      await db.query(`BEGIN`);
      await ref.exec(`BEGIN`);
      const expected = (await ref.query(sql).catch((e: unknown) => e)) as Record<string, unknown>;
      const actual = (await db.query(sql).catch((e: unknown) => e)) as Record<string, unknown>;
      await db.query(`ROLLBACK`);
      await ref.exec(`ROLLBACK`);
      expect(expected.position, sql).toBeDefined();
      for (const k of ["code", "message", "detail", "hint"]) expect(actual[k], `${sql}: ${k}`).toEqual(expected[k]);
      expect(actual.query, sql).toBe(sql);
      if (actual.position !== expected.position) {
        expect(actual.position, sql).toBeUndefined();
        expect(actual.internalPosition, sql).toBeDefined();
      }
    }
    expect(await logSince(db, mark)).toEqual([]);
  });
});

describe("parameters of every common type", () => {
  const row = [
    2,
    { nested: { a: [1, null, "x"] } },
    [1, 2, null],
    ["a", "b,c", '"q"'],
    new Uint8Array([0, 1, 255]),
    "12345678901234567890.123",
    "2f1c5b36-2d1d-4f5e-9a0e-1b2c3d4e5f60",
    new Date("2024-02-29T12:00:00.123Z"),
    Math.PI,
    false,
    "tëxt 'q'",
  ];

  it("inserted, updated and used in WHERE", async () => {
    const insert = `INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`;
    await check(insert, row);
    await check(insert, [3, ...row.slice(1).map(() => null)]);
    await check(`UPDATE kinds SET j = $2, ia = $3, b = $4, n = $5 WHERE id = $1 RETURNING j, ia, b, n`, [
      1,
      [1, 2],
      [],
      new Uint8Array([7]),
      "0.1",
    ]);
    await check(`DELETE FROM kinds WHERE u = $1 OR ts = $2 RETURNING id`, [
      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      new Date("1999-01-01Z"),
    ]);
  });
});
