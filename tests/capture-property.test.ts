// Property: for random sequences of writes (inserts, upserts, updates that change primary keys, deletes, a
// data-modifying WITH across tables) inside random BEGIN / COMMIT / ROLLBACK / SAVEPOINT / ROLLBACK TO, replaying
// the log in id order onto the starting state gives exactly the final state of every synced table. The same
// sequence on plain PGlite must give the same results, errors and final state (capture changes nothing else).
// On failure fast-check prints the seed and path; rerun one with FC_SEED=<seed> FC_PATH=<path>.
import type { PGlite } from "@electric-sql/pglite";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Ominipg } from "../src/index.js";
import {
  captureDb,
  closeAll,
  logSince,
  plain,
  plainDb,
  replay,
  snapshot,
  tablesWithKeys,
  watermark,
  type Table,
} from "./capture-helpers.js";

const SCHEMA = [
  `CREATE TABLE p (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)`,
  `CREATE TABLE q (a int, b int, v text, PRIMARY KEY (a, b))`,
  `CREATE TABLE r (id int PRIMARY KEY, n int)`,
];
const RESET = `TRUNCATE p, q, r; INSERT INTO p VALUES (1, 10), (2, 20), (3, 30); INSERT INTO q VALUES (1, 1, 'a'), (1, 2, 'b'), (2, 1, 'c'); INSERT INTO r VALUES (1, 1)`;

const key = fc.integer({ min: 1, max: 6 });
const delta = fc.integer({ min: -3, max: 3 });
const savepoint = fc.constantFrom("s1", "s2");

/** One statement: a write on p, q or r, or transaction control. */
const statement = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(key, delta).map(([k, v]) => `INSERT INTO p VALUES (${k}, ${v})`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(key, key, delta)
      .map(([a, b, v]) => `INSERT INTO q VALUES (${a}, ${b}, 'v${v}') ON CONFLICT DO NOTHING`),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(key, delta)
      .map(([k, v]) => `INSERT INTO p VALUES (${k}, ${v}) ON CONFLICT (id) DO UPDATE SET v = p.v + excluded.v`),
  },
  { weight: 3, arbitrary: fc.tuple(key, delta).map(([k, d]) => `UPDATE p SET v = v + ${d} WHERE id >= ${k}`) },
  { weight: 3, arbitrary: fc.tuple(key, delta).map(([k, d]) => `UPDATE p SET id = id + ${d} WHERE id = ${k}`) },
  {
    weight: 2,
    arbitrary: fc.tuple(key, key).map(([a, b]) => `UPDATE q SET b = b + 1, v = v || '+' WHERE a = ${a} AND b >= ${b}`),
  },
  { weight: 2, arbitrary: key.map((k) => `DELETE FROM p WHERE id = ${k}`) },
  { weight: 1, arbitrary: key.map((k) => `DELETE FROM q WHERE a = ${k}`) },
  {
    weight: 1,
    arbitrary: key.map(
      (k) =>
        `WITH d AS (DELETE FROM p WHERE id <= ${k} RETURNING *) INSERT INTO r SELECT id, v FROM d ON CONFLICT (id) DO UPDATE SET n = excluded.n`,
    ),
  },
  {
    weight: 1,
    arbitrary: key.map(
      (k) =>
        `MERGE INTO r USING p ON r.id = p.id WHEN MATCHED AND p.v > ${k} THEN DELETE WHEN MATCHED THEN UPDATE SET n = p.v WHEN NOT MATCHED THEN INSERT VALUES (p.id, p.v)`,
    ),
  },
  // PostgreSQL runs d (referenced) before a (not referenced): the log must follow that order.
  {
    weight: 1,
    arbitrary: fc
      .tuple(key, delta)
      .map(
        ([k, v]) =>
          `WITH a AS (INSERT INTO p VALUES (${k}, ${v})), d AS (DELETE FROM p WHERE id = ${k} RETURNING id) SELECT count(*) FROM d`,
      ),
  },
  { weight: 1, arbitrary: fc.constant(`TRUNCATE r`) },
  { weight: 2, arbitrary: fc.constant(`BEGIN`) },
  { weight: 2, arbitrary: fc.constantFrom(`COMMIT`, `ROLLBACK`) },
  { weight: 2, arbitrary: savepoint.map((s) => `SAVEPOINT ${s}`) },
  { weight: 2, arbitrary: savepoint.map((s) => `ROLLBACK TO SAVEPOINT ${s}`) },
  { weight: 1, arbitrary: savepoint.map((s) => `RELEASE SAVEPOINT ${s}`) },
);

let db: Ominipg;
let ref: PGlite;
let tables: Table[];

beforeAll(async () => {
  [db, ref] = await Promise.all([captureDb(SCHEMA), plainDb(SCHEMA)]);
  tables = await tablesWithKeys(db);
});
afterAll(closeAll);

/** What a statement did, comparable across the two databases. */
async function outcome(run: () => Promise<{ rowCount?: number; command?: string }>): Promise<string> {
  try {
    const r = await run();
    return `ok ${r.command?.split(" ")[0]} ${r.rowCount ?? 0}`; // utility tags: see resultOf() in capture-helpers
  } catch (e) {
    return `error ${(e as { code?: string }).code}`;
  }
}

it("replaying the log onto the starting state reproduces every synced table", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(statement, { minLength: 1, maxLength: 30 }),
      fc.constantFrom(`COMMIT`, `ROLLBACK`),
      async (statements, end) => {
        await db.query(`ROLLBACK; ${RESET}`);
        await ref.exec(`ROLLBACK; ${RESET}`);
        const before = await snapshot(db, tables);
        const mark = await watermark(db);
        for (const sql of [...statements, end]) {
          const theirs = await outcome(() => ref.query(sql));
          const ours = await outcome(() => db.query(sql));
          expect(ours, sql).toBe(theirs);
        }
        const after = await snapshot(db, tables);
        expect(plain(after)).toEqual(plain(await snapshot(ref, tables)));
        expect(plain(replay(before, await logSince(db, mark), tables))).toEqual(plain(after));
      },
    ),
    {
      numRuns: 50,
      ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}),
    },
  );
});
