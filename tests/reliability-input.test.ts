// Bad input: malformed SQL, wrong parameter counts and types, 10 MB values, unicode and escape-heavy
// strings, identifiers that need quoting, writes to Ominipg's own tables, and SQL injection through every
// identifier and value Ominipg itself puts into SQL. Each gets PostgreSQL's error or a clear library error;
// the log and both databases stay consistent (the same rows on both sides after a sync).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaptureError, Ominipg, OminipgError } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS victims (id int PRIMARY KEY, note text)`,
  `INSERT INTO victims VALUES (1, 'still here') ON CONFLICT DO NOTHING`,
  `CREATE TABLE IF NOT EXISTS vals (id int PRIMARY KEY, t text, j jsonb, n int, b bytea)`,
];

/** Names that need quoting, and names that try to break out of the quoting Ominipg does. */
const WEIRD_TABLE = `We"ird. Table'); DROP TABLE victims; --`;
const WEIRD_SCHEMA = `My "Schema". x`;
const WEIRD_COLUMNS = {
  key: `Id "Key"`,
  dot: `col.with.dot`,
  space: `col with space`,
  upper: `UPPER`,
  injection: `a'); DELETE FROM victims; --`,
  dollar: `$1 $$x$$`,
  serial: `Seq "N"; DROP TABLE victims`,
};
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
const WEIRD_DDL = [
  `CREATE SCHEMA IF NOT EXISTS ${q(WEIRD_SCHEMA)}`,
  `CREATE TABLE IF NOT EXISTS ${q(WEIRD_SCHEMA)}.${q(WEIRD_TABLE)} (
     ${q(WEIRD_COLUMNS.key)} text NOT NULL,
     ${q(WEIRD_COLUMNS.dot)} int NOT NULL,
     ${q(WEIRD_COLUMNS.space)} text,
     ${q(WEIRD_COLUMNS.upper)} jsonb,
     ${q(WEIRD_COLUMNS.injection)} text,
     ${q(WEIRD_COLUMNS.dollar)} numeric,
     ${q(WEIRD_COLUMNS.serial)} serial,
     PRIMARY KEY (${q(WEIRD_COLUMNS.key)}, ${q(WEIRD_COLUMNS.dot)}))`,
];
const WEIRD = `${q(WEIRD_SCHEMA)}.${q(WEIRD_TABLE)}`;

const NASTY_STRINGS = [
  "",
  " ",
  "'",
  "''",
  '"',
  "\\",
  "\\\\'",
  "\\x00",
  "$$",
  "$tag$ not closed",
  "'); DROP TABLE victims; --",
  '"); DROP TABLE victims; --',
  "E'\\n'",
  "line\nbreak\r\nand\ttab",
  "\u2028\u2029\u0085",
  "żółć Ελληνικά русский 日本語 한국어 العربية עברית",
  "🚀👩‍👩‍👧‍👦🏳️‍🌈",
  "e\u0301 vs \u00e9",
  "\u202eRTL override\u202c",
  "\uFEFFBOM",
  "\u{10FFFF}",
  "null",
  "NULL",
  '{"not": "json"',
  "%s %d %n",
  "\u0001\u0002\u001f\u007f",
];

async function pgError(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(err, "expected the statement to fail").toBeDefined();
  return err!;
}

