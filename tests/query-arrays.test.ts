// Arrays through query(): Ominipg's driver looks an array type up when a statement first uses it
// (src/local/array-types.ts), where PGlite reads them all when the database opens; the results must be PGlite's.
import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { pgliteTemplate } from "./harness/index.js";

describe("arrays in query()", () => {
  let db: Ominipg;
  let plain: PGlite;
  beforeAll(async () => {
    db = await Ominipg.connect({});
    plain = await PGlite.create({ loadDataDir: await pgliteTemplate() });
  });
  afterAll(async () => {
    await db?.close();
    await plain?.close();
  });

  const both = async (sql: string, params: unknown[] = []) => {
    const [ours, theirs] = [await db.query(sql, params), await plain.query(sql, params)];
    expect(ours.rows, sql).toEqual(theirs.rows);
    expect(ours.fields, sql).toEqual(theirs.fields);
    return ours.rows;
  };

  it("reads and writes arrays of built-in types as PGlite does; int2vector and oidvector stay text", async () => {
    const [row] = await both(
      `SELECT ARRAY[1, NULL, 3]::int4[] AS i, ARRAY['a', 'b,c', '"q"', NULL]::text[] AS t, '{1.5,2}'::numeric[] AS n,
        ARRAY[true, false] AS b, '{{1,2},{3,4}}'::int8[] AS m, '{}'::int[] AS e, '{(1,1),(0,0);(2,2),(1,1)}'::box[] AS bx,
        ARRAY['2024-02-29 12:00:00+00']::timestamptz[] AS tz, '1 2'::int2vector AS v, '26 23'::oidvector AS ov`,
    );
    expect(row).toMatchObject({
      i: [1, null, 3],
      t: ["a", "b,c", '"q"', null],
      m: [
        [1, 2],
        [3, 4],
      ],
      v: "1 2",
    });
    // Parameters: in a prepared statement, and in one that is not (a utility statement is sent unnamed).
    await both(`SELECT $1::int[] AS i, $2::text[] AS t, $3::bool[] AS b`, [[1, 2], ["x", "y z"], [true]]);
    await both(`EXPLAIN (COSTS OFF) SELECT $1::float8[] AS f`, [[1.5, 2]]);
  });

  it("finds an array type made after the database opened, in the transaction that made it, which goes on", async () => {
    const ddl = `CREATE TYPE mood AS ENUM ('calm', 'glad'); CREATE TYPE color AS ENUM ('red', 'blue');
      CREATE TABLE moods (id int PRIMARY KEY, ms mood[], cs color[])`;
    await plain.exec(ddl);
    await plain.refreshArrayTypes(); // PGlite knows only the array types that existed when it opened
    await db.query("BEGIN");
    for (const statement of ddl.split(";")) await db.query(statement);
    // color[] first meets the driver as a parameter of an unnamed statement, mood[] as one of a prepared one.
    await both(`EXPLAIN (COSTS OFF) SELECT * FROM moods WHERE cs = $1`, [["red"]]);
    expect(await both(`INSERT INTO moods VALUES ($1, $2, $3) RETURNING ms`, [1, ["calm", "glad"], ["blue"]])).toEqual([
      { ms: ["calm", "glad"] },
    ]);
    await db.query("COMMIT");
    expect(await both(`SELECT * FROM moods`)).toEqual([{ id: 1, ms: ["calm", "glad"], cs: ["blue"] }]);
  });
});
