// "Never silently": whatever would change a synced table (or Ominipg's own tables) where capture cannot see it is
// refused with a CaptureError, and nothing is written. What capture can see keeps working.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaptureError, type Ominipg } from "../src/index.js";
import { captureDb, closeAll, logSince, plain, snapshot, tablesWithKeys, watermark } from "./capture-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, qty int NOT NULL DEFAULT 0, touched text)`,
  `CREATE TABLE IF NOT EXISTS local_note (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS audit (id serial PRIMARY KEY, what text)`,
  `CREATE TABLE IF NOT EXISTS nokey (a int, b text)`,
  `CREATE OR REPLACE VIEW items_view AS SELECT id, qty FROM items`,
  // Writes: called from a SELECT, these would change rows behind the rewrite's back.
  `CREATE OR REPLACE FUNCTION bump(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET qty = qty + 1 WHERE id = i; RETURN i; END $$`,
  `CREATE OR REPLACE FUNCTION atomic_add(i int) RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO items (id) VALUES (i); END`,
  `CREATE OR REPLACE FUNCTION dyn(q text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE q; END $$`,
  // Wrappers of a writing function write just the same, whatever their volatility.
  `CREATE OR REPLACE FUNCTION bump_via(i int) RETURNS int LANGUAGE sql STABLE AS $$ SELECT public.bump(i) $$`,
  `CREATE OR REPLACE FUNCTION bump_via_via(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN bump_via(i); END $$`,
  `CREATE OR REPLACE FUNCTION bump_quoted(i int) RETURNS int LANGUAGE sql STABLE AS $$ SELECT "bump" (i) $$`,
  // DDL: a temp table it makes would hide the synced table's name from capture.
  `CREATE OR REPLACE FUNCTION scratch() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CREATE TEMP TABLE IF NOT EXISTS items (id int); END $$`,
  // Harmless: volatile, but they only read.
  `CREATE OR REPLACE FUNCTION double_it(i int) RETURNS int LANGUAGE sql AS $$ SELECT i * 2 $$`,
  `CREATE OR REPLACE FUNCTION note_count() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT count(*) FROM local_note); END $$`,
  `CREATE OR REPLACE FUNCTION quad(i int) RETURNS int LANGUAGE sql AS $$ SELECT double_it(double_it(i)) $$`,
  `CREATE OR REPLACE PROCEDURE add_item(i int) LANGUAGE sql AS $$ INSERT INTO items (id) VALUES (i) $$`,
  // A local-only table whose trigger writes a synced table.
  `CREATE OR REPLACE FUNCTION note_to_items() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO items (id) VALUES (NEW.id + 1000); RETURN NEW; END $$`,
  `CREATE OR REPLACE FUNCTION note_to_view() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO items_view (id, qty) VALUES (NEW.id + 2000, 0); RETURN NEW; END $$`,
  `CREATE OR REPLACE FUNCTION note_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (what) VALUES ('note ' || NEW.id); RETURN NEW; END $$`,
];
const SEED = `INSERT INTO items VALUES (1, 1, NULL), (2, 2, NULL) ON CONFLICT DO NOTHING; INSERT INTO local_note VALUES (1, 'n') ON CONFLICT DO NOTHING`;

/** Synced tables made uncapturable by what is attached to them. */
const RISKY = [
  `CREATE TABLE a (id int PRIMARY KEY)`,
  `CREATE TABLE b (id int PRIMARY KEY, at text)`,
  `CREATE TABLE c (id int PRIMARY KEY, v text)`,
  `CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`,
  `CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO c VALUES (NEW.id, 'from b'); RETURN NEW; END $$`,
  `CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.v := upper(NEW.v); RETURN NEW; END $$`,
  `CREATE TRIGGER a_after AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION noop()`,
  `CREATE TRIGGER b_before BEFORE INSERT ON b FOR EACH ROW EXECUTE FUNCTION log_it()`,
  `CREATE TRIGGER c_before BEFORE INSERT OR UPDATE ON c FOR EACH ROW EXECUTE FUNCTION stamp()`,
  `CREATE TABLE r (id int PRIMARY KEY)`,
  `CREATE TABLE r_copy (id int PRIMARY KEY)`,
  `CREATE RULE r_also AS ON INSERT TO r DO ALSO INSERT INTO r_copy VALUES (NEW.id)`,
  `CREATE TABLE counter (id int PRIMARY KEY, n int)`,
  `INSERT INTO counter VALUES (1, 0)`,
  `CREATE FUNCTION next_n() RETURNS int LANGUAGE sql AS $$ UPDATE counter SET n = n + 1 RETURNING n $$`,
  `CREATE TABLE numbered (id int PRIMARY KEY DEFAULT next_n(), v text)`,
  `CREATE TABLE loose (a int, b text)`,
  `CREATE TABLE slots (id int PRIMARY KEY DEFERRABLE, owner text)`,
  `CREATE TABLE p (id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k)`,
  `CREATE TABLE p_1 PARTITION OF p FOR VALUES IN (1)`,
  `CREATE TRIGGER p_after AFTER INSERT ON p_1 FOR EACH ROW EXECUTE FUNCTION noop()`,
];

