import { describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import {
  dbNameOf,
  expectSameRows,
  makeRemoteHostile,
  pullClient,
  queueLength,
  type PullClient,
} from "./pull-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS authors (id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE)`,
  `CREATE TABLE IF NOT EXISTS posts (
     id int8 PRIMARY KEY, author_id int8 NOT NULL REFERENCES authors (id) ON DELETE CASCADE, parent_id int8 REFERENCES posts (id),
     title text, n numeric, price numeric(12, 2), f8 float8, f4 real, meta jsonb, tags text[], nums int8[], blob bytea,
     ts timestamptz, d date, iv interval, u uuid, ok boolean, during tstzrange,
     title_len int GENERATED ALWAYS AS (length(title)) STORED)`,
  `CREATE TABLE IF NOT EXISTS post_tags (post_id int8 NOT NULL REFERENCES posts (id) ON DELETE CASCADE, tag text NOT NULL, weight numeric, PRIMARY KEY (post_id, tag))`,
  `CREATE TABLE IF NOT EXISTS events (at timestamptz PRIMARY KEY, seq int GENERATED ALWAYS AS IDENTITY, payload json)`,
];

const TABLES = { authors: "id", posts: "id", post_tags: "post_id, tag", events: "at" };

async function seed(remote: TestDatabase): Promise<void> {
  for (const s of SCHEMA) await remote.sql.unsafe(s);
  await remote.sql
    .unsafe(
      `
    INSERT INTO authors (name, email) SELECT 'author ' || g, 'a' || g || '@x.org' FROM generate_series(1, 20) g;
    INSERT INTO posts (id, author_id, parent_id, title, n, price, f8, f4, meta, tags, nums, blob, ts, d, iv, u, ok, during)
    SELECT g, 1 + g % 20, CASE WHEN g < 300 AND g % 3 = 0 THEN g + 1 END, 'post ' || g || ' ''quoted'' ünïcödé',
           g * 1.5, g / 7.0, g / 3.0, g / 3.0, jsonb_build_object('g', g, 'big', 123456789012345678901234567890, 'arr', jsonb_build_array(g, 'x', null)),
           ARRAY['a,b', 'c"d', NULL, 'e\\f'], ARRAY[g, 9007199254740993], decode(lpad(to_hex(g), 8, '0') || '00ff5c27', 'hex'),
           timestamptz '2024-03-10 01:59:59.123456+00' + g * interval '37 minutes', date '2024-02-28' + g, make_interval(0, g, 0, 1, 2, 3, 4.5),
           md5(g::text)::uuid, g % 2 = 0, tstzrange(timestamptz '2024-01-01 00:00+00' + g * interval '1 hour', NULL)
      FROM generate_series(1, 300) g;
    INSERT INTO posts (id, author_id, title, n, f8, f4, meta, ts, d, iv, during) VALUES
      (9007199254740993, 1, NULL, 12345678901234567890.123456789012, 0.30000000000000004, 3.4028235e38, '{"n": 1.10, "e": 1e400, "s": "a\\u0001b\\n\\t"}',
       'infinity', '-infinity', '-178000000 years', 'empty'),
      (-9223372036854775808, 2, '', 'NaN', 'NaN', '-Infinity', 'null', '1999-12-31 23:59:59.999999-08', '0044-03-15 BC', '0', '[2024-01-01 00:00+00,2024-02-01 00:00+00)');
    INSERT INTO post_tags (post_id, tag, weight) SELECT p, 'tag' || t, p * t / 3.0 FROM generate_series(1, 300) p, generate_series(1, 3) t;
    INSERT INTO events (at, payload) SELECT timestamptz '2024-06-01 12:00+00' + g * interval '1 second', json_build_object('z', g, 'a', 'x')
      FROM generate_series(1, 50) g;
  `,
    )
    .simple();
}

const cleanup = cleanupAfterEach();

async function setup(
  schema: string[] = SCHEMA,
  connect: Parameters<typeof pullClient>[3] = {},
): Promise<{ remote: TestDatabase; open(): Promise<PullClient> }> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  return {
    remote,
    async open() {
      const c = await pullClient(remote.url, schema, {}, connect);
      cleanup(() => c.close());
      return c;
    },
  };
}

