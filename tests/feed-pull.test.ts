// Pulling from the remote change feed (sync.feed "auto", the default, with a superuser: the clients set the
// feed up and drain it themselves) against a real PostgreSQL with wal_level=logical: concurrent remote writers
// with inserts, updates, deletes, key changes and TRUNCATE, two clients on one feed, local == remote after
// every pull; the client's own pushes coming back without effect; conflicts with pending changes; fallbacks to
// the diff (slot dropped, feed trimmed past a client, TRUNCATE) and back; tables added later.
import type postgres from "postgres";
import { describe, expect, it } from "vitest";
import type { OminipgWarning } from "../src/core/warnings.js";
import type { LocalAccess } from "../src/local/access.js";
import { Ominipg, type ConflictEvent, type PullResult, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY, v int NOT NULL, s text)`,
  `CREATE TABLE IF NOT EXISTS b (k1 text, k2 int, v jsonb, PRIMARY KEY (k1, k2))`,
];
const TABLES = { a: "id", b: "k1, k2" };

const cleanup = cleanupAfterEach();

async function remoteDb(): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  for (const s of SCHEMA) await remote.sql.unsafe(s);
  return remote;
}

async function client(remote: TestDatabase, sync: SyncOptions = {}, warnings: OminipgWarning[] = []): Promise<Ominipg> {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: SCHEMA,
    sync: { retry: { attempts: 2 }, ...sync },
  });
  db.on("warning", (w) => warnings.push(w));
  cleanup(() => db.close());
  return db;
}

const strategies = (r: PullResult) => Object.fromEntries(Object.entries(r.tables).map(([t, x]) => [t, x.strategy]));

/** A small deterministic PRNG (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One random remote transaction of 1-4 statements on a and b (key changes and, rarely, TRUNCATE included). */
async function randomTransaction(sql: postgres.Sql, rnd: () => number): Promise<void> {
  const id = () => 1 + Math.floor(rnd() * 300);
  const ops: string[] = [];
  for (let i = 0, n = 1 + Math.floor(rnd() * 4); i < n; i++) {
    const x = rnd();
    if (x < 0.3) ops.push(`INSERT INTO a VALUES (${id()}, ${id()}, 'i') ON CONFLICT (id) DO UPDATE SET v = a.v + 1`);
    else if (x < 0.5)
      ops.push(`UPDATE a SET v = v + 1, s = md5(random()::text) WHERE id BETWEEN ${id()} AND ${id()} + 3`);
    else if (x < 0.62) ops.push(`DELETE FROM a WHERE id = ${id()}`);
    else if (x < 0.72)
      ops.push(
        `UPDATE a SET id = ${id() + 1000} WHERE id = ${id()} AND NOT EXISTS (SELECT 1 FROM a WHERE id >= 1000 AND id = ${id() + 1000})`,
      );
    else if (x < 0.88)
      ops.push(
        `INSERT INTO b VALUES ('k''' || ${id() % 20}, ${id()}, jsonb_build_object('n', ${id()})) ON CONFLICT DO NOTHING`,
      );
    else if (x < 0.96) ops.push(`DELETE FROM b WHERE k2 % 7 = ${id() % 7}`);
    else if (x < 0.985) ops.push(`UPDATE b SET k2 = k2 + 1000 WHERE k2 = ${id()}`);
    else ops.push(rnd() < 0.5 ? `TRUNCATE b` : `DELETE FROM a WHERE id % 3 = 0`);
  }
  // Writers lock rows in random order: a deadlock among them rolls one back, which tries again.
  for (let attempt = 0; ; attempt++) {
    try {
      await sql.begin(async (tx) => {
        for (const op of ops) {
          await tx.unsafe(`SAVEPOINT s`);
          try {
            await tx.unsafe(op);
            await tx.unsafe(`RELEASE SAVEPOINT s`);
          } catch (err) {
            if ((err as { code?: string }).code === "40P01") throw err;
            await tx.unsafe(`ROLLBACK TO SAVEPOINT s`); // a key change onto a taken key, say
          }
        }
      });
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "40P01" || attempt >= 5) throw err;
    }
  }
}

describe("pull from the change feed", () => {
  it("concurrent remote writers, two clients on one feed: local == remote after every pull", async () => {
    const remote = await remoteDb();
    const A = await client(remote);
    const B = await client(remote);
    expect(strategies(await A.pull())).toEqual({ "public.a": "copy", "public.b": "copy" });
    expect(strategies(await B.pull())).toEqual({ "public.a": "copy", "public.b": "copy" });
    const rnd = random(20261204);
    const seen = { feed: 0, diff: 0 };
    for (let round = 0; round < 10; round++) {
      // Three writers at once, the two clients pulling meanwhile.
      let writing = true;
      const writers = [0, 1, 2].map(async () => {
        for (let i = 0; i < 12; i++) await randomTransaction(remote.sql, rnd);
      });
      const pulls = [A, B].map(async (c) => {
        while (writing) await c.pull();
      });
      try {
        await Promise.all(writers);
      } finally {
        writing = false;
        await Promise.all(pulls);
      }
      for (const c of [A, B]) {
        const r = await c.pull();
        for (const t of Object.values(r.tables)) seen[t.strategy as "feed" | "diff"]++;
        expect(r.feed?.unusable).toBeUndefined();
        await expectSameRows(c, remote.sql, TABLES);
      }
    }
    // The feed did the work; TRUNCATEs made their table diff.
    expect(seen.feed).toBeGreaterThan(seen.diff);
    console.log(`random writers: ${JSON.stringify(seen)} table pulls after the rounds`);
  });

  it("the client's own pushes come back without effect; pending changes are held and conflicts found", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g, 'r' FROM generate_series(1, 100) g`;
    const A = await client(remote);
    await A.pull();
    await A.query(`UPDATE a SET s = 'mine' WHERE id <= 10`);
    await A.query(`INSERT INTO a VALUES (500, 5, 'new')`);
    await A.query(`UPDATE a SET id = 600 WHERE id = 20`);
    await A.sync();
    // The sync drained the feed too (a role that may): its own writes are there before any pull.
    const pushed = await remote.sql`SELECT key ->> 'id' AS id FROM _ominipg_feed WHERE table_name = 'a' ORDER BY 1`;
    expect(pushed.map((r) => r.id)).toEqual(expect.arrayContaining(["1", "500", "600", "20"]));
    const echo = await A.pull();
    expect(echo.tables["public.a"]).toEqual({ strategy: "feed", upserted: 0, deleted: 0, skipped: 0, rejected: 0 });
    expect(echo.conflicts).toBe(0);
    // Pending local changes: one on a row the remote changes too (a conflict), one on a row pushed before.
    await A.query(`UPDATE a SET v = -1 WHERE id = 30`);
    await A.query(`UPDATE a SET v = -2 WHERE id = 1`);
    await remote.sql`UPDATE a SET v = 1000 WHERE id IN (30, 31)`;
    const r = await A.pull();
    expect(r.tables["public.a"]).toEqual({ strategy: "feed", upserted: 1, deleted: 0, skipped: 1, rejected: 0 });
    expect(r.conflicts).toBe(1);
    expect((await A.query(`SELECT id, v FROM a WHERE id IN (1, 30, 31) ORDER BY id`)).rows).toEqual([
      { id: 1, v: -2 },
      { id: 30, v: -1 },
      { id: 31, v: 1000 },
    ]);
    await A.sync();
    await A.pull();
    await expectSameRows(A, remote.sql, TABLES);
  });

  it("rows a push left other than the remote's (a refused change set aside, a resolver's skip) are read again", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g FROM generate_series(1, 20) g`;
    await remote.sql`ALTER TABLE a ADD CONSTRAINT positive CHECK (v >= 0)`; // the remote's alone
    const A = await client(remote, {
      onReject: "skip",
      conflicts: { default: "overwrite", tables: { a: ({ local }) => (local?.id === 3 ? "skip" : "local") } },
    });
    await A.pull();
    await A.query(`UPDATE a SET v = -1 WHERE id = 1`); // refused by the remote: set aside in _ominipg_rejected
    await A.query(`UPDATE a SET v = 33 WHERE id = 3`);
    await remote.sql`UPDATE a SET v = 300 WHERE id = 3`; // a conflict the resolver skips: nothing pushed
    expect((await A.pull()).conflicts).toBe(1); // held: the feed has moved past the remote's change
    await A.sync();
    expect((await A.query(`SELECT count(*)::int AS n FROM _ominipg_rejected`)).rows).toEqual([{ n: 1 }]);
    const r = await A.pull();
    expect(r.tables["public.a"]).toMatchObject({ strategy: "feed", upserted: 2 });
    await expectSameRows(A, remote.sql, TABLES);
    expect((await A.pull()).tables["public.a"]).toMatchObject({ strategy: "feed", upserted: 0 });
  });

  it("a key a pending row passed through (inserted, then given another key), which a pull held back, is read again", async () => {
    const remote = await remoteDb();
    const A = await client(remote);
    await A.pull();
    await A.query(`INSERT INTO a VALUES (18, 1, 'local')`);
    await A.query(`UPDATE a SET id = 1 WHERE id = 18`);
    await remote.sql`INSERT INTO a VALUES (18, 2, 'remote')`;
    expect((await A.pull()).tables["public.a"]).toMatchObject({ strategy: "feed", skipped: 1 }); // 18: pending
    await A.sync(); // one insert of key 1: nothing written at 18
    await A.pull();
    await expectSameRows(A, remote.sql, TABLES);
  });

  it("changes the ledger finished after a lost COMMIT reply, which a pull held back meanwhile, are read again", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a VALUES (1, 1, 'one')`;
    const hooks: { afterRemoteCommit?: () => void } = {};
    const A = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: SCHEMA,
      testHooks: hooks,
      sync: { retry: { attempts: 1 } },
    });
    cleanup(() => A.close());
    await A.pull();
    await A.query(`UPDATE a SET s = 'L' WHERE id = 1`);
    await remote.sql`UPDATE a SET v = 99 WHERE id = 1`; // another column: no conflict
    hooks.afterRemoteCommit = () => {
      throw Object.assign(new Error("reset after COMMIT"), { code: "ECONNRESET" });
    };
    await expect(A.sync()).rejects.toThrow(); // applied remotely, still queued locally
    delete hooks.afterRemoteCommit;
    await A.pull(); // row 1 held back: pending
    await A.sync(); // the ledger says applied: dropped, nothing pushed
    await A.pull();
    await expectSameRows(A, remote.sql, TABLES);
    expect((await A.query(`SELECT v, s FROM a`)).rows).toEqual([{ v: 99, s: "L" }]);
  });

  /**
   * A remote with `things`, whose enum key lacks a label the app's enum has (its local migration ran first), and
   * `other` (remote statements, their local schema); a client that pulled them, then inserted key 'c': refused by
   * the remote and set aside (onReject "skip"), its key is read again by every later pull, which the server refuses.
   */
  async function setAsideKey(other: { remote: string; local: string[] }) {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    await remote.sql
      .unsafe(
        `CREATE TYPE kind AS ENUM ('a', 'b'); CREATE TABLE things (k kind PRIMARY KEY, v text);
         INSERT INTO things VALUES ('a', 'x'); ${other.remote}`,
      )
      .simple();
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: [
        `CREATE TYPE kind AS ENUM ('a', 'b', 'c')`,
        ...other.local, // pulled before things
        `CREATE TABLE IF NOT EXISTS things (k kind PRIMARY KEY, v text)`,
      ],
      remoteSchema: "skip",
      sync: { onReject: "skip", retry: { attempts: 1 } },
    });
    cleanup(() => db.close());
    await db.pull();
    await db.query(`INSERT INTO things VALUES ('c', 'local')`);
    expect((await db.sync()).rejected).toBe(1); // 22P02 on the remote
    await remote.sql`INSERT INTO things VALUES ('b', 'y')`;
    return { remote, db };
  }

  it("a key the remote table no longer reads (a set-aside key its enum lacks, a feed key its domain's new CHECK refuses): the table diffs once, then the feed again", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.prependListener("uncaughtException", onUncaught);
    cleanup(async () => void process.off("uncaughtException", onUncaught));
    const { remote, db } = await setAsideKey({
      remote: `CREATE DOMAIN code AS text; CREATE TABLE codes (c code PRIMARY KEY, v text);
               INSERT INTO codes VALUES ('long-code', 'x')`,
      local: [`CREATE DOMAIN code AS text`, `CREATE TABLE IF NOT EXISTS codes (c code PRIMARY KEY, v text)`],
    });
    // A key in the feed, then a CHECK its domain gains once the row is gone: the key no longer reads as a code.
    await remote.sql`INSERT INTO codes VALUES ('ab', 'short')`;
    await remote.sql`DELETE FROM codes WHERE c = 'ab'`;
    await remote.sql`UPDATE codes SET v = 'y' WHERE c = 'long-code'`;
    await remote.sql.unsafe(`ALTER DOMAIN code ADD CONSTRAINT long CHECK (length(VALUE) > 3)`);
    // Both reads of the feed fail on the server (22P02, 23514): both tables are diffed instead, in a new snapshot.
    const first = await db.pull();
    expect(first.tables["public.things"]).toMatchObject({ strategy: "diff" });
    expect(first.tables["public.things"]!.reason).toMatch(/no longer reads \(invalid input value for enum kind: "c"\)/);
    expect(first.tables["public.codes"]).toMatchObject({ strategy: "diff", upserted: 1 });
    expect(first.tables["public.codes"]!.reason).toMatch(
      /no longer reads \(value for domain code violates check constraint "long"\)/,
    );
    expect((await db.query(`SELECT k::text, v FROM things ORDER BY k`)).rows).toEqual([
      { k: "a", v: "x" },
      { k: "b", v: "y" }, // the set-aside row is read again as any: the remote has none (it stays in _ominipg_rejected)
    ]);
    expect((await db.query(`SELECT count(*)::int AS n FROM _ominipg_rejected`)).rows).toEqual([{ n: 1 }]);
    expect((await db.query(`SELECT c::text, v FROM codes`)).rows).toEqual([{ c: "long-code", v: "y" }]);
    // The diff moved both cursors past the keys: the next pulls read the feed.
    await remote.sql`UPDATE things SET v = 'z' WHERE k = 'a'`;
    await remote.sql`UPDATE codes SET v = 'z'`;
    const next = await db.pull();
    expect(strategies(next)).toEqual({ "public.things": "feed", "public.codes": "feed" });
    expect((await db.query(`SELECT v FROM things WHERE k = 'a'`)).rows).toEqual([{ v: "z" }]);
    expect((await db.query(`SELECT v FROM codes`)).rows).toEqual([{ v: "z" }]);
    await new Promise((r) => setTimeout(r, 200));
    expect(uncaught).toEqual([]);
  });

  it("a pull started again after a feed read refused for a key counts what its first snapshot did", async () => {
    const { remote, db } = await setAsideKey({
      remote: `CREATE TABLE aa (id int PRIMARY KEY, v text); INSERT INTO aa VALUES (1, 'x'), (2, 'x')`,
      local: [`CREATE TABLE IF NOT EXISTS aa (id int PRIMARY KEY, v text)`],
    });
    const events: ConflictEvent[] = [];
    db.on("conflict", (c) => events.push(c));
    await db.query(`UPDATE aa SET v = 'local' WHERE id = 1`); // pending: held, a conflict with the remote's change
    await remote.sql`UPDATE aa SET v = 'remote' WHERE id = 1`;
    await remote.sql`UPDATE aa SET v = 'y' WHERE id = 2`;
    const r = await db.pull(); // aa from the feed, then things refused: a second snapshot diffs things
    expect(events).toHaveLength(1);
    expect(r.conflicts).toBe(1);
    expect(r.tables["public.aa"]).toMatchObject({ strategy: "feed", upserted: 1 });
    expect(r.tables["public.things"]).toMatchObject({ strategy: "diff" });
  });

  it("a table held by a local TRUNCATE whose feed read the server refuses for a key: the other tables still pull", async () => {
    const { remote, db } = await setAsideKey({
      remote: `CREATE TABLE zz (id int PRIMARY KEY, v text); INSERT INTO zz VALUES (1, 'x')`,
      local: [`CREATE TABLE IF NOT EXISTS zz (id int PRIMARY KEY, v text)`],
    });
    await remote.sql`UPDATE zz SET v = 'y'`;
    await db.query(`TRUNCATE things`); // queued: the next pull holds the table
    const r = await db.pull();
    expect(strategies(r)).toEqual({ "public.things": "held", "public.zz": "feed" });
    expect((await db.query(`SELECT v FROM zz`)).rows).toEqual([{ v: "y" }]);
  });

  it("a column of a NOT NULL domain: the table's changes are read from the feed (a key was read as a whole row)", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const schema = [`CREATE DOMAIN nn AS text NOT NULL`, `CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, v nn)`];
    for (const s of schema) await remote.sql.unsafe(s);
    await remote.sql`INSERT INTO t VALUES (1, 'x')`;
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: schema,
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    cleanup(() => db.close());
    expect(strategies(await db.pull())).toEqual({ "public.t": "copy" });
    for (const [n, v] of [
      [2, "y"],
      [3, "z"],
    ] as const) {
      await remote.sql`UPDATE t SET v = ${v}`; // the rows there: n - 1
      await remote.sql`INSERT INTO t VALUES (${n}, ${v})`;
      expect((await db.pull()).tables["public.t"]).toMatchObject({ strategy: "feed", upserted: n });
    }
    await expectSameRows(db, remote.sql, { t: "id" });
  });

  it("TRUNCATE makes its table diff; a dropped slot is replaced and every table diffs once; then the feed again", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g FROM generate_series(1, 200) g`;
    await remote.sql`INSERT INTO b SELECT 'k', g FROM generate_series(1, 50) g`;
    const warnings: OminipgWarning[] = [];
    const A = await client(remote, {}, warnings);
    await A.pull();
    await remote.sql`TRUNCATE b`;
    await remote.sql`INSERT INTO b VALUES ('after', 1, '{}')`;
    await remote.sql`UPDATE a SET v = 0 WHERE id = 7`;
    expect(strategies(await A.pull())).toEqual({ "public.a": "feed", "public.b": "diff" });
    await expectSameRows(A, remote.sql, TABLES);

    const [state] = await remote.sql<{ slot: string }[]>`SELECT slot_name AS slot FROM _ominipg_feed_state`;
    const slot = state!.slot;
    await remote.sql`SELECT pg_drop_replication_slot(${slot})`;
    await remote.sql`UPDATE a SET v = 1 WHERE id = 8`; // never in any feed: only a diff finds it
    await remote.sql`DELETE FROM b`;
    const replaced = await A.pull();
    expect(strategies(replaced)).toEqual({ "public.a": "diff", "public.b": "diff" });
    expect(replaced.tables["public.a"]!.upserted).toBe(1);
    expect(warnings.map((w) => w.code)).toContain("FEED_SLOT_REPLACED");
    await expectSameRows(A, remote.sql, TABLES);
    await remote.sql`UPDATE a SET v = 2 WHERE id = 9`;
    expect(strategies(await A.pull())).toEqual({ "public.a": "feed", "public.b": "feed" });
    await expectSameRows(A, remote.sql, TABLES);
  });

  it("a client offline past the retention diffs, then reads the feed again", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g FROM generate_series(1, 100) g`;
    const B = await client(remote);
    await B.pull();
    await remote.sql`UPDATE a SET v = -v WHERE id <= 10`;
    // Another drainer, keeping rows 1 ms: it trims what B has not read yet.
    const drainer = await Ominipg.feed(remote.url, { retentionMs: 1 });
    await expect.poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed`).length, { timeout: 10_000 }).toBe(0);
    await drainer.stop();
    const late = await B.pull();
    expect(strategies(late)).toEqual({ "public.a": "diff", "public.b": "copy" }); // b: empty, nothing to diff
    expect(late.tables["public.a"]!.upserted).toBe(10);
    await remote.sql`UPDATE a SET v = 0 WHERE id = 50`;
    expect(strategies(await B.pull())).toEqual({ "public.a": "feed", "public.b": "feed" });
    await expectSameRows(B, remote.sql, TABLES);
  });

  it("a table nothing changed in is only moved on (no temp tables); a pending TRUNCATE still holds it, and its feed rows are dropped", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g FROM generate_series(1, 50) g`;
    const A = await client(remote);
    await A.pull();
    // New catalog objects take OIDs: a pull that makes its temp tables moves the OID counter, one that does not
    // leaves it where it was. A probe temp table per reading (the probe's own share measured first).
    let n = 0;
    const nextOid = async () => {
      const name = `ominipg_probe_${n++}`;
      await A.query(`CREATE TEMP TABLE ${name} (x int)`);
      return Number((await A.query<{ o: string }>(`SELECT '${name}'::regclass::oid::int8 AS o`)).rows[0]!.o);
    };
    const first = await nextOid();
    const step = (await nextOid()) - first;
    const cursor = async (table: string) => {
      const key = `feed_cursor:${JSON.stringify(["public", table])}`;
      const { rows } = await A.query<{ v: string }>(`SELECT value AS v FROM _ominipg_meta WHERE key = $1`, [key]);
      return (JSON.parse(rows[0]!.v) as { lsn: string }).lsn;
    };

    let before = await nextOid();
    const idle = await A.pull();
    expect(strategies(idle)).toEqual({ "public.a": "feed", "public.b": "feed" });
    expect((await nextOid()) - before).toBe(step);

    await remote.sql`UPDATE a SET v = -v WHERE id <= 5`;
    before = await nextOid();
    const changed = await A.pull();
    expect(changed.tables["public.a"]).toMatchObject({ strategy: "feed", upserted: 5 });
    expect((await nextOid()) - before).toBeGreaterThan(step); // a's pull made its temp tables: the probe tells
    // b, which nothing changed in, moved on with a: the feed's trimming never leaves it behind.
    expect(await cursor("b")).toBe(changed.feed!.position);
    expect(await cursor("a")).toBe(changed.feed!.position);

    await A.query(`TRUNCATE b`);
    // b's feed rows (~80 kB of COPY) are asked for before its pending TRUNCATE is found: left unread, they would
    // stall the snapshot's connection, and the pull with it.
    await remote.sql`INSERT INTO b SELECT 'k', g, jsonb_build_object('pad', repeat('x', 200)) FROM generate_series(1, 300) g`;
    await remote.sql`UPDATE a SET v = -v WHERE id = 1`;
    const held = await A.pull();
    expect(strategies(held)).toEqual({ "public.a": "feed", "public.b": "held" });
    expect(held.tables["public.a"]!.upserted).toBe(1);
    expect(await cursor("b")).toBe(changed.feed!.position);
    await A.sync();
    await A.pull();
    await expectSameRows(A, remote.sql, TABLES);
  });

  it("a cursor saved by an older version (no remote identity, no security set-up) diffs its table once, then the feed", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g FROM generate_series(1, 20) g`;
    const A = await client(remote);
    await A.pull();
    // What an older version saved: the epoch, the position, the remote table's oid and partitions.
    await (A as unknown as { local: LocalAccess }).local.run((d) =>
      d.exec(
        `UPDATE _ominipg_meta SET value = (value::jsonb - 'reader' - 'security')::text WHERE key LIKE 'feed_cursor:%'`,
      ),
    );
    await remote.sql`UPDATE a SET v = -v WHERE id = 1`;
    expect((await A.pull()).tables["public.a"]).toMatchObject({
      strategy: "diff",
      reason: expect.stringMatching(/does not say which remote identity/),
    });
    await remote.sql`UPDATE a SET v = -v WHERE id = 2`;
    expect(strategies(await A.pull())).toEqual({ "public.a": "feed", "public.b": "feed" });
    await expectSameRows(A, remote.sql, TABLES);
  });

  it("a column the server added before the client did, and a local table made again: the table diffs (or is copied) once, then the feed", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g FROM generate_series(1, 20) g`;
    const A = await client(remote);
    await A.pull();
    const note = `ALTER TABLE a ADD COLUMN IF NOT EXISTS note text NOT NULL DEFAULT ''`;
    await remote.sql.unsafe(note); // the server migrates first ...
    await remote.sql`UPDATE a SET note = 'server', v = -v WHERE id = 1`;
    expect(strategies(await A.pull())).toEqual({ "public.a": "feed", "public.b": "feed" });
    await A.query(note); // ... then the client: row 1 came without its note
    expect((await A.pull()).tables["public.a"]).toMatchObject({
      strategy: "diff",
      reason: expect.stringMatching(/local table was made again, or its columns changed/),
    });
    await expectSameRows(A, remote.sql, TABLES);
    await remote.sql`UPDATE a SET note = 'later' WHERE id = 2`;
    expect((await A.pull()).tables["public.a"]).toMatchObject({ strategy: "feed", upserted: 1 });
    await A.query(`DROP TABLE a`);
    await A.query(`CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL, s text, note text NOT NULL DEFAULT '')`);
    expect(strategies(await A.pull())).toEqual({ "public.a": "copy", "public.b": "feed" });
    await expectSameRows(A, remote.sql, TABLES);
  });

  it("a column of a type outside the search_path: a SET search_path alone does not make the table diff", async () => {
    const schema = [
      `CREATE SCHEMA IF NOT EXISTS app`,
      `DO $$ BEGIN CREATE TYPE app.mood AS ENUM ('ok', 'bad'); EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
      `CREATE TABLE IF NOT EXISTS c (id int PRIMARY KEY, m app.mood)`,
    ];
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    for (const s of schema) await remote.sql.unsafe(s);
    await remote.sql`INSERT INTO c SELECT g, 'ok' FROM generate_series(1, 5) g`;
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: schema, sync: { retry: { attempts: 2 } } });
    cleanup(() => db.close());
    await db.pull();
    await db.query(`SET search_path = public, app`); // format_type() now prints the column's type as "mood"
    await remote.sql`UPDATE c SET m = 'bad' WHERE id = 2`;
    expect((await db.pull()).tables["public.c"]).toMatchObject({ strategy: "feed", upserted: 1 });
  });

  it("a remote table whose primary key was dropped and made again: what was written meanwhile comes (the drainer skips a table without one); not after a REINDEX", async () => {
    const remote = await remoteDb();
    await remote.sql`INSERT INTO a SELECT g, g FROM generate_series(1, 5) g`;
    const A = await client(remote);
    await A.pull();
    await remote.sql.unsafe(`ALTER TABLE a DROP CONSTRAINT a_pkey`);
    await remote.sql`UPDATE a SET v = -v WHERE id = 2`;
    await remote.sql`INSERT INTO a VALUES (6, 6)`;
    await A.pull();
    await remote.sql.unsafe(`ALTER TABLE a ADD PRIMARY KEY (id)`);
    await remote.sql`UPDATE a SET v = -v WHERE id = 3`;
    await A.pull();
    await expectSameRows(A, remote.sql, TABLES);
    await remote.sql`UPDATE a SET v = -v WHERE id = 4`;
    expect((await A.pull()).tables["public.a"]).toMatchObject({ strategy: "feed", upserted: 1 });
    await remote.sql.unsafe(`REINDEX INDEX CONCURRENTLY a_pkey`); // the same key, a new index: no diff
    await remote.sql`UPDATE a SET v = -v WHERE id = 5`;
    expect((await A.pull()).tables["public.a"]).toMatchObject({ strategy: "feed", upserted: 1 });
  });

  it("a key changed remotely to an equal value spelled otherwise (1.1 to 1.10) is written as the remote row has it", async () => {
    const remote = await remoteDb();
    const s = `CREATE TABLE IF NOT EXISTS s (k numeric PRIMARY KEY, v text)`;
    await remote.sql.unsafe(s);
    await remote.sql`INSERT INTO s VALUES (1.1, 'a')`;
    const A = await client(remote);
    await A.query(s);
    await A.pull();
    await remote.sql`UPDATE s SET v = 'b'`;
    await remote.sql`UPDATE s SET k = 1.10`;
    expect((await A.pull()).tables["public.s"]).toMatchObject({ strategy: "feed" });
    expect((await A.query(`SELECT k::text AS k, v FROM s`)).rows).toEqual([{ k: "1.10", v: "b" }]);
    expect((await A.verify()).ok).toBe(true);
  });

  it('a table added later is copied, then pulled from the feed; sync.feed "off" never sets one up', async () => {
    const remote = await remoteDb();
    const A = await client(remote);
    await A.pull();
    const c = `CREATE TABLE IF NOT EXISTS c (id uuid PRIMARY KEY, n int)`;
    await remote.sql.unsafe(c);
    await A.query(c);
    await remote.sql`INSERT INTO c SELECT gen_random_uuid(), g FROM generate_series(1, 20) g`;
    expect(strategies(await A.pull())["public.c"]).toBe("copy");
    await remote.sql`UPDATE c SET n = -n WHERE n <= 5`;
    const r = await A.pull();
    expect(r.tables["public.c"]).toMatchObject({ strategy: "feed", upserted: 5 });
    await expectSameRows(A, remote.sql, { ...TABLES, c: "id" });

    const other = await createTestDatabase();
    cleanup(() => other.drop());
    for (const s of SCHEMA) await other.sql.unsafe(s);
    await other.sql`INSERT INTO a VALUES (1, 1)`;
    const off = await client(other, { feed: "off" });
    await off.pull();
    await other.sql`INSERT INTO a VALUES (2, 2)`;
    const r2 = await off.pull();
    expect(strategies(r2)).toEqual({ "public.a": "diff", "public.b": "copy" });
    expect(r2.feed).toBeUndefined();
    expect(await other.sql`SELECT 1 FROM pg_replication_slots WHERE database = current_database()`).toHaveLength(0);
  });
});