let db: Ominipg;
let risky: Ominipg;
beforeAll(async () => {
  [db, risky] = await Promise.all([
    captureDb(SCHEMA, { sync: { exclude: ["local_note", "audit", "nokey"], retry: { attempts: 1 } } }),
    captureDb(RISKY),
  ]);
  await db.query(SEED);
});
afterAll(closeAll);

/** `sql` must fail on `on` with a CaptureError of `code` whose message matches `message`, and change no synced table and no log entry. */
async function expectRefused(
  sql: string,
  message: RegExp,
  code = "CAPTURE_UNSUPPORTED",
  on: Ominipg = db,
): Promise<void> {
  const tables = await tablesWithKeys(on);
  const before = plain(await snapshot(on, tables));
  const log = await logSince(on);
  const err = await on.query(sql).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, sql).toBeInstanceOf(CaptureError);
  expect((err as CaptureError).code, sql).toBe(code);
  expect((err as Error).message, sql).toMatch(message);
  expect(plain(await snapshot(on, tables))).toEqual(before);
  expect(await logSince(on)).toEqual(log);
}

/** The same on the database whose synced tables have triggers, rules, risky defaults, or no key. */
const expectRiskyRefused = (sql: string, message: RegExp, code = "CAPTURE_UNSUPPORTED") =>
  expectRefused(sql, message, code, risky);

