import { afterAll, beforeAll, expect, it } from "vitest";
import { CANONICAL_SETTINGS } from "../src/core/settings.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { pullClient, queueLength, type PullClient } from "./pull-helpers.js";

const ROWS = 50_000;
const CHUNK = 2000;
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS big (id int8 PRIMARY KEY, a int NOT NULL, b text, c numeric(14, 4), d timestamptz, e jsonb, f float8)`,
];

let remote: TestDatabase;
let c: PullClient;

beforeAll(async () => {
  remote = await createTestDatabase();
  await remote.sql.unsafe(SCHEMA[0]!);
  await remote.sql.unsafe(
    `INSERT INTO big SELECT g, g % 1000, repeat(md5(g::text), 2), g * 1.0001, timestamptz '2024-01-01 00:00+00' + g * interval '1 second',
            jsonb_build_object('g', g, 'tags', jsonb_build_array('x', g % 7)), g / 7.0
       FROM generate_series(1, ${ROWS}) g`,
  );
  c = await pullClient(remote.url, SCHEMA, { chunkRows: CHUNK });
});

afterAll(async () => {
  await c?.close();
  await remote?.drop();
});

/** Row-order-independent digest of a table, under the pull's settings. */
const DIGEST = `SELECT count(*)::int AS n, md5(string_agg(md5(to_jsonb(r)::text), '' ORDER BY id)) AS h FROM big AS r`;

it(`pulls a ${ROWS.toLocaleString("en")}-row table in chunks, then re-checks it cheaply`, async () => {
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const r = await c.pull();
  const copyMs = performance.now() - t0;
  const heapAfter = process.memoryUsage().heapUsed;
  expect(r.tables["public.big"]).toEqual({ strategy: "copy", upserted: ROWS, deleted: 0, skipped: 0, rejected: 0 });
  // Streamed: one progress report per chunk, never more than a chunk at a time.
  const steps = r.seen.progress.filter((p) => p.table === "public.big").map((p) => p.done);
  expect(steps.length).toBeGreaterThanOrEqual(ROWS / CHUNK);
  for (let i = 1; i < steps.length; i++) expect(steps[i]! - steps[i - 1]!).toBeLessThanOrEqual(CHUNK);
  // The first range is smaller (1,024 rows), the next up to 4 times larger: the local load starts early.
  expect(steps.slice(0, 4)).toEqual([0, 1024, 1024 + CHUNK, 1024 + 2 * CHUNK]);
  console.log(
    `initial pull: ${ROWS} rows in ${Math.round(copyMs)} ms = ${Math.round(ROWS / (copyMs / 1000))} rows/s; ` +
      `heap ${Math.round((heapAfter - heapBefore) / 1e6)} MB after (not a peak)`,
  );

  const local = await c.db.transaction(async (tx) => {
    for (const s of CANONICAL_SETTINGS.split(";")) await tx.query(s);
    return (await tx.query<{ n: number; h: string }>(DIGEST)).rows[0];
  });
  const theirs = await remote.sql.begin(async (tx) => {
    await tx.unsafe(CANONICAL_SETTINGS).simple();
    return (await tx.unsafe<{ n: number; h: string }[]>(DIGEST))[0];
  });
  expect(local).toEqual(theirs);
  expect(await queueLength(c.db)).toBe(0);

  const t1 = performance.now();
  const same = await c.pull();
  const sameMs = performance.now() - t1;
  expect(same.tables["public.big"]).toEqual({ strategy: "diff", upserted: 0, deleted: 0, skipped: 0, rejected: 0 });

  await remote.sql
    .unsafe(
      `UPDATE big SET a = -a - 1 WHERE id % 500 = 0; DELETE FROM big WHERE id % 5000 = 1; INSERT INTO big (id, a) SELECT g, 0 FROM generate_series(${ROWS + 1}, ${ROWS + 100}) g`,
    )
    .simple();
  const t2 = performance.now();
  const changed = await c.pull();
  const changedMs = performance.now() - t2;
  expect(changed.tables["public.big"]).toEqual({
    strategy: "diff",
    upserted: 200,
    deleted: 10,
    skipped: 0,
    rejected: 0,
  });
  const fetched = changed.seen.progress.filter((p) => p.table === "public.big").at(-1)!.total;
  console.log(
    `incremental pull, nothing changed: ${Math.round(sameMs)} ms; 310 rows changed: ${Math.round(changedMs)} ms, ${fetched} rows fetched`,
  );
  expect(fetched).toBeLessThan(ROWS);
});

it("sizes chunks by bytes for wide rows", async () => {
  const wide = await createTestDatabase();
  const schema = [`CREATE TABLE IF NOT EXISTS blobs (id int PRIMARY KEY, data bytea NOT NULL)`];
  try {
    await wide.sql.unsafe(schema[0]!);
    await wide.sql.unsafe(
      `INSERT INTO blobs SELECT g, (SELECT decode(string_agg(md5(g::text || ':' || i), ''), 'hex') FROM generate_series(1, 8192) i) FROM generate_series(1, 40) g`,
    );
    const w = await pullClient(wide.url, schema, { chunkRows: 2000, chunkBytes: 1 << 20 });
    try {
      const r = await w.pull();
      expect(r.tables["public.blobs"]).toMatchObject({ strategy: "copy", upserted: 40 });
      const steps = r.seen.progress.map((p) => p.done);
      const largest = Math.max(...steps.slice(1).map((d, i) => d - steps[i]!));
      expect(largest).toBe(16); // 128 KiB rows, 1 MiB chunks: 8 rows, raised to the 16-row floor; not 2000
      const digest = `SELECT md5(string_agg(md5(data), '' ORDER BY id)) AS h FROM blobs`;
      expect((await w.db.query(digest)).rows[0]).toEqual((await wide.sql.unsafe(digest))[0]);
    } finally {
      await w.close();
    }
  } finally {
    await wide.drop();
  }
});
