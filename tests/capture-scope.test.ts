// Which tables are captured: every table with a primary key in the synced schemas, also one created after
// connect; `sync.tables` and `sync.exclude` narrow it, with plain or schema-qualified names. DDL run through
// query() refreshes what capture knows. Plans are cached per SQL text until DDL.
import { afterAll, describe, expect, it } from "vitest";
import { Catalog } from "../src/capture/catalog.js";
import { CaptureError, type Ominipg } from "../src/index.js";
import type { Driver } from "../src/core/driver.js";
import { resolveSyncOptions } from "../src/core/options.js";
import { Planner } from "../src/query/planner.js";
import { captureDb, closeAll, logSince, opsOf, watermark } from "./capture-helpers.js";

afterAll(closeAll);

const SCHEMA = [
  `CREATE SCHEMA "Other"`,
  `CREATE SCHEMA elsewhere`,
  `CREATE TABLE a (id int PRIMARY KEY)`,
  `CREATE TABLE b (id int PRIMARY KEY)`,
  `CREATE TABLE "Mixed Case" (id int PRIMARY KEY)`,
  `CREATE TABLE "Other".a (id int PRIMARY KEY)`,
  `CREATE TABLE "Other".c (id int PRIMARY KEY)`,
  `CREATE TABLE elsewhere.e (id int PRIMARY KEY)`,
];
const WRITES = `INSERT INTO a VALUES (1); INSERT INTO b VALUES (1); INSERT INTO "Mixed Case" VALUES (1); INSERT INTO "Other".a VALUES (1); INSERT INTO "Other".c VALUES (1); INSERT INTO elsewhere.e VALUES (1)`;

type Scope = { schemas?: string[]; tables?: string[]; exclude?: string[] };

/** The tables whose writes `db` captures when every table gets one insert. */
async function capturedBy(db: Ominipg): Promise<string[]> {
  await db.query(WRITES);
  return opsOf(await logSince(db)).map((op) => op.slice(2));
}

describe("sync scope", () => {
  let plainScope: Promise<Ominipg> | undefined;
  const defaultDb = () => (plainScope ??= captureDb(SCHEMA));

  it("default: every table with a primary key in public", async () => {
    expect(await capturedBy(await defaultDb())).toEqual(["public.a", "public.b", "public.Mixed Case"]);
  });

  it("schemas, tables and exclude, with plain and schema-qualified names", async () => {
    const narrowed = await captureDb(SCHEMA, {
      sync: {
        schemas: ["public", "Other"],
        tables: ["b", "Other.c", "Other.a"],
        exclude: ["Other.a"],
        retry: { attempts: 1 },
      },
    });
    expect(await capturedBy(narrowed)).toEqual(["public.b", "Other.c"]);
    // The same catalog code the client uses, for more combinations on one database.
    const driver = ((await defaultDb()) as unknown as { driver: Driver }).driver;
    const synced = async (sync: Scope) => {
      const { schemas, tables, exclude } = resolveSyncOptions(sync);
      return [...(await Catalog.load(driver, { schemas, tables, exclude })).tables.values()]
        .map((t) => `${t.schema}.${t.name}`)
        .sort();
    };
    expect(await synced({ schemas: ["public", "Other"] })).toEqual([
      "Other.a",
      "Other.c",
      "public.Mixed Case",
      "public.a",
      "public.b",
    ]);
    // A plain name matches that table in every synced schema; a qualified one only in its schema.
    expect(await synced({ schemas: ["public", "Other"], exclude: ["a"] })).toEqual([
      "Other.c",
      "public.Mixed Case",
      "public.b",
    ]);
    expect(await synced({ schemas: ["public", "Other"], exclude: ["Other.a", "Mixed Case"] })).toEqual([
      "Other.c",
      "public.a",
      "public.b",
    ]);
    expect(
      await synced({ schemas: ["public", "Other"], tables: ["public.a", "Mixed Case"], exclude: ["Mixed Case"] }),
    ).toEqual(["public.a"]);
    expect(await synced({ schemas: ["elsewhere"] })).toEqual(["elsewhere.e"]);
  });
});

