// Property: the COPY text copyLayout makes from rows' to_json images, loaded by PostgreSQL's own COPY FROM,
// gives back exactly those rows: any text (quotes, backslashes, control characters, any Unicode), json as
// written (whitespace and all), jsonb, numerics beyond float precision, floats with NaN and infinities, bytea,
// timestamps, NULLs, and a generated column that COPY leaves out. Images of other columns give no text.
// On failure fast-check prints the seed and path; rerun one with FC_SEED=<seed> FC_PATH=<path>.
import type { PGlite } from "@electric-sql/pglite";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { copyLayout, type CopyLayout } from "../src/push/copy.js";
import { Catalog } from "../src/capture/catalog.js";
import { type TableInfo } from "../src/core/table.js";
import type { Driver } from "../src/core/driver.js";
import { Ominipg } from "../src/index.js";

const COLUMNS = `id int PRIMARY KEY, t text, j json, jb jsonb, n numeric, f float8, ok boolean, by bytea, at timestamptz,
  twice int GENERATED ALWAYS AS (id * 2) STORED`;

let db: Ominipg;
let driver: Driver;
let pglite: PGlite;
let table: TableInfo;
let layout: CopyLayout;

beforeAll(async () => {
  db = await Ominipg.connect({
    schemaSQL: [`CREATE TABLE rows (${COLUMNS})`, `CREATE TABLE copied (${COLUMNS})`],
  });
  driver = (db as unknown as { driver: Driver }).driver;
  pglite = (driver as unknown as { pglite: PGlite }).pglite;
  await db.query(`SET TimeZone TO 'Asia/Kolkata'`); // an offset with minutes, as to_json writes it
  const catalog = await Catalog.load(driver, { schemas: ["public"], tables: ["rows"], exclude: [] });
  table = catalog.table("public", "rows")!;
  layout = copyLayout(table)!;
});
afterAll(async () => {
  await db?.close();
});

/** Text PostgreSQL can hold: anything but NUL. */
const text = fc.string({ unit: "binary", maxLength: 12 }).map((s) => s.replaceAll("\0", ""));
const specials = fc.constantFrom(
  "",
  "\\N",
  "NULL",
  "null",
  '"',
  "\\",
  "\t",
  "\n",
  "\r",
  "\x01",
  "\x1e",
  "\\x00",
  "\u2028",
  "😀",
  'a"b\\c\td\ne',
);
/** JSON text as a json column keeps it: any value, with whitespace around and inside. JSON null itself is left out (it arrives as SQL NULL, see README). */
const jsonText = fc
  .tuple(
    fc.json({ maxDepth: 2 }),
    fc.constantFrom(undefined, 1, "\t"),
    fc.constantFrom("", " ", "\n", "\t ", " \r\n"),
    fc.constantFrom("", " ", "\n "),
  )
  .filter(([json]) => json !== "null")
  .map(([json, indent, before, after]) => `${before}${JSON.stringify(JSON.parse(json), null, indent)}${after}`);
const row = fc.record({
  t: fc.option(fc.oneof(text, specials)),
  j: fc.option(jsonText),
  jb: fc.option(fc.json({ maxDepth: 2 }).filter((json) => json !== "null")),
  n: fc.option(
    fc.oneof(
      fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
      fc.constantFrom("0.10", "-1.5e-7", "NaN", "123456789012345678901234567890.123456789"),
    ),
  ),
  f: fc.option(fc.oneof(fc.double(), fc.constantFrom("NaN", "Infinity", "-Infinity", "-0"))),
  ok: fc.option(fc.boolean()),
  by: fc.option(fc.uint8Array({ maxLength: 8 })),
  at: fc.option(
    fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }),
  ),
});

it("COPY FROM of the text gives back exactly the rows", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 12 }), async (rows) => {
      await db.query(`TRUNCATE rows, copied`);
      for (const [i, r] of rows.entries()) {
        await db.query(
          `INSERT INTO rows (id, t, j, jb, n, f, ok, by, at) VALUES ($1, $2, $3::text::json, $4::text::jsonb, $5::numeric, $6::float8, $7, $8, $9)`,
          [i + 1, r.t, r.j, r.jb, r.n, r.f === null ? null : String(r.f), r.ok, r.by, r.at],
        );
      }
      const copyText = layout.text(await images(`SELECT * FROM rows`));
      expect(copyText).toBeDefined();
      await pglite.query(`COPY copied (${layout.columns.join(", ")}) FROM '/dev/blob'`, [], {
        blob: new Blob([copyText!]),
      });
      const select = (name: string) => db.query<{ r: string }>(`SELECT ROW(t.*)::text AS r FROM ${name} t ORDER BY id`);
      expect((await select("copied")).rows).toEqual((await select("rows")).rows);
    }),
    { numRuns: 150 },
  );
});

it("an image whose keys are not the table's columns, in its order, gives no text", async () => {
  await db.query(`TRUNCATE rows`);
  await db.query(`INSERT INTO rows (id, t) VALUES (1, 'a'), (2, 'b')`);
  const good = await images(`SELECT * FROM rows`);
  expect(layout.text(good)).toBeDefined();
  for (const select of [
    `SELECT id, t, j, jb, n, f, ok, by, at FROM rows`, // a column fewer (an image from before it was added)
    `SELECT *, 1 AS extra FROM rows`, // a column more (one since dropped)
    `SELECT t, id, j, jb, n, f, ok, by, at, twice FROM rows`, // the same columns in another order
  ]) {
    expect(layout.text(await images(select))).toBeUndefined();
  }
  const bytes = Buffer.from(good);
  expect(layout.text(bytes.subarray(0, bytes.length - 1))).toBeUndefined(); // cut short
  expect(layout.text(Buffer.concat([bytes, Buffer.from("\x1e")]))).toBeUndefined(); // an empty image after it
});

/** The to_json images of a query's rows, joined as the sync's COPY batches read them. */
async function images(select: string): Promise<Uint8Array> {
  const rows = await driver.raw(`SELECT string_agg(to_json(r)::text, E'\\x1e' ORDER BY id) FROM (${select}) r`);
  return rows[0]![0]!;
}