describe("user functions", () => {
  it("a volatile function that writes, or a function calling one, is refused wherever it is called, naming it", async () => {
    await expectRefused(`SELECT bump(1)`, /bump/);
    await expectRefused(`SELECT * FROM items WHERE id = public.bump(2)`, /bump/);
    await expectRefused(`UPDATE items SET qty = bump(1) WHERE id = 2`, /bump/);
    await expectRefused(`SELECT dyn('DELETE FROM items')`, /dyn/);
    await expectRefused(`SELECT bump_via(1)`, /bump_via calls public\.bump/);
    await expectRefused(`UPDATE items SET qty = bump_via_via(1) WHERE id = 2`, /bump_via_via calls bump_via/);
    await expectRefused(`SELECT bump_quoted(1)`, /bump_quoted calls (public\.)?bump\b/);
    await expectRefused(`SELECT scratch()`, /scratch is a volatile function/);
  });

  it("a writing function run by an operator, a view or a domain's CHECK is refused there too", async () => {
    const hid = await captureDb([
      `CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL DEFAULT 0)`,
      `CREATE FUNCTION bump(i int, j int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET qty = qty + j WHERE id = i; RETURN i; END $$`,
      `CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = bump)`,
      `CREATE VIEW bumping AS SELECT bump(1, 1) AS b`,
      `CREATE VIEW bumping_too AS SELECT b FROM bumping`,
      `CREATE MATERIALIZED VIEW bumped_once AS SELECT bump(1, 0) AS b WITH NO DATA`,
      `CREATE DOMAIN bumped AS int CHECK (bump(VALUE, 1) IS NOT NULL)`,
      `CREATE TABLE with_bumped (id int PRIMARY KEY, b bumped)`,
      `INSERT INTO items VALUES (1, 0)`,
    ]);
    const refused = (sql: string, message: RegExp) => expectRefused(sql, message, "CAPTURE_UNSUPPORTED", hid);
    await refused(`SELECT 1 ### 2`, /uses operator ###, which runs (public\.)?bump\b/);
    await refused(`SELECT * FROM bumping`, /uses view bumping, which runs (public\.)?bump\b/);
    await refused(`SELECT b FROM public.bumping_too`, /uses view bumping_too, which runs bumping\b/);
    // A materialized view's query runs at its REFRESH, not when it is read.
    await refused(
      `REFRESH MATERIALIZED VIEW bumped_once`,
      /uses materialized view bumped_once, which runs (public\.)?bump\b/,
    );
    const read = await hid.query(`SELECT b FROM bumped_once`).catch((e: unknown) => e);
    expect(read).toMatchObject({ code: "55000" }); // PostgreSQL's "has not been populated", not a refusal
    await refused(`SELECT 1::bumped`, /uses domain bumped/);
    await refused(`INSERT INTO with_bumped VALUES (1, 1)`, /its column b is of domain bumped/);
    expect((await hid.query(`SELECT qty FROM items`)).rows).toEqual([{ qty: 0 }]);
  });

  it("a writing function run by a domain's DEFAULT, an index expression or a trigger's WHEN clause makes the table's writes refused", async () => {
    const hid = await captureDb([
      `CREATE TABLE journal (id serial PRIMARY KEY, what text)`,
      `CREATE FUNCTION jot() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.journal (what) VALUES ('jot'); RETURN 1; END $$`,
      `CREATE FUNCTION jot_i(i int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT i + public.jot() * 0 $$`,
      `CREATE DOMAIN stamped AS int DEFAULT jot()`,
      `CREATE TABLE d1 (id int PRIMARY KEY, s stamped)`,
      `CREATE TABLE d2 (id int PRIMARY KEY, v int)`,
      `CREATE INDEX d2_jot ON d2 (jot_i(v))`,
      `CREATE TABLE d3 (id int PRIMARY KEY, v int)`,
      `CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
      `CREATE TRIGGER d3_when BEFORE INSERT ON d3 FOR EACH ROW WHEN (jot() > 0) EXECUTE FUNCTION keep()`,
    ]);
    const refused = (sql: string, message: RegExp) => expectRefused(sql, message, "CAPTURE_UNSUPPORTED", hid);
    await refused(`INSERT INTO d1 (id) VALUES (1)`, /the default of column s \(its domain's\) calls (public\.)?jot\b/);
    await refused(`INSERT INTO d2 VALUES (1, 1)`, /index (public\.)?d2_jot calls (public\.)?jot_i\b/);
    await refused(`INSERT INTO d3 VALUES (1, 1)`, /the WHEN clause of trigger d3_when calls (public\.)?jot\b/);
    // A cast whose function writes: run by an explicit cast, and by a write to a column of its type.
    await hid.query(`CREATE TYPE wrapped AS (v int)`);
    await hid.query(
      `CREATE FUNCTION to_wrapped(i int) RETURNS wrapped LANGUAGE plpgsql AS $$ BEGIN PERFORM public.jot(); RETURN ROW(i); END $$`,
    );
    await hid.query(`CREATE CAST (int AS wrapped) WITH FUNCTION to_wrapped(int) AS ASSIGNMENT`);
    await hid.query(`CREATE TABLE d4 (id int PRIMARY KEY, w wrapped)`);
    await refused(`SELECT 7::wrapped`, /uses a cast to wrapped, which runs (public\.)?to_wrapped\b/);
    await refused(`INSERT INTO d4 VALUES (1, 7)`, /its column w is of a cast to wrapped/);
    expect((await hid.query(`SELECT count(*)::int AS n FROM journal`)).rows).toEqual([{ n: 0 }]);
  });

  it("a writing operator run by BETWEEN or a simple CASE, without its name in the statement, is refused", async () => {
    const hid = await captureDb([
      `CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL DEFAULT 0)`,
      `CREATE TYPE money2 AS (v int)`,
      `CREATE FUNCTION m_le(a money2, b money2) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET qty = qty + 1; RETURN a.v <= b.v; END $$`,
      `CREATE OPERATOR <= (LEFTARG = money2, RIGHTARG = money2, FUNCTION = m_le)`,
      // Operators are known by name: a writing "=" makes every statement with "=" refused, the helpers' too.
      `CREATE OPERATOR = (LEFTARG = money2, RIGHTARG = money2, FUNCTION = m_le)`,
    ]);
    for (const [sql, op] of [
      [`SELECT ROW(1)::money2 BETWEEN ROW(0)::money2 AND ROW(2)::money2`, "<="],
      [`SELECT CASE ROW(1)::money2 WHEN ROW(1)::money2 THEN 1 END`, "="],
    ] as const) {
      await expect(hid.query(sql), sql).rejects.toMatchObject({
        code: "CAPTURE_UNSUPPORTED",
        message: expect.stringContaining(`uses operator ${op}, which runs`),
      });
    }
  });

  it("a writing function called by attribute notation, by a database-qualified name, or as an aggregate's state function is refused", async () => {
    const hid = await captureDb([
      `CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL DEFAULT 0)`,
      `CREATE FUNCTION w(i items) RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET qty = qty + 1 WHERE id = i.id; RETURN 1; END $$`,
      `CREATE FUNCTION ins(i int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO items VALUES (i, 0); RETURN i; END $$`,
      `CREATE FUNCTION wstep(s int, v int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET qty = qty + v; RETURN s + v; END $$`,
      `CREATE AGGREGATE wagg(int) (SFUNC = wstep, STYPE = int, INITCOND = '0')`,
      `INSERT INTO items VALUES (1, 0)`,
    ]);
    const refused = (sql: string, message: RegExp) => expectRefused(sql, message, "CAPTURE_UNSUPPORTED", hid);
    await refused(`SELECT x.w FROM items x`, /calls w\b/);
    await refused(`SELECT (x).w FROM items x`, /calls w\b/);
    const db = (await hid.query<{ d: string }>(`SELECT current_database() AS d`)).rows[0]!.d;
    await refused(`SELECT "${db}".public.ins(2)`, /ins is a volatile function/);
    await refused(`SELECT wagg(g) FROM generate_series(1, 3) g`, /wagg calls (public\.)?wstep/);
    expect((await hid.query(`SELECT id, qty FROM items`)).rows).toEqual([{ id: 1, qty: 0 }]);
  });

  it("a SQL-standard (BEGIN ATOMIC) function body that writes is refused", async () => {
    await expectRefused(`SELECT atomic_add(50)`, /atomic_add/);
  });

  it("harmless functions are allowed: volatile SQL that only reads, and built-ins", async () => {
    expect((await db.query(`SELECT double_it(qty) AS d FROM items WHERE id = 2`)).rows).toEqual([{ d: 4 }]);
    expect((await db.query(`SELECT note_count()::int AS n, random() < 2 AS r`)).rows).toEqual([{ n: 1, r: true }]);
    expect((await db.query(`SELECT quad(2) AS q`)).rows).toEqual([{ q: 8 }]);
    const mark = await watermark(db);
    await db.query(`UPDATE items SET qty = double_it(qty) WHERE id = 1`);
    expect((await logSince(db, mark)).map((e) => e.op)).toEqual(["U"]);
  });

  it("CALL and DO are refused", async () => {
    await expectRefused(`CALL add_item(60)`, /CALL/);
    await expectRefused(`DO $$ BEGIN INSERT INTO items (id) VALUES (61); END $$`, /DO block/);
  });
});

describe("statements that would write outside the rewrite", () => {
  it("COPY FROM into a synced table", async () => {
    await expectRefused(`COPY items FROM '/dev/blob'`, /COPY FROM into synced table public\.items/);
  });

  it("EXPLAIN ANALYZE of a write, also inside a WITH query; plain EXPLAIN is allowed", async () => {
    await expectRefused(`EXPLAIN ANALYZE DELETE FROM items`, /EXPLAIN ANALYZE of a write to public\.items/);
    await expectRefused(
      `EXPLAIN (ANALYZE, COSTS OFF) WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d`,
      /EXPLAIN ANALYZE/,
    );
    expect((await db.query(`EXPLAIN DELETE FROM items`)).rows.length).toBeGreaterThan(0);
    expect((await db.query(`EXPLAIN (ANALYZE false) DELETE FROM items`)).rows.length).toBeGreaterThan(0);
  });

  it("COPY (write RETURNING ...) TO, CREATE TABLE AS / SELECT INTO around a write, any PREPARE", async () => {
    await expectRefused(`COPY (DELETE FROM items RETURNING *) TO '/dev/blob'`, /COPY running a write to public\.items/);
    await expectRefused(
      `CREATE TABLE gone AS WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d`,
      /CREATE TABLE AS/,
    );
    await expectRefused(`PREPARE p AS UPDATE items SET qty = 0`, /PREPARE is not captured/);
    // Any PREPARE: at EXECUTE its names resolve, and the functions it calls run, as they are then (a temp table
    // that hid a synced table dropped, a SET search_path, a function replaced by one that writes).
    await expectRefused(`PREPARE q AS SELECT 1`, /PREPARE is not captured/);
  });

  it("a write that pgsql-deparser (which prints the rewrite) would print back as another statement", async () => {
    const prints = /the rewrite goes through pgsql-deparser, and it prints it as/;
    // A lost pair of parentheses: (x AND y) IS NULL would run as x AND (y IS NULL).
    await expectRefused(
      `UPDATE items SET qty = CASE WHEN (qty > 0 AND touched IS NULL) IS NULL THEN 1 ELSE 2 END WHERE id = 1`,
      prints,
    );
    await expectRefused(
      `INSERT INTO items (id) SELECT id + 100 FROM items ORDER BY qty FETCH FIRST 1 ROWS WITH TIES`,
      prints,
    );
    await expectRefused(
      `INSERT INTO items (id) SELECT coalesce(qty, 0) + 200 FROM items GROUP BY DISTINCT ROLLUP (qty), ROLLUP (qty)`,
      prints,
    );
    await expectRefused(
      `UPDATE items SET qty = JSON_VALUE('{"k": 6}', '$.k' RETURNING int) WHERE id = 1`,
      /pgsql-deparser, and it cannot print it \(.*JsonFuncExpr/,
    );
    // What it prints faithfully runs, array constructors (whose nodes hold text positions of their own) included.
    const mark = await watermark(db);
    await db.query(`UPDATE items SET touched = (ARRAY['a', 'b'])::text WHERE id = 1`);
    expect((await logSince(db, mark)).map((e) => e.op)).toEqual(["U"]);
  });

  it("DML through a view", async () => {
    await expectRefused(`UPDATE items_view SET qty = 5`, /through view items_view/);
    await expectRefused(`WITH d AS (DELETE FROM items_view RETURNING *) SELECT * FROM d`, /through view/);
    expect((await db.query(`SELECT count(*)::int AS n FROM items_view`)).rows).toEqual([{ n: 2 }]);
  });
});

describe("triggers", () => {
  it("an AFTER trigger, or a BEFORE trigger that writes, on a synced table (or on a partition of it) makes its writes refused", async () => {
    await expectRiskyRefused(`INSERT INTO a VALUES (1)`, /public\.a: its AFTER trigger a_after/);
    await expectRiskyRefused(`TRUNCATE a`, /AFTER trigger a_after/);
    await expectRiskyRefused(`INSERT INTO b VALUES (1)`, /BEFORE trigger b_before/);
    await expectRiskyRefused(
      `INSERT INTO p VALUES (1, 1)`,
      /public\.p: its partition or child table public\.p_1: its AFTER trigger p_after/,
    );
    expect(
      (await risky.query(`SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b) + (SELECT count(*) FROM c) AS n`))
        .rows,
    ).toEqual([{ n: 0 }]);
    // A BEFORE trigger that only changes NEW is fine: the captured image is the row as stored.
    const mark = await watermark(risky);
    await risky.query(`INSERT INTO c VALUES (1, 'low')`);
    expect((await logSince(risky, mark)).map((e) => [e.op, e.new])).toEqual([["I", `{"v": "LOW", "id": 1}`]]);
  });

  it("a trigger on a table that is not synced: refused when it may write a synced table, allowed when it writes local tables", async () => {
    await db.query(`CREATE TRIGGER to_audit AFTER INSERT ON local_note FOR EACH ROW EXECUTE FUNCTION note_audit()`);
    const mark = await watermark(db);
    await db.query(`INSERT INTO local_note VALUES (5, 'audited')`);
    expect((await db.query(`SELECT what FROM audit`)).rows).toEqual([{ what: "note 5" }]);
    expect(await logSince(db, mark)).toEqual([]);

    await db.query(`CREATE TRIGGER to_items AFTER INSERT ON local_note FOR EACH ROW EXECUTE FUNCTION note_to_items()`);
    await expectRefused(
      `INSERT INTO local_note VALUES (6, 'x')`,
      /local_note, which is not synced but may change synced tables: its AFTER trigger to_items/,
    );
    await expectRefused(`WITH n AS (INSERT INTO local_note VALUES (6, 'x') RETURNING id) SELECT * FROM n`, /to_items/);
    await expectRefused(`COPY local_note FROM '/dev/blob'`, /COPY FROM into local_note .*to_items/);
    await db.query(`DROP TRIGGER to_items ON local_note`);
    // Through a view over a synced table.
    await db.query(`CREATE TRIGGER to_view AFTER INSERT ON local_note FOR EACH ROW EXECUTE FUNCTION note_to_view()`);
    await expectRefused(`INSERT INTO local_note VALUES (6, 'x')`, /its AFTER trigger to_view/);
    await db.query(`DROP TRIGGER to_view ON local_note; DROP TRIGGER to_audit ON local_note`);
    await db.query(`INSERT INTO local_note VALUES (6, 'x')`);
  });

  it("a table that is not synced, whose deletes or updates a foreign key action carries into a synced table: those are refused", async () => {
    // folder and shelf are local-only; filed (synced) cascades from shelf, which cascades from folder.
    const scoped = await captureDb(
      [
        `CREATE TABLE IF NOT EXISTS folder (id int PRIMARY KEY, name text)`,
        `CREATE TABLE IF NOT EXISTS shelf (id int PRIMARY KEY, folder_id int REFERENCES folder ON DELETE CASCADE)`,
        `CREATE TABLE IF NOT EXISTS filed (id int PRIMARY KEY, shelf_id int REFERENCES shelf ON DELETE CASCADE ON UPDATE CASCADE)`,
        `CREATE TABLE IF NOT EXISTS tag (id int PRIMARY KEY)`,
        `CREATE TABLE IF NOT EXISTS tagged (id int PRIMARY KEY, tag_id int REFERENCES tag)`,
      ],
      { sync: { exclude: ["folder", "shelf", "tag"], retry: { attempts: 1 } } },
    );
    await scoped.query(
      `INSERT INTO folder VALUES (1, 'f'); INSERT INTO shelf VALUES (1, 1); INSERT INTO filed VALUES (1, 1); INSERT INTO tag VALUES (1), (2); INSERT INTO tagged VALUES (1, 1)`,
    );
    const why =
      /which is not synced: a foreign key action .* into synced table public\.filed.* sync public\.(shelf|folder) too/;
    await expectRefused(`DELETE FROM shelf WHERE id = 1`, why, "CAPTURE_UNSUPPORTED", scoped);
    await expectRefused(`UPDATE shelf SET id = 2 WHERE id = 1`, why, "CAPTURE_UNSUPPORTED", scoped);
    await expectRefused(`DELETE FROM folder`, why, "CAPTURE_UNSUPPORTED", scoped); // two steps away
    await expectRefused(
      `INSERT INTO shelf VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET folder_id = 1`,
      why,
      "CAPTURE_UNSUPPORTED",
      scoped,
    );
    // Inserting into them changes nothing downstream; a foreign key without actions (tag) carries nothing.
    await scoped.query(
      `INSERT INTO shelf VALUES (2, 1); INSERT INTO folder VALUES (2, 'g') ON CONFLICT DO NOTHING; DELETE FROM tag WHERE id = 2`,
    );
    expect((await scoped.query(`SELECT count(*)::int AS n FROM filed`)).rows).toEqual([{ n: 1 }]);
  });

  it("extra_float_digits below 1 (it would round captured floats) is refused; 1 and more, and RESET, are not", async () => {
    for (const sql of [
      `SET extra_float_digits = 0`,
      `SET LOCAL extra_float_digits TO -3`,
      `SET extra_float_digits = '0'`,
      `SELECT set_config('extra_float_digits', '-1', false)`,
      `SELECT set_config('Extra_Float_Digits', $1, false)`,
      `ALTER DATABASE template1 SET extra_float_digits = 0`,
    ]) {
      const err = await db.query(sql, sql.includes("$1") ? ["0"] : []).catch((e: unknown) => e);
      expect(err, sql).toMatchObject({
        code: "CAPTURE_UNSUPPORTED",
        message: expect.stringContaining("round the float values"),
      });
    }
    expect((await db.query(`SHOW extra_float_digits`)).rows).toEqual([{ extra_float_digits: "1" }]);
    await db.query(`SET extra_float_digits = 3; RESET extra_float_digits; SET extra_float_digits TO DEFAULT`);
    await db.query(`SELECT set_config('extra_float_digits', '2', false)`);
    await db.query(`RESET extra_float_digits`);
  });

  it("session_replication_role other than origin (local foreign-key actions off, the remote's on) is refused", async () => {
    for (const sql of [
      `SET session_replication_role = replica`,
      `SET LOCAL session_replication_role TO 'local'`,
      `SELECT set_config('session_replication_role', 'replica', false)`,
    ]) {
      const err = await db.query(sql).catch((e: unknown) => e);
      expect(err, sql).toMatchObject({
        code: "CAPTURE_UNSUPPORTED",
        message: expect.stringContaining("keep it origin"),
      });
    }
    expect((await db.query(`SHOW session_replication_role`)).rows).toEqual([{ session_replication_role: "origin" }]);
    await db.query(`SET session_replication_role = origin; SET session_replication_role TO DEFAULT`);
  });

  it("set_config() of a setting named by an expression is refused: it could be one of those", async () => {
    for (const sql of [
      `SELECT set_config(n, 'replica', false) FROM (VALUES ('session_replication_role')) AS v(n)`,
      `SELECT set_config('session_' || 'replication_role', 'replica', false)`,
    ]) {
      const err = await db.query(sql).catch((e: unknown) => e);
      expect(err, sql).toMatchObject({
        code: "CAPTURE_UNSUPPORTED",
        message: expect.stringContaining("as a constant"),
      });
    }
    expect((await db.query(`SHOW session_replication_role`)).rows).toEqual([{ session_replication_role: "origin" }]);
    expect((await db.query(`SELECT set_config('application_name', 'x', false) AS v`)).rows).toEqual([{ v: "x" }]);
  });

  it("standard_conforming_strings off, IntervalStyle sql_standard and a DateStyle other than ISO (captured values read otherwise) are refused", async () => {
    for (const [sql, advice] of [
      [`SET standard_conforming_strings = off`, "keep it on"],
      [`SELECT set_config('standard_conforming_strings', 'off', false)`, "keep it on"],
      [`SET IntervalStyle = sql_standard`, "keep postgres"],
      [`SET intervalstyle TO 'SQL_STANDARD'`, "keep postgres"],
      [`SET DateStyle = 'SQL, DMY'`, "keep the ISO output style"],
      [`SET DateStyle = DMY, Postgres`, "keep the ISO output style"],
      [`SELECT set_config('datestyle', 'German', false)`, "keep the ISO output style"],
    ] as const) {
      const err = await db.query(sql).catch((e: unknown) => e);
      expect(err, sql).toMatchObject({ code: "CAPTURE_UNSUPPORTED", message: expect.stringContaining(advice) });
    }
    await db.query(`SET standard_conforming_strings = on; SET IntervalStyle = iso_8601; RESET IntervalStyle`);
    await db.query(`SET DateStyle = 'ISO, DMY'; SET DateStyle = YMD; RESET DateStyle`);
  });

  it("SELECT ... INTO a temp table that hides a synced one: writes to it are the temp table's, never logged", async () => {
    const mark = await watermark(db);
    const before = (await db.query(`SELECT id, qty FROM public.items ORDER BY id`)).rows;
    await db.query(`SELECT * INTO TEMP TABLE items FROM public.items`);
    try {
      await db.query(`UPDATE items SET qty = 99`);
      await db.query(`INSERT INTO items (id, qty) VALUES (900, 1)`);
      expect((await db.query(`SELECT count(*)::int AS n FROM items WHERE qty = 99`)).rows).toEqual([{ n: 2 }]);
      expect((await db.query(`SELECT id, qty FROM public.items ORDER BY id`)).rows).toEqual(before);
      expect(await logSince(db, mark)).toEqual([]);
    } finally {
      await db.query(`DROP TABLE pg_temp.items`);
    }
    await db.query(`UPDATE items SET qty = qty WHERE id = 1`);
    expect((await logSince(db, mark)).map((e) => e.op)).toEqual(["U"]);
  });

  it("a rule on a synced table, or a default that calls a writing function, makes its writes refused", async () => {
    await expectRiskyRefused(`INSERT INTO r VALUES (1)`, /rule r_also/);
    await expectRiskyRefused(`INSERT INTO numbered (v) VALUES ('x')`, /default of column id calls next_n/);
    expect((await risky.query(`SELECT n FROM counter`)).rows).toEqual([{ n: 0 }]);
  });
});

describe("tables without a primary key", () => {
  it("fail with CAPTURE_NO_PRIMARY_KEY at their first captured write, not at connect; reads work", async () => {
    expect((await risky.query(`SELECT count(*)::int AS n FROM loose`)).rows).toEqual([{ n: 0 }]);
    for (const sql of [
      `INSERT INTO loose VALUES (1, 'x')`,
      `UPDATE loose SET a = 2`,
      `DELETE FROM loose`,
      `TRUNCATE loose`,
    ]) {
      await expectRiskyRefused(sql, /public\.loose: it has no primary key/, "CAPTURE_NO_PRIMARY_KEY");
    }
  });

  it("nor a DEFERRABLE one: its writes are refused with how to go on", async () => {
    // A push writes by INSERT ... ON CONFLICT on the key, which PostgreSQL refuses on a deferrable one.
    for (const sql of [`INSERT INTO slots VALUES (1, 'a')`, `UPDATE slots SET id = 3 - id`]) {
      await expectRiskyRefused(sql, /public\.slots: its primary key is DEFERRABLE: make it NOT DEFERRABLE/);
    }
  });

  it("are written freely once excluded from sync", async () => {
    await db.query(`INSERT INTO nokey VALUES (1, 'x')`);
    expect((await db.query(`SELECT count(*)::int AS n FROM nokey`)).rows).toEqual([{ n: 1 }]);
  });
});

describe("Ominipg's own tables", () => {
  it("refuse writes and DDL", async () => {
    await db.query(`INSERT INTO items VALUES (70, 0)`); // at least one entry to protect
    const meta = (await db.query(`SELECT key, value FROM _ominipg_meta ORDER BY key`)).rows;
    for (const sql of [
      `DELETE FROM _sync_queue`,
      `DELETE FROM public._sync_queue WHERE id > 0`,
      `INSERT INTO _sync_queue (schema_name, table_name, op) VALUES ('public', 'items', 'T')`,
      `UPDATE _sync_queue SET op = 'D'`,
      `UPDATE _sync_queue SET priority = 1, new_row = NULL`,
      `WITH x AS (DELETE FROM _sync_queue RETURNING *) SELECT count(*) FROM x`,
      `WITH x AS (DELETE FROM _sync_queue RETURNING id) INSERT INTO local_note SELECT id, 'x' FROM x`,
      `TRUNCATE _sync_queue`,
      `DROP TABLE _sync_queue`,
      `ALTER TABLE _sync_queue ADD COLUMN x int`,
      `UPDATE _ominipg_meta SET value = 'x'`,
      `DELETE FROM _ominipg_meta`,
      `COPY _sync_queue FROM '/dev/blob'`,
    ]) {
      await expectRefused(sql, /Ominipg's own table/);
    }
    expect((await db.query(`SELECT key, value FROM _ominipg_meta ORDER BY key`)).rows).toEqual(meta);
  });

  it("the sync guide's priority update works as written, and reading is free", async () => {
    const mark = await watermark(db);
    await db.query(`INSERT INTO items VALUES (80, 0)`);
    const r = await db.query(`UPDATE _sync_queue SET priority = 1 WHERE table_name IN ('orders', 'payments')`);
    expect(r).toMatchObject({ command: "UPDATE", rowCount: 0 });
    const r2 = await db.query(`UPDATE _sync_queue SET priority = 1 WHERE table_name IN ('items') AND id > $1`, [mark]);
    expect(r2.rowCount).toBe(1);
    expect((await logSince(db, mark)).map((e) => [e.op, e.priority])).toEqual([["I", 1]]);
    expect((await db.query(`SELECT count(*) > 0 AS some FROM _sync_queue`)).rows).toEqual([{ some: true }]);
  });
});