describe("DDL after connect", () => {
  let ddl: Promise<Ominipg> | undefined;
  /** One database for the DDL tests (they use distinct tables). */
  const ddlDb = () =>
    (ddl ??= captureDb(
      [`CREATE SCHEMA s2`, `CREATE TABLE s2.t (id int PRIMARY KEY)`, `CREATE TABLE t (id int PRIMARY KEY)`],
      {
        sync: { schemas: ["public", "s2"], retry: { attempts: 1 } },
      },
    ));

  it("a table created through query() is captured, also inside the transaction that creates it", async () => {
    const db = await ddlDb();
    const mark = await watermark(db);
    await db.query(`CREATE TABLE late (id int PRIMARY KEY, v text)`);
    await db.query(`INSERT INTO late VALUES (1, 'x')`);
    await db.query(`BEGIN; CREATE TABLE later (id int PRIMARY KEY)`);
    await db.query(`INSERT INTO later VALUES (1)`);
    await db.query(`COMMIT`);
    await db.query(`BEGIN`);
    await db.query(`CREATE TABLE never (id int PRIMARY KEY)`);
    await db.query(`ROLLBACK`);
    await expect(db.query(`INSERT INTO never VALUES (1)`)).rejects.toMatchObject({ code: "42P01" });
    expect(opsOf(await logSince(db, mark))).toEqual(["I public.late", "I public.later"]);
  });

  it("a script that changes the schema or search_path, then writes: the writes are planned after the change", async () => {
    const db = await ddlDb();
    const mark = await watermark(db);
    await db.query(`CREATE TABLE scripted (id int PRIMARY KEY); INSERT INTO scripted VALUES (1)`);
    await db.query(`ALTER TABLE scripted ADD COLUMN note text; UPDATE scripted SET note = 'hello' WHERE id = 1`);
    await db.query(
      `SET search_path = s2, public; INSERT INTO t VALUES (10); RESET search_path; INSERT INTO t VALUES (10)`,
    );
    const entries = await logSince(db, mark);
    expect(opsOf(entries)).toEqual(["I public.scripted", "U public.scripted", "I s2.t", "I public.t"]);
    expect(JSON.parse(entries[1]!.new!)).toMatchObject({ id: 1, note: "hello" });
    // Still one transaction, as PostgreSQL runs a script: a failure after the change undoes it all.
    const failing = `CREATE TABLE undone (id int PRIMARY KEY); INSERT INTO undone VALUES (1); INSERT INTO undone VALUES (1)`;
    await expect(db.query(failing)).rejects.toMatchObject({ code: "23505" });
    expect((await db.query(`SELECT to_regclass('undone') AS r`)).rows).toEqual([{ r: null }]);
    // Inside the caller's transaction it stays in it.
    await db.query(`BEGIN`);
    await db.query(`CREATE TABLE inside (id int PRIMARY KEY); INSERT INTO inside VALUES (1)`);
    await db.query(`ROLLBACK`);
    expect((await db.query(`SELECT to_regclass('inside') AS r`)).rows).toEqual([{ r: null }]);
    expect(opsOf(await logSince(db, mark))).toHaveLength(4);
  });

  it("keys, triggers, functions and search_path changed through query() are taken into account", async () => {
    const db = await ddlDb();
    const mark = await watermark(db);
    await db.query(`CREATE TABLE loose (id int)`);
    await expect(db.query(`INSERT INTO loose VALUES (1)`)).rejects.toMatchObject({ code: "CAPTURE_NO_PRIMARY_KEY" });
    await db.query(`ALTER TABLE loose ADD PRIMARY KEY (id)`);
    await db.query(`INSERT INTO loose VALUES (1)`);
    await db.query(`CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
    await db.query(`CREATE TRIGGER tr AFTER UPDATE ON loose FOR EACH ROW EXECUTE FUNCTION f()`);
    await expect(db.query(`UPDATE loose SET id = 2`)).rejects.toBeInstanceOf(CaptureError);
    await db.query(`DROP TRIGGER tr ON loose`);
    await db.query(`UPDATE loose SET id = 2`);
    await db.query(`CREATE FUNCTION w() RETURNS int LANGUAGE sql AS $$ DELETE FROM loose RETURNING 1 $$`);
    await expect(db.query(`SELECT w()`)).rejects.toMatchObject({ code: "CAPTURE_UNSUPPORTED" });
    // The same text means another table once search_path changes: the cached plan must not be reused.
    await db.query(`INSERT INTO t VALUES (1)`);
    await db.query(`SET search_path = s2, public`);
    await db.query(`INSERT INTO t VALUES (1)`);
    await db.query(`RESET search_path`);
    // Also when set_config() changes it, and another setting changed meanwhile keeps nothing stale either.
    await db.query(`SET TimeZone TO 'UTC'`);
    await db.query(`INSERT INTO t VALUES (2)`);
    await db.query(`SELECT set_config('search_path', 's2, public', false)`);
    await db.query(`INSERT INTO t VALUES (2)`);
    await db.query(`SELECT set_config($1, 'public', false)`, ["search_path"]);
    await db.query(`INSERT INTO t VALUES (3)`);
    expect(opsOf(await logSince(db, mark))).toEqual([
      "I public.loose",
      "U public.loose",
      "I public.t",
      "I s2.t",
      "I public.t",
      "I s2.t",
      "I public.t",
    ]);
  });

  it("plan cache: a repeated statement is planned once (no re-parse, no catalog look-up)", async () => {
    const db = await ddlDb();
    await db.query(`CREATE TABLE c (id int PRIMARY KEY, v int)`);
    const driver = (db as unknown as { driver: Driver }).driver;
    let lookups = 0;
    const planner = new Planner({
      catalog: () => {
        lookups++;
        return Catalog.load(driver, { schemas: ["public", "s2"], tables: [], exclude: [] });
      },
      describeNames: async (sql) => (await driver.describe(sql)).map((f) => f.name),
    });
    const sql = `INSERT INTO c VALUES ($1, $2)`;
    const first = await planner.plan(sql);
    expect(first.kind === "single" && first.step.shape).toBe("captured-logged");
    for (let i = 0; i < 5; i++) expect(await planner.plan(sql)).toBe(first);
    expect(lookups).toBe(1);
    planner.invalidate();
    expect(await planner.plan(sql)).not.toBe(first);
  });
});

describe("what the catalog reads", () => {
  it("keys in index order, the columns every UPDATE logs, and how each column's json value is kept", async () => {
    const db = await captureDb([
      `CREATE DOMAIN posint AS int CHECK (VALUE > 0)`,
      `CREATE DOMAIN posint2 AS posint`,
      `CREATE DOMAIN doc AS jsonb`,
      `CREATE TYPE pair AS (a int, b text)`,
      `CREATE TABLE k (b text, a int, c int, title text, n posint, m posint2, d doc, p pair, arr int[], js json,
                       other int, PRIMARY KEY (b, c, a), UNIQUE (a, b), FOREIGN KEY (other, b) REFERENCES k (a, b))`,
      `CREATE UNIQUE INDEX ON k (lower(title)) WHERE n > 3`,
      `CREATE UNIQUE INDEX ON k ((d ->> 'slug'))`,
      `CREATE TABLE plain (id int PRIMARY KEY, v int)`,
      `CREATE SCHEMA elsewhere`,
      `CREATE TABLE elsewhere.o (id int PRIMARY KEY, ref int REFERENCES plain (id))`,
    ]);
    const driver = (db as unknown as { driver: Driver }).driver;
    const catalog = await Catalog.load(driver, { schemas: ["public"], tables: [], exclude: [] });
    const byName = new Map([...catalog.tables.values()].map((t) => [`${t.schema}.${t.name}`, t]));
    expect([...byName.keys()].sort()).toEqual(["public.k", "public.plain"]);
    const k = byName.get("public.k")!;
    expect(k.primaryKey).toEqual(["b", "c", "a"]);
    // The keys, the self-reference (other, b), what the unique indexes' expressions and predicate read, and the
    // columns of domains with a CHECK (their own or a base domain's), which may refuse NULL.
    expect(k.logged).toEqual(["b", "a", "c", "title", "n", "d", "other", "m"]);
    expect(k.refusingNull).toEqual(["n", "m"]);
    expect(Object.fromEntries(k.columns.map((c) => [c.name, c.jsonValue]))).toEqual({
      b: "text",
      a: "text",
      c: "text",
      title: "text",
      n: "text",
      m: "nested",
      d: "json",
      p: "nested",
      arr: "nested",
      js: "json",
      other: "text",
    });
    expect(byName.get("public.plain")).toMatchObject({ primaryKey: ["id"], logged: ["id"] });
    expect(byName.get("public.plain")!.refusingNull).toBeUndefined();
  });
});
