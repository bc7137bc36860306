// bytea through query(): Ominipg's driver writes and reads it itself (src/local/bytea.ts); the results must be
// what PGlite's own db.query gives, for any bytes, views and sizes.
import { PGlite } from "@electric-sql/pglite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { pgliteTemplate } from "./harness/index.js";

describe("bytea in query()", () => {
  let db: Ominipg;
  let plain: PGlite;
  beforeAll(async () => {
    db = await Ominipg.connect({});
    plain = await PGlite.create({ loadDataDir: await pgliteTemplate() });
    for (const d of [db, plain]) await d.query(`CREATE TABLE blobs (id int PRIMARY KEY, b bytea, bs bytea[])`);
  });
  afterAll(async () => {
    await db?.close();
    await plain?.close();
  });

  const every = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
  const backing = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["every byte value, twice", every],
    ["a view into a larger buffer (only its own bytes)", backing.subarray(10, 20)],
    ["a Node Buffer", Buffer.from("bytes from a Buffer")],
    ["200 kB (beyond Node's Buffer pool)", Uint8Array.from({ length: 200 << 10 }, (_, i) => (i * 7) % 256)],
  ];

  it("writes and reads back any bytes exactly as PGlite's db.query does, as a Uint8Array of its own", async () => {
    for (const [i, [what, bytes]] of cases.entries()) {
      const insert = `INSERT INTO blobs (id, b, bs) VALUES ($1, $2, $3) RETURNING b, bs`;
      const params = [i, bytes, [bytes, null]];
      const [ours, theirs] = [await db.query(insert, params), await plain.query(insert, params)];
      expect(ours.rows, what).toEqual(theirs.rows);
      const sel = `SELECT b, length(b) AS n, md5(b) AS h FROM blobs WHERE id = $1`;
      const [row, expected] = [(await db.query(sel, [i])).rows[0]!, (await plain.query(sel, [i])).rows[0]];
      expect(row, what).toEqual(expected);
      expect(row.n, what).toBe(bytes.length);
      const b = row.b as Uint8Array;
      expect(Object.getPrototypeOf(b), what).toBe(Uint8Array.prototype);
      expect(b.byteOffset, what).toBe(0);
      expect(b.buffer.byteLength, what).toBe(bytes.length); // not a view of a shared pool
      expect(Buffer.compare(b, bytes), what).toBe(0);
    }
  });

  it("reads the escape format (bytea_output = escape) as PGlite's db.query reads it", async () => {
    await db.query(`SET bytea_output = 'escape'`);
    await plain.query(`SET bytea_output = 'escape'`);
    try {
      const sel = `SELECT b FROM blobs WHERE id = 1`;
      expect((await db.query(sel)).rows).toEqual((await plain.query(sel)).rows);
    } finally {
      await db.query(`RESET bytea_output`);
      await plain.query(`RESET bytea_output`);
    }
  });

  it("refuses a parameter that is not bytes as PGlite's db.query refuses it", async () => {
    const sql = `SELECT $1::bytea AS b`;
    const [ours, theirs] = [
      await db.query(sql, [{ not: "bytes" }]).catch((e) => e),
      await plain.query(sql, [{ not: "bytes" }]).catch((e) => e),
    ];
    expect(ours).toBeInstanceOf(Error);
    expect((ours as Error).message).toBe((theirs as Error).message);
  });
});
