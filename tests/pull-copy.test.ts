// The initial copy by COPY ranges of the primary key (src/pull/copy.ts): exact for every column type, in
// bounded ranges, held keys winning, indexes and constraints intact, and a copy cut short continuing where it
// stopped (a failed hook, a dropped connection, a reopened database) rather than starting again.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { PullProgress } from "../src/pull/types.js";
import { Ominipg } from "../src/index.js";
import type { LocalAccess } from "../src/local/access.js";
import { createTestDatabase, pgliteTemplate, withAdmin, type TestDatabase } from "./harness/index.js";
import { sendQueued } from "../src/pull/stream.js";
import { expectSameRows, pullClient, queueLength, type PullClient } from "./pull-helpers.js";
import { startProxy } from "./sync-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const cleanup = cleanupAfterEach();

async function remoteDb(): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  return remote;
}

async function client(...args: Parameters<typeof pullClient>): Promise<PullClient> {
  const c = await pullClient(...args);
  cleanup(() => c.close());
  return c;
}

/** The resume point a copy of `table` left in the local meta table, if any. */
async function resumePoint(c: PullClient, table: string): Promise<unknown> {
  const { rows } = await c.db.query<{ value: string }>(`SELECT value FROM _ominipg_meta WHERE key = $1`, [
    `pull_copy:${JSON.stringify(["public", table])}`,
  ]);
  return rows[0] ? JSON.parse(rows[0].value) : undefined;
}

/**
 * One table's progress reports, split into the pull's phases: each starts with `done: 0` (a copy, or a diff
 * after it; a retried attempt starts again).
 */
function phases(progress: PullProgress[], table: string): PullProgress[][] {
  const out: PullProgress[][] = [];
  for (const p of progress.filter((x) => x.table === `public.${table}`)) {
    if (p.done === 0) out.push([]);
    out.at(-1)!.push(p);
  }
  return out;
}

function expectBoundedSteps(phase: PullProgress[], max: number): void {
  for (let i = 1; i < phase.length; i++) expect(phase[i]!.done - phase[i - 1]!.done).toBeLessThanOrEqual(max);
}