describe("reliability: bad input", () => {
  let remote: TestDatabase;
  let db: Ominipg;
  beforeAll(async () => {
    remote = await createTestDatabase();
    db = await openSynced(remote.url, [...SCHEMA, ...WEIRD_DDL], { sync: { schemas: ["public", WEIRD_SCHEMA] } });
    await db.sync();
  });
  afterAll(async () => {
    await db?.close();
    await remote.drop();
  });

  /** After each case: nothing lost or half-written, the victims table intact on both sides, all in sync. */
  async function consistent(): Promise<void> {
    expect(db.closed).toBe(false);
    await db.sync();
    expect(await queued(db)).toBe(0);
    expect((await db.verify()).ok).toBe(true);
    await expectSameRows(db, remote.sql, { victims: "id", vals: "id" });
    expect(await remote.sql`SELECT id, note FROM victims`).toEqual([{ id: 1, note: "still here" }]);
  }

  it("malformed SQL: PostgreSQL's syntax error with its position, nothing captured, the client keeps working", async () => {
    const before = await queued(db);
    for (const sql of [
      `SELEC 1`,
      `INSERT INTO vals VALUES (`,
      `INSERT INTO vals VALUES (1, 'unterminated)`,
      `UPDATE vals SET t = $$x WHERE id = 1`,
      `DELETE FROM`,
      `INSERT INTO vals VALUES (1); INSERT INTO`,
    ]) {
      const err = await pgError(db.query(sql));
      expect(err.code, sql).toBe("42601");
      expect(err.message, sql).toMatch(/syntax error|unterminated/);
    }
    expect((await pgError(db.query(`INSERT INTO no_such_table VALUES (1)`))).code).toBe("42P01");
    expect((await pgError(db.query(`INSERT INTO vals (nope) VALUES (1)`))).code).toBe("42703");
    // The same inside a transaction: the error, then the transaction is aborted and rolls back.
    const inTx = await pgError(
      db.transaction(async (tx) => {
        await tx.query(`INSERT INTO vals (id, t) VALUES (1, 'in the aborted transaction')`);
        await tx.query(`SELEC 1`).catch(() => {});
        await tx.query(`INSERT INTO vals (id, t) VALUES (2, 'after the error')`);
      }),
    );
    expect(inTx.code).toBe("25P02");
    expect(await queued(db)).toBe(before);
    expect((await db.query(`SELECT count(*)::int AS n FROM vals`)).rows).toEqual([{ n: 0 }]);
    await consistent();
  });

  it("wrong parameter counts and types: PostgreSQL's errors, nothing captured", async () => {
    const before = await queued(db);
    const cases: [string, unknown[], string][] = [
      [`INSERT INTO vals (id, t) VALUES ($1, $2)`, [1], "08P01"],
      [`INSERT INTO vals (id, t) VALUES ($1, $2)`, [1, "a", "extra"], "08P01"],
      [`UPDATE vals SET t = $1`, [], "08P01"],
      [`INSERT INTO vals (id) VALUES ($1)`, ["not a number"], "22P02"],
      [`INSERT INTO vals (id) VALUES ($1)`, [1.5], "22P02"],
      [`INSERT INTO vals (id) VALUES ($1)`, [2 ** 40], "22003"],
      [`INSERT INTO vals (id, n) VALUES (1, $1)`, [10n ** 30n], "22003"],
      [`INSERT INTO vals (id, j) VALUES (1, $1::text::jsonb)`, ["{not json"], "22P02"],
      [`INSERT INTO vals (id, t) VALUES (1, $1)`, ["nul \u0000 inside"], "22021"],
      [`INSERT INTO vals (id, j) VALUES (1, $1)`, [{ s: "nul \u0000 inside" }], "22P05"],
      [`INSERT INTO vals (id) VALUES ($1); INSERT INTO vals (id) VALUES ($1)`, [1], "42601"],
    ];
    for (const [sql, params, code] of cases) {
      const err = await pgError(db.query(sql, params));
      expect({ sql, code: err.code }).toEqual({ sql, code });
    }
    await expect(db.query(`SELECT $1`, "not an array" as unknown as unknown[])).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
    await expect(db.query(42 as unknown as string)).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    expect(await queued(db)).toBe(before);
    // Values that look like something else are only values.
    await db.query(`INSERT INTO vals (id, t, n) VALUES ($1, $2, $3)`, [1, "1); DROP TABLE victims; --", "42"]);
    await consistent();
  });

  it("10 MB text and jsonb values reach the remote intact", async () => {
    const big = "x".repeat(5 * 1024 * 1024) + "ż".repeat(2 * 1024 * 1024) + "'\\\"$$"; // ~9 MB of UTF-8 + escapes
    const bigJson = { s: big, list: Array.from({ length: 100_000 }, (_, i) => i), nested: { deep: [[[["'\"\\"]]]] } };
    await db.query(`INSERT INTO vals (id, t, j) VALUES (10, $1, $2)`, [big, bigJson]);
    await db.query(`INSERT INTO vals (id, b) VALUES (11, $1)`, [
      new Uint8Array(10 * 1024 * 1024).map((_, i) => i % 256),
    ]);
    await db.query(`UPDATE vals SET t = t || 'tail' WHERE id = 10`);
    await db.sync();
    const [r] = await remote.sql<{ tl: number; th: string; jh: string; bl: number; bh: string }[]>`
      SELECT length(v.t) AS tl, md5(v.t) AS th, md5(v.j::text) AS jh,
             (SELECT length(b) FROM vals WHERE id = 11) AS bl, (SELECT md5(b) FROM vals WHERE id = 11) AS bh
        FROM vals v WHERE v.id = 10`;
    const local = (
      await db.query<{ tl: number; th: string; jh: string; bl: number; bh: string }>(`
      SELECT length(v.t) AS tl, md5(v.t) AS th, md5(v.j::text) AS jh,
             (SELECT length(b) FROM vals WHERE id = 11) AS bl, (SELECT md5(b) FROM vals WHERE id = 11) AS bh
        FROM vals v WHERE v.id = 10`)
    ).rows[0];
    expect(r).toEqual(local);
    expect(r!.tl).toBe(big.length + 4);
    expect(r!.bl).toBe(10 * 1024 * 1024);
    await db.query(`DELETE FROM vals WHERE id IN (10, 11)`);
    await consistent();
  });

  it("unicode and escape-heavy strings, as values and as jsonb keys and values, arrive byte for byte", async () => {
    for (const [i, s] of NASTY_STRINGS.entries()) {
      await db.query(`INSERT INTO vals (id, t, j) VALUES ($1, $2, $3)`, [
        100 + i,
        s,
        { [s || "empty"]: s, list: [s, { s }] },
      ]);
    }
    await db.query(`UPDATE vals SET t = t || $1 WHERE id >= 100`, ["'\\\"$$🚀"]);
    await db.sync();
    const remoteRows = await remote.sql<
      { id: number; t: string; j: unknown }[]
    >`SELECT id, t, j FROM vals WHERE id >= 100 ORDER BY id`;
    expect(remoteRows.map((r) => r.t)).toEqual(NASTY_STRINGS.map((s) => `${s}'\\"$$🚀`));
    await consistent();
  });

  it("identifiers that need quoting (quotes, dots, spaces, upper case, injection attempts) in schema, table and column names", async () => {
    const cols = Object.values(WEIRD_COLUMNS).slice(0, 6).map(q).join(", ");
    for (let i = 0; i < 5; i++) {
      await db.query(`INSERT INTO ${WEIRD} (${cols}) VALUES ($1, $2, $3, $4, $5, $6)`, [
        `k'${i}"`,
        i,
        `v ${i}`,
        { [WEIRD_COLUMNS.injection]: i },
        NASTY_STRINGS[i + 10],
        i / 3,
      ]);
    }
    await db.query(
      `UPDATE ${WEIRD} SET ${q(WEIRD_COLUMNS.space)} = 'changed', ${q(WEIRD_COLUMNS.dollar)} = 1 WHERE ${q(WEIRD_COLUMNS.dot)} < 3`,
    );
    await db.query(`UPDATE ${WEIRD} SET ${q(WEIRD_COLUMNS.key)} = 'moved ''key''' WHERE ${q(WEIRD_COLUMNS.dot)} = 1`); // a key change
    await db.query(`DELETE FROM ${WEIRD} WHERE ${q(WEIRD_COLUMNS.dot)} = 4`);
    await db.sync();
    const order = `${q(WEIRD_COLUMNS.key)}, ${q(WEIRD_COLUMNS.dot)}`;
    await expectSameRows(db, remote.sql, { [WEIRD]: order });
    expect((await remote.sql.unsafe(`SELECT count(*)::int AS n FROM ${WEIRD}`))[0]).toEqual({ n: 4 });
    // TRUNCATE (its log entry names the table in a literal) and the ids of its SERIAL column.
    await db.query(`TRUNCATE ${WEIRD}`);
    await db.query(
      `INSERT INTO ${WEIRD} (${q(WEIRD_COLUMNS.key)}, ${q(WEIRD_COLUMNS.dot)}) VALUES ('after truncate', 0)`,
    );
    await db.sync();
    await expectSameRows(db, remote.sql, { [WEIRD]: order });
    expect(await db.syncSequences()).toBeGreaterThanOrEqual(0);
    const [seq] = await remote.sql.unsafe<{ v: string }[]>(
      `SELECT last_value::text AS v FROM pg_sequences WHERE schemaname = $1`,
      [WEIRD_SCHEMA],
    );
    expect(Number(seq!.v)).toBeGreaterThanOrEqual(6);
    await consistent();
  });

  it('sequences: "lease" with quoted and injection-shaped names', async () => {
    const leased = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: WEIRD_DDL,
      sync: { schemas: [WEIRD_SCHEMA] },
      sequences: "lease",
      leaseSize: 3,
    });
    try {
      await leased.sync();
      for (let i = 0; i < 8; i++) {
        await leased.query(
          `INSERT INTO ${WEIRD} (${q(WEIRD_COLUMNS.key)}, ${q(WEIRD_COLUMNS.dot)}) VALUES ('leased', $1)`,
          [i],
        );
        if (i % 3 === 2) await leased.sync();
      }
      await leased.sync();
      const ids = await remote.sql.unsafe<{ n: number }[]>(
        `SELECT ${q(WEIRD_COLUMNS.serial)} AS n FROM ${WEIRD} WHERE ${q(WEIRD_COLUMNS.key)} = 'leased'`,
      );
      expect(new Set(ids.map((r) => r.n)).size).toBe(8);
    } finally {
      await leased.close();
    }
    // Rows of another client: not in `db`, whose verify() would list them.
    await remote.sql.unsafe(`DELETE FROM ${WEIRD} WHERE ${q(WEIRD_COLUMNS.key)} = 'leased'`);
    await consistent();
  });

  it("sync options with injection-shaped names select nothing and break nothing", async () => {
    const odd = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: SCHEMA,
      sync: {
        schemas: [`public'; DROP TABLE victims; --`, "public"],
        tables: [`victims"; DROP TABLE victims; --`, "vals"],
        exclude: [`x' OR '1'='1`],
      },
    });
    try {
      await odd.query(`INSERT INTO vals (id, t) VALUES (500, 'through odd options')`);
      await odd.query(`UPDATE victims SET note = 'not synced here' WHERE id = 1`);
      expect(await odd.sync()).toMatchObject({ pushed: 1 });
    } finally {
      await odd.close();
    }
    expect(await remote.sql`SELECT t FROM vals WHERE id = 500`).toEqual([{ t: "through odd options" }]);
    await remote.sql`DELETE FROM vals WHERE id = 500`;
    expect(await remote.sql`SELECT id, note FROM victims`).toEqual([{ id: 1, note: "still here" }]);
  });

  it("direct mode keeps arrays: as parameters and in results (its driver reads the array types)", async () => {
    const direct = await Ominipg.connect({ url: remote.url });
    try {
      const { rows } = await direct.query<{ a: number[]; t: string[] }>(
        `SELECT $1::int[] AS a, ARRAY['x', 'y,z', '"q"'] AS t`,
        [[1, 2, 3]],
      );
      expect(rows).toEqual([{ a: [1, 2, 3], t: ["x", "y,z", '"q"'] }]);
    } finally {
      await direct.close();
    }
  });

  it("writes to Ominipg's own tables are refused with a clear error, however they are spelled; the log is untouched", async () => {
    await db.query(`INSERT INTO vals (id, t) VALUES (900, 'pending')`);
    const before = await db.query(`SELECT id, op, table_name FROM _sync_queue ORDER BY id`);
    const refused = [
      `INSERT INTO _sync_queue (schema_name, table_name, op) VALUES ('public', 'vals', 'T')`,
      `DELETE FROM _sync_queue`,
      `DELETE FROM public._sync_queue WHERE id > 0`,
      `DELETE FROM "_sync_queue"`,
      `UPDATE _sync_queue SET op = 'D'`,
      `UPDATE _sync_queue SET priority = 1, new_row = NULL`,
      `WITH gone AS (DELETE FROM _sync_queue RETURNING 1) SELECT count(*) FROM gone`,
      `TRUNCATE _sync_queue`,
      `DROP TABLE _sync_queue`,
      `ALTER TABLE _sync_queue RENAME TO q2`,
      `ALTER TABLE _sync_queue DROP COLUMN new_row`,
      `UPDATE _ominipg_meta SET value = 'x' WHERE key = 'client_id'`,
      `DELETE FROM _ominipg_meta`,
      `INSERT INTO _ominipg_meta VALUES ('client_id', 'x') ON CONFLICT (key) DO UPDATE SET value = 'x'`,
      `COPY _sync_queue FROM STDIN`,
      `CREATE TRIGGER t AFTER INSERT ON _sync_queue FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()`,
      `CREATE RULE r AS ON INSERT TO _sync_queue DO INSTEAD NOTHING`,
      `SELECT 1; DELETE FROM _sync_queue`,
    ];
    for (const sql of refused) {
      const err = await pgError(db.query(sql));
      expect(err, sql).toBeInstanceOf(CaptureError);
      expect(err.message, sql).toMatch(/Ominipg's own table/);
    }
    // Around the name check: a view, a function, a trigger or a rule of a user table that writes the log.
    const around = [
      [`CREATE VIEW queue_view AS SELECT * FROM _sync_queue`, `DELETE FROM queue_view`],
      [`CREATE FUNCTION wipe() RETURNS int LANGUAGE sql AS $$ DELETE FROM _sync_queue RETURNING 1 $$`, `SELECT wipe()`],
      [
        `CREATE TABLE scratch_pad (id int)`,
        `CREATE RULE wipe_rule AS ON INSERT TO scratch_pad DO ALSO DELETE FROM _sync_queue`,
        `INSERT INTO scratch_pad VALUES (1)`,
      ],
    ];
    for (const steps of around) {
      let refusedAt: string | undefined;
      for (const sql of steps) {
        const err = await db.query(sql).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (err) {
          expect(err, sql).toBeInstanceOf(OminipgError);
          refusedAt = sql;
          break;
        }
      }
      expect(refusedAt, `one of: ${steps.join("; ")}`).toBeDefined();
    }
    // The documented exception works.
    await db.query(`UPDATE _sync_queue SET priority = 5 WHERE table_name = 'vals'`);
    expect((await db.query(`SELECT id, op, table_name FROM _sync_queue ORDER BY id`)).rows).toEqual(before.rows);
    await db.query(`DELETE FROM vals WHERE id = 900`);
    await consistent();
  });
});