describe("initial pull", () => {
  it("copies every synced table row by row, exactly, whatever the remote's session settings", async () => {
    // Local sequences moved past pulled ids: what a pull does for sequences not pointed at leased id blocks.
    const { remote, open } = await setup(SCHEMA, { sequences: "advance" });
    await seed(remote);
    await makeRemoteHostile(remote.sql, dbNameOf(remote.url));
    const c = await open();
    await c.db.query(`SET TimeZone = 'Asia/Tokyo'`); // the user's session settings must not matter either
    await c.db.query(`SET DateStyle = 'ISO, DMY'`); // another output style is refused (capture-reject.test.ts)

    const r = await c.pull();
    expect(r.tables).toEqual({
      "public.authors": { strategy: "copy", upserted: 20, deleted: 0, skipped: 0, rejected: 0 },
      "public.posts": { strategy: "copy", upserted: 302, deleted: 0, skipped: 0, rejected: 0 },
      "public.post_tags": { strategy: "copy", upserted: 900, deleted: 0, skipped: 0, rejected: 0 },
      "public.events": { strategy: "copy", upserted: 50, deleted: 0, skipped: 0, rejected: 0 },
    });
    expect(r.conflicts).toBe(0);
    // Parents first: every progress report of a table comes after the last one of the tables it references.
    const order = [...new Set(r.seen.progress.map((p) => p.table))];
    expect(order.indexOf("public.authors")).toBeLessThan(order.indexOf("public.posts"));
    expect(order.indexOf("public.posts")).toBeLessThan(order.indexOf("public.post_tags"));
    expect(r.seen.progress.filter((p) => p.table === "public.posts").at(-1)).toEqual({
      table: "public.posts",
      done: 302,
      total: 302,
    });

    await expectSameRows(c.db, remote.sql, TABLES);
    // Exact values as the application reads them.
    const big = await c.db.query(`SELECT id, n::text AS n, f8 FROM posts WHERE id = 9007199254740993`);
    expect(big.rows[0]).toEqual({
      id: 9007199254740993n,
      n: "12345678901234567890.123456789012",
      f8: 0.30000000000000004,
    });
    const jtext = await c.db.query<{ t: string }>(`SELECT (meta->'big')::text AS t FROM posts WHERE id = 1`);
    expect(jtext.rows[0]!.t).toBe("123456789012345678901234567890");

    // Nothing pulled is a local change; a push after the pull pushes nothing.
    expect(await queueLength(c.db)).toBe(0);
    expect((await c.db.sync()).pushed).toBe(0);

    // Sequences moved past pulled ids: new local rows do not collide with pulled ones.
    const ins = await c.db.query<{ id: number }>(`INSERT INTO authors (name) VALUES ('new') RETURNING id`);
    expect(Number(ins.rows[0]!.id)).toBe(21);
    const ev = await c.db.query<{ seq: number }>(`INSERT INTO events (at) VALUES (now()) RETURNING seq`);
    expect(ev.rows[0]!.seq).toBe(51);
    expect(r.sequences).toBe(2);

    // A second pull compares hashes and finds nothing to do (the new local rows are pending, so held).
    const again = await c.pull();
    for (const t of Object.values(again.tables)) expect(t).toMatchObject({ strategy: "diff", upserted: 0, deleted: 0 });
    expect(again.conflicts).toBe(0);
    expect(await queueLength(c.db)).toBe(2);
  });

  it("keeps pending local changes on top of the pulled rows, reports conflicts, and a later sync pushes them", async () => {
    // Author 1 is keyed by a sequence (bigserial): the local insert and the remote row are two records, so its
    // push is refused, never written over (tests/sync-key-collision.test.ts); "skip" sets it aside.
    const { remote, open } = await setup(SCHEMA, { sync: { onReject: "skip" } });
    await seed(remote);
    const c = await open();
    await c.db.query(
      `INSERT INTO authors (id, name, email) VALUES (1, 'mine', 'mine@x.org'), (100, 'local only', 'l@x.org')`,
    );
    await c.db.query(`INSERT INTO posts (id, author_id, title) VALUES (5000, 100, 'local post')`);
    expect(await queueLength(c.db)).toBe(3);

    const r = await c.pull();
    expect(r.tables["public.authors"]).toEqual({ strategy: "copy", upserted: 19, deleted: 0, skipped: 2, rejected: 0 }); // 1 and 100 held
    expect(r.conflicts).toBe(1);
    expect(r.seen.conflicts).toHaveLength(1);
    const conflict = r.seen.conflicts[0]!;
    expect(conflict).toMatchObject({ table: "public.authors", key: `{"id":1}`, base: null });
    expect(JSON.parse(conflict.local!)).toEqual({ id: 1, name: "mine", email: "mine@x.org" });
    expect(JSON.parse(conflict.remote!)).toEqual({ id: 1, name: "author 1", email: "a1@x.org" });

    const { rows } = await c.db.query<{ id: number; name: string }>(
      `SELECT id, name FROM authors WHERE id IN (1, 2, 100) ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 1, name: "mine" },
      { id: 2, name: "author 2" },
      { id: 100, name: "local only" },
    ]);
    expect(await queueLength(c.db)).toBe(3); // untouched

    const pushed = await c.db.sync();
    expect(pushed.pushed).toBe(3);
    expect(await remote.sql`SELECT name FROM authors WHERE id = 100`).toEqual([{ name: "local only" }]);
    expect(await remote.sql`SELECT title FROM posts WHERE id = 5000`).toEqual([{ title: "local post" }]);
    // Once pushed, a pull makes the two sides equal.
    const after = await c.pull();
    expect(after.conflicts).toBe(0);
    await expectSameRows(c.db, remote.sql, TABLES);
  });

  it("skips and reports a remote row the local table refuses, and applies the rest", async () => {
    const { remote, open } = await setup();
    await seed(remote);
    const c = await open();
    // A pending local row holds the e-mail the remote's author 7 has: UNIQUE refuses the remote row locally.
    await c.db.query(`INSERT INTO authors (id, name, email) VALUES (500, 'me', 'a7@x.org')`);
    const r = await c.pull();
    expect(r.tables["public.authors"]).toMatchObject({ upserted: 19, rejected: 1 });
    expect(r.rejected).toBe(1);
    expect(r.seen.rejected).toHaveLength(1);
    expect(r.seen.rejected[0]).toMatchObject({
      table: "public.authors",
      key: `{"id":7}`,
      error: expect.objectContaining({ code: "23505" }),
    });
    expect(JSON.parse(r.seen.rejected[0]!.remote)).toMatchObject({ id: 7, email: "a7@x.org" });
    // Author 7's posts still arrive (replica role: no FK check against the missing parent) and the rest is equal.
    expect((await c.db.query(`SELECT count(*)::int AS n FROM posts`)).rows[0]).toEqual({ n: 302 });
    expect((await c.db.query(`SELECT count(*)::int AS n FROM authors`)).rows[0]).toEqual({ n: 20 });
  });

  it("an interrupted pull leaves the connection usable, and the next pull completes it", async () => {
    const { remote } = await setup();
    await seed(remote);
    const c = await pullClient(remote.url, SCHEMA, { chunkRows: 50 });
    cleanup(() => c.close());
    const stop = new Error("stop here");
    const err = await c.puller
      .pull({
        progress: (p) => {
          if (p.table === "public.posts" && p.done >= 100) throw stop;
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBe(stop);
    expect((await c.db.query(`SELECT count(*)::int AS n FROM posts`)).rows[0]).toEqual({ n: 100 });
    const r = await c.pull();
    expect(r.tables["public.posts"]).toMatchObject({ strategy: "diff", upserted: 202, deleted: 0 });
    expect(r.tables["public.authors"]).toMatchObject({ strategy: "diff", upserted: 0 });
    await expectSameRows(c.db, remote.sql, TABLES);
    expect(await queueLength(c.db)).toBe(0);
  });

  it("holds a row written locally while the pull runs, and a table with a pending TRUNCATE", async () => {
    const { remote } = await setup();
    await seed(remote);
    const c = await pullClient(remote.url, SCHEMA, { chunkRows: 50 });
    cleanup(() => c.close());
    await c.db.query(`INSERT INTO events (at, payload) VALUES ('2030-01-01 00:00+00', '{"local": true}')`);
    await c.db.query(`TRUNCATE events`); // pending: the pull must not bring the remote's events back
    let written: Promise<unknown> | undefined;
    const r = await c.puller.pull({
      progress: (p) => {
        // Post 250 arrives in a later chunk; this insert runs before the pull's next local write.
        if (p.table === "public.posts" && p.done === 50)
          written ??= c.db.query(`INSERT INTO posts (id, author_id, title) VALUES (250, 1, 'mid-pull')`);
      },
    });
    await written;
    expect(r.tables["public.posts"]).toMatchObject({ strategy: "copy", upserted: 301 });
    expect((await c.db.query(`SELECT title FROM posts WHERE id = 250`)).rows).toEqual([{ title: "mid-pull" }]);
    expect(r.tables["public.events"]).toEqual({ strategy: "held", upserted: 0, deleted: 0, skipped: 0, rejected: 0 });
    expect((await c.db.query(`SELECT count(*)::int AS n FROM events`)).rows[0]).toEqual({ n: 0 });
  });

  it("fails with a redacted SyncError when the remote is unreachable, and leaves the local database as it was", async () => {
    const { remote, open } = await setup();
    await seed(remote);
    const c = await open();
    const { Remote } = await import("../src/remote/remote.js");
    const { Puller } = await import("../src/pull/puller.js");
    const inner = c.db as unknown as {
      local: import("../src/local/access.js").LocalAccess;
      catalog(): Promise<import("../src/capture/catalog.js").Catalog>;
    };
    const { unreachableUrl } = await import("./harness/index.js");
    const bad = new Remote(unreachableUrl(), [], false, 1, { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 });
    cleanup(() => bad.close());
    const err = await new Puller(inner.local, () => inner.catalog(), bad).pull().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "SyncError", retryable: true });
    expect(String((err as Error).message)).not.toContain(":pw@");
    expect((await c.db.query(`SELECT count(*)::int AS n FROM authors`)).rows[0]).toEqual({ n: 0 });
  });
});