const POSTS = 30_000;
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS authors (id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE)`,
  `CREATE TABLE IF NOT EXISTS posts (
     id int8 PRIMARY KEY, author_id int8 NOT NULL REFERENCES authors (id) ON DELETE CASCADE, parent_id int8 REFERENCES posts (id),
     title text, n numeric, price numeric(12, 2) CHECK (price >= 0), f8 float8, f4 real, meta jsonb, doc json, tags text[],
     nums int8[], blob bytea, ts timestamptz, d date, iv interval, u uuid UNIQUE, ok boolean, during tstzrange,
     seq int GENERATED ALWAYS AS IDENTITY, title_len int GENERATED ALWAYS AS (length(title)) STORED)`,
  `CREATE INDEX IF NOT EXISTS posts_author ON posts (author_id, ts)`,
  `CREATE INDEX IF NOT EXISTS posts_title ON posts (lower(title)) WHERE title IS NOT NULL`,
];

async function seedPosts(remote: TestDatabase): Promise<void> {
  for (const s of SCHEMA) await remote.sql.unsafe(s);
  await remote.sql
    .unsafe(
      `
    INSERT INTO authors (name, email) SELECT 'author ' || g, 'a' || g || '@x.org' FROM generate_series(1, 20) g;
    INSERT INTO posts (id, author_id, parent_id, title, n, price, f8, f4, meta, doc, tags, nums, blob, ts, d, iv, u, ok, during)
    SELECT g, 1 + g % 20, CASE WHEN g % 3 = 0 AND g < ${POSTS} THEN g + 1 END, 'post ' || g || E' \\t''quoted'' ünïcödé \\\\ \\n',
           g * 1.5, g / 7.0, g / 3.0, g / 3.0,
           jsonb_build_object('g', g, 'big', 123456789012345678901234567890, 'arr', jsonb_build_array(g, 'x', null)),
           ('{"b": 1,  "a": [' || g || ', 1.10], "a": "dup"}')::json,
           ARRAY['a,b', 'c"d', NULL, E'e\\\\f\\tg'], ARRAY[g, 9007199254740993], decode(lpad(to_hex(g), 8, '0') || '00ff5c27', 'hex'),
           timestamptz '2024-03-10 01:59:59.123456+00' + g * interval '37 minutes', date '2024-02-28' + g % 5000,
           make_interval(0, g % 50, 0, 1, 2, 3, 4.5), md5(g::text)::uuid, g % 2 = 0,
           tstzrange(timestamptz '2024-01-01 00:00+00' + g * interval '1 hour', NULL)
      FROM generate_series(1, ${POSTS}) g;
    INSERT INTO posts (id, author_id, title, n, f8, f4, meta, doc, ts, d, iv, during) VALUES
      (9007199254740993, 1, NULL, 12345678901234567890.123456789012, 0.30000000000000004, 3.4028235e38,
       '{"n": 1.10, "e": 1e400, "s": "a\\u0001b\\n\\t"}', '[1e400, "\\u00e9"]', 'infinity', '-infinity', '-178000000 years', 'empty'),
      (-9223372036854775808, 2, '', 'NaN', 'NaN', '-Infinity', 'null', 'null', '1999-12-31 23:59:59.999999-08', '0044-03-15 BC', '0',
       '[2024-01-01 00:00+00,2024-02-01 00:00+00)');
  `,
    )
    .simple();
}

const DEFINITIONS = `SELECT string_agg(d, E'\\n' ORDER BY d) AS d FROM (
  SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'posts'::regclass
  UNION ALL SELECT 'index ' || pg_get_indexdef(indexrelid) || ' ' || (indisvalid AND indisready AND indislive)
  FROM pg_index WHERE indrelid = 'posts'::regclass) AS x`;

describe("initial pull by COPY ranges", () => {
  it("copies 30,000 rows of every column type exactly, in bounded ranges, and a copy cut short continues from its last range", async () => {
    const remote = await remoteDb();
    await seedPosts(remote);
    const c = await client(remote.url, SCHEMA, { chunkRows: 4000 });
    const definitions = (await c.db.query<{ d: string }>(DEFINITIONS)).rows[0]!.d;
    expect(definitions).toContain("index CREATE INDEX posts_title ON public.posts USING btree (lower(title)) WHERE");

    // Cut short by a failing hook after three ranges of posts (1,024 rows first, so that the local load starts
    // early, then 4,000 each: the first 9,024 rows in key order).
    const stop = new Error("stop here");
    const first: PullProgress[] = [];
    const err = await c.puller
      .pull({
        progress: (p) => {
          first.push(p);
          if (p.table === "public.posts" && p.done >= 9024) throw stop;
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBe(stop);
    expect(phases(first, "posts")[0]!.map((p) => p.done)).toEqual([0, 1024, 5024, 9024]);
    expect((await c.db.query(`SELECT count(*)::int AS n FROM posts`)).rows[0]).toEqual({ n: 9024 });
    const [point] = await remote.sql<
      { id: string }[]
    >`SELECT id::text AS id FROM posts ORDER BY posts.id OFFSET 9023 LIMIT 1`;
    expect(await resumePoint(c, "posts")).toEqual({ key: ["id"], after: [point!.id] });
    expect(await resumePoint(c, "authors")).toBeUndefined(); // copied to the end

    // The remote changes on both sides of the resume point before the next pull.
    await remote.sql
      .unsafe(
        `UPDATE posts SET title = 'changed before' WHERE id = 100; DELETE FROM posts WHERE id = 200;
         INSERT INTO posts (id, author_id, title) VALUES (-5, 1, 'new before');
         UPDATE posts SET title = 'changed after' WHERE id = 20000; DELETE FROM posts WHERE id = 20003;
         INSERT INTO posts (id, author_id, title) VALUES (40000, 2, 'new after')`,
      )
      .simple();
    const [after] = await remote.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posts WHERE id > ${point!.id}`;

    const r = await c.pull();
    // Only the rows after the point are read again; the diff that follows fixes what changed before it.
    const [copy, diff] = phases(r.seen.progress, "posts");
    expect(copy![0]).toEqual({ table: "public.posts", done: 0, total: after!.n });
    expect(copy!.at(-1)!.done).toBe(after!.n);
    expectBoundedSteps(copy!, 4000);
    expect(diff!.at(-1)!.total).toBeLessThan(2000); // the rows of the buckets of ids 100, 200 and -5
    expect(r.tables["public.posts"]).toEqual({
      strategy: "diff",
      upserted: after!.n + 2,
      deleted: 1,
      skipped: 0,
      rejected: 0,
    });
    await expectSameRows(c.db, remote.sql, { authors: "id", posts: "id" });
    expect(await resumePoint(c, "posts")).toBeUndefined();
    expect(await queueLength(c.db)).toBe(0);

    // Indexes and constraints as they were, valid, and in use.
    expect((await c.db.query<{ d: string }>(DEFINITIONS)).rows[0]!.d).toBe(definitions);
    const counted = await c.db.transaction(async (tx) => {
      await tx.query(`SET LOCAL enable_seqscan = off`);
      await tx.query(`SET LOCAL enable_bitmapscan = off`);
      const byIndex = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM posts WHERE author_id = 7 AND ts > '2024-06-01'`,
      );
      const byTitle = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM posts WHERE lower(title) LIKE 'post 1%'`,
      );
      return [byIndex.rows[0]!.n, byTitle.rows[0]!.n];
    });
    const [byIndex] = await remote.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM posts WHERE author_id = 7 AND ts > '2024-06-01'`;
    const [byTitle] = await remote.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM posts WHERE lower(title) LIKE 'post 1%'`;
    expect(counted).toEqual([byIndex!.n, byTitle!.n]);
    await expect(c.db.query(`INSERT INTO posts (id, author_id, price) VALUES (50000, 1, -1)`)).rejects.toMatchObject({
      code: "23514",
    });
    await expect(c.db.query(`INSERT INTO posts (id, author_id) VALUES (1, 1)`)).rejects.toMatchObject({
      code: "23505",
    });
  });

  it("continues in the retry of the same pull after its connection is cut, reading no row twice (composite text key)", async () => {
    const remote = await remoteDb();
    const schema = [
      `CREATE TABLE IF NOT EXISTS post_tags (post_id int8 NOT NULL, tag text NOT NULL, weight numeric, note text, PRIMARY KEY (post_id, tag))`,
    ];
    await remote.sql.unsafe(schema[0]!);
    // Key texts that COPY escapes: a tab, a backslash, a quote and a newline.
    await remote.sql.unsafe(
      `INSERT INTO post_tags SELECT p, t, p * 1.25, repeat('n', p % 50)
         FROM generate_series(1, 3000) p, unnest(ARRAY[E'a\\tb', E'c\\\\d', E'e''f\\nz']) t`,
    );
    const proxy = await startProxy(remote.url);
    cleanup(() => proxy.close());
    const c = await client(proxy.url, schema, { chunkRows: 1000 });

    let cut = false;
    const progress: PullProgress[] = [];
    const r = await c.puller.pull({
      progress: (p) => {
        progress.push(p);
        if (!cut && p.table === "public.post_tags" && p.done >= 3000) {
          cut = true;
          proxy.drop(); // a later read of a range fails; the pull's retry starts a new snapshot
        }
      },
    });
    expect(cut).toBe(true);
    // The first attempt copied three or four ranges; the retry read the rest, then diffed: 9,000 rows read once.
    const [broken, resumed, diff] = phases(progress, "post_tags");
    const copied = broken!.at(-1)!.done;
    expect([3000, 4000]).toContain(copied);
    expect(resumed![0]).toEqual({ table: "public.post_tags", done: 0, total: 9000 - copied });
    expect(resumed!.at(-1)!.done).toBe(9000 - copied);
    expectBoundedSteps(resumed!, 1000);
    expect(diff).toEqual([{ table: "public.post_tags", done: 0, total: 0 }]);
    expect(r.tables["public.post_tags"]).toEqual({
      strategy: "diff",
      upserted: 9000 - copied,
      deleted: 0,
      skipped: 0,
      rejected: 0,
    });
    await expectSameRows(c.db, remote.sql, { post_tags: "post_id, tag" });
    expect(await resumePoint(c, "post_tags")).toBeUndefined();
  });
  it("keeps held keys out of the ranges it COPYs, also when a database reopened after a broken copy resumes it", async () => {
    const remote = await remoteDb();
    const schema = [
      `CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL CHECK (qty >= 0), meta jsonb)`,
      `CREATE INDEX IF NOT EXISTS items_qty ON items (qty)`,
    ];
    await remote.sql.unsafe(schema.join(";"));
    await remote.sql.unsafe(
      `INSERT INTO items SELECT g, 'remote ' || g, g % 100, jsonb_build_object('g', g) FROM generate_series(1, 5000) g`,
    );
    const dir = mkdtempSync(join(tmpdir(), "ominipg-pull-copy-"));
    cleanup(() => rmSync(dir, { recursive: true, force: true }));
    const local = { url: join(dir, "db"), loadDataDir: undefined };
    let c = await pullClient(remote.url, schema, { chunkRows: 1000 }, local);
    const stop = new Error("stop here");
    const err = await c.puller
      .pull({
        progress: (p) => {
          if (p.done >= 2000) throw stop;
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBe(stop);
    expect(await resumePoint(c, "items")).toEqual({ key: ["id"], after: ["2000"] });
    await c.close();

    // A new client on the same directory (as after a restart), with changes pending before it pulls: on both
    // sides of the resume point, a key the remote lacks, and a key inserted and deleted again (held with no
    // local row: the remote's row must not appear).
    c = await client(remote.url, schema, { chunkRows: 1000 }, local);
    await c.db.query(`UPDATE items SET name = 'mine 10' WHERE id = 10`);
    await c.db.query(`DELETE FROM items WHERE id = 11`);
    await c.db.query(`INSERT INTO items (id, name, qty) VALUES (4200, 'mine 4200', 2), (9000, 'mine 9000', 3)`);
    await c.db.query(`INSERT INTO items (id, name, qty) VALUES (3500, 'gone', 4)`);
    await c.db.query(`DELETE FROM items WHERE id = 3500`);
    const queued = await queueLength(c.db);
    const r = await c.pull();
    const [copy] = phases(r.seen.progress, "items");
    expect(copy![0]).toEqual({ table: "public.items", done: 0, total: 3000 }); // only the keys after 2000
    expectBoundedSteps(copy!, 1000);
    expect(r.tables["public.items"]).toEqual({ strategy: "diff", upserted: 2998, deleted: 0, skipped: 5, rejected: 0 });

    const rows = await c.db.query<{ id: number; name: string }>(
      `SELECT id::int AS id, name FROM items WHERE id IN (9, 10, 11, 3499, 3500, 4200, 9000) ORDER BY id`,
    );
    expect(rows.rows).toEqual([
      { id: 9, name: "remote 9" },
      { id: 10, name: "mine 10" },
      { id: 3499, name: "remote 3499" },
      { id: 4200, name: "mine 4200" },
      { id: 9000, name: "mine 9000" },
    ]);
    expect((await c.db.query(`SELECT count(*)::int AS n FROM items`)).rows[0]).toEqual({ n: 4999 });
    expect(await queueLength(c.db)).toBe(queued);
    expect(r.seen.conflicts.map((x) => x.key).sort()).toEqual(['{"id":3500}', '{"id":4200}']);
    expect(await resumePoint(c, "items")).toBeUndefined();

    // Once the changes are pushed, a pull makes the two sides equal.
    await c.db.sync();
    await c.pull();
    await expectSameRows(c.db, remote.sql, { items: "id" });
  });
  it("builds plain secondary indexes after the copy, and those a kill left deferred at the next pull", async () => {
    const remote = await remoteDb();
    const schema = [
      `CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, name text NOT NULL UNIQUE, qty int NOT NULL, meta jsonb)`,
      `CREATE INDEX IF NOT EXISTS items_qty ON items (qty) WHERE qty > 10`,
      `CREATE INDEX IF NOT EXISTS items_lower ON items (lower(name))`,
      `CREATE UNIQUE INDEX IF NOT EXISTS items_meta_g ON items ((meta ->> 'g'))`,
      `COMMENT ON INDEX items_qty IS 'quantities, ''partial'''`,
      `ALTER TABLE items CLUSTER ON items_lower`,
    ];
    await remote.sql.unsafe(schema.join(";"));
    await remote.sql.unsafe(
      `INSERT INTO items SELECT g, 'remote ' || g, g % 100, jsonb_build_object('g', g) FROM generate_series(1, 5000) g`,
    );
    const c = await client(remote.url, schema, { chunkRows: 1000 });
    const indexes = `SELECT string_agg(c.relname || ' ' || pg_get_indexdef(i.indexrelid) || ' ' || i.indisclustered || ' ' ||
        coalesce(obj_description(i.indexrelid, 'pg_class'), '-') || ' ' || (i.indisvalid AND i.indisready), E'\\n' ORDER BY c.relname) AS d
      FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid WHERE i.indrelid = 'items'::regclass`;
    const before = (await c.db.query<{ d: string }>(indexes)).rows[0]!.d;
    expect(before.split("\n").map((l) => l.split(" ")[0])).toEqual([
      "items_lower",
      "items_meta_g",
      "items_name_key",
      "items_pkey",
      "items_qty",
    ]);

    let during: Promise<{ rows: { name: string }[] }> | undefined;
    await c.puller.pull({
      progress: (p) => {
        // Runs between two ranges, as any query of the application would.
        if (p.done === 2000)
          during ??= c.db.query<{ name: string }>(
            `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'items'::regclass ORDER BY 1`,
          );
      },
    });
    expect((await during!).rows.map((r) => r.name)).toEqual(["items_meta_g", "items_name_key", "items_pkey"]);
    expect((await c.db.query<{ d: string }>(indexes)).rows[0]!.d).toBe(before);
    await expectSameRows(c.db, remote.sql, { items: "id" });

    // What a kill in the middle of a copy leaves: an index dropped, its definition recorded.
    const inner = c.db as unknown as { local: LocalAccess };
    await inner.local.run(async (d) => {
      const { rows } = await d.query<{ def: string }>(`SELECT pg_get_indexdef('items_qty'::regclass) AS def`);
      const record = [{ name: "items_qty", def: rows[0]!.def, comment: "quantities, 'partial'", clustered: false }];
      await d.query(`INSERT INTO _ominipg_meta (key, value) VALUES ($1, $2)`, [
        `pull_indexes:${JSON.stringify(["public", "items"])}`,
        JSON.stringify(record),
      ]);
      await d.exec(`DROP INDEX items_qty`);
    });
    const r = await c.pull();
    expect(r.tables["public.items"]).toMatchObject({ strategy: "diff", upserted: 0, deleted: 0 });
    expect((await c.db.query<{ d: string }>(indexes)).rows[0]!.d).toBe(before);
    const left = await c.db.query(`SELECT count(*)::int AS n FROM _ominipg_meta WHERE key LIKE 'pull_%'`);
    expect(left.rows).toEqual([{ n: 0 }]);
  });

  it("copies a table keyed by a generated column row by row (COPY needs the key among the columns it writes)", async () => {
    const remote = await remoteDb();
    const schema = [
      `CREATE TABLE IF NOT EXISTS doubled (a int NOT NULL, b int GENERATED ALWAYS AS (a * 2) STORED PRIMARY KEY, note text)`,
    ];
    await remote.sql.unsafe(schema[0]!);
    await remote.sql.unsafe(`INSERT INTO doubled (a, note) SELECT g, 'n' || g FROM generate_series(1, 300) g`);
    const c = await client(remote.url, schema, { chunkRows: 100 });
    const r = await c.pull();
    expect(r.tables["public.doubled"]).toEqual({
      strategy: "copy",
      upserted: 300,
      deleted: 0,
      skipped: 0,
      rejected: 0,
    });
    await expectSameRows(c.db, remote.sql, { doubled: "b" });
    expect(await resumePoint(c, "doubled")).toBeUndefined();
  });

  it("loads into an in-memory database that extends relations by writing zeros (a directory keeps the default)", async () => {
    // posix_fallocate reallocates and copies a whole file in PGlite's in-memory file system at every extension.
    const setting = `SELECT current_setting('file_extend_method') AS m`;
    const memory = await Ominipg.connect({});
    cleanup(() => memory.close());
    expect((await memory.query(setting)).rows).toEqual([{ m: "write_zeros" }]);
    const dumped = await Ominipg.connect({ loadDataDir: await pgliteTemplate() });
    cleanup(() => dumped.close());
    expect((await dumped.query(setting)).rows).toEqual([{ m: "write_zeros" }]);
    const dir = mkdtempSync(join(tmpdir(), "ominipg-pull-copy-"));
    cleanup(() => rmSync(dir, { recursive: true, force: true }));
    const onDisk = await Ominipg.connect({ url: join(dir, "db") });
    cleanup(() => onDisk.close());
    expect((await onDisk.query(setting)).rows).toEqual([{ m: "posix_fallocate" }]);
  });

  it("puts the next range's query on the wire before the local database blocks the thread (sendQueued)", async () => {
    // PGlite runs on this thread; a COPY holds it for ~0.2 s per range. The next range is read meanwhile only if
    // its query left before: postgres.js sends short messages on the event loop's next turn.
    const block = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
    await withAdmin(async (sql) => {
      const started = async (flush: boolean) => {
        // Made in a microtask, as copy.ts's readRange makes its query (an async function returning it).
        const first = Promise.resolve().then(() => sql<{ at: Date }[]>`SELECT clock_timestamp() AS at`);
        if (flush) await sendQueued();
        block();
        const [a] = await first;
        const [b] = await sql<{ at: Date }[]>`SELECT clock_timestamp() AS at`;
        return b!.at.getTime() - a!.at.getTime(); // server clock: ~400 ms if the first ran during the block
      };
      await sql`SELECT 1`;
      expect(await started(false)).toBeLessThan(200); // the premise: without it, the query waits for the thread
      expect(await started(true)).toBeGreaterThan(200);
    });
  });
});
