// Tables the change feed cannot serve: each is diffed at every pull, with the reason, and local stays equal to
// the remote as the client's role sees it (found by a hunt session: both pulled "by the feed" and never changed).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg, type FeedDrainer } from "../src/index.js";
import { setUpRemote } from "../src/remote/remote.js";
import { createLoginRoles, createTestDatabase, dropRoles, type TestDatabase } from "./harness/index.js";

describe("feed pull: a remote UNLOGGED table (logical decoding never sees its changes)", () => {
  const LOCAL = [`CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v text NOT NULL)`];
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(() => remote.drop());
  const remoteRows = async () => (await remote.sql`SELECT id, v FROM items ORDER BY id`).map((x) => ({ ...x }));

  it("is diffed at every pull, and once more after it is made LOGGED, for what came in between", async () => {
    await remote.sql
      .unsafe(
        `CREATE UNLOGGED TABLE items (id int PRIMARY KEY, v text NOT NULL);
         INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 5) g`,
      )
      .simple();
    // A superuser client: sets the feed up and drains it before each pull.
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: LOCAL, remoteSchema: "skip" });
    const local = async () => (await db.query(`SELECT id, v FROM items ORDER BY id`)).rows;
    try {
      expect((await db.pull()).tables["public.items"]!.strategy).toBe("copy");
      for (let i = 0; i < 2; i++) {
        await remote.sql
          .unsafe(
            `UPDATE items SET v = 'changed${i}' WHERE id = 1; DELETE FROM items WHERE id = ${2 + i}; INSERT INTO items VALUES (${9 + i}, 'new')`,
          )
          .simple();
        const r = await db.pull();
        expect(r.feed?.unusable).toBeUndefined();
        expect(r.tables["public.items"]).toMatchObject({
          strategy: "diff",
          reason: expect.stringContaining("UNLOGGED"),
        });
        expect(await local()).toEqual(await remoteRows());
      }
      // Changed while still UNLOGGED after the last pull, then made LOGGED: not in the feed.
      await remote.sql.unsafe(`UPDATE items SET v = 'between' WHERE id = 4; ALTER TABLE items SET LOGGED`).simple();
      const r = await db.pull();
      expect(r.tables["public.items"]).toMatchObject({ strategy: "diff", reason: expect.stringContaining("LOGGED") });
      expect(await local()).toEqual(await remoteRows());
      await remote.sql`UPDATE items SET v = 'logged' WHERE id = 5`;
      expect((await db.pull()).tables["public.items"]!.strategy).toBe("feed");
      expect(await local()).toEqual(await remoteRows());
    } finally {
      await db.close();
    }
  });

  it("a partitioned table with an UNLOGGED partition is diffed too", async () => {
    const table = `CREATE TABLE IF NOT EXISTS parted (id int PRIMARY KEY, v text NOT NULL)`;
    await remote.sql
      .unsafe(
        `CREATE TABLE parted (id int PRIMARY KEY, v text NOT NULL) PARTITION BY RANGE (id);
         CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (100);
         CREATE UNLOGGED TABLE parted_b PARTITION OF parted FOR VALUES FROM (100) TO (200);
         INSERT INTO parted VALUES (1, 'a'), (150, 'b')`,
      )
      .simple();
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: [table], remoteSchema: "skip" });
    try {
      expect((await db.pull()).tables["public.parted"]!.strategy).toBe("copy");
      await remote.sql`UPDATE parted SET v = 'changed' WHERE id = 150`;
      const r = await db.pull();
      expect(r.tables["public.parted"]).toMatchObject({
        strategy: "diff",
        reason: expect.stringContaining("UNLOGGED"),
      });
      expect((await db.query(`SELECT id, v FROM parted ORDER BY id`)).rows).toEqual([
        { id: 1, v: "a" },
        { id: 150, v: "changed" },
      ]);
    } finally {
      await db.close();
    }
  });
});

describe("feed pull: a policy on a VIRTUAL generated column (PostgreSQL 18)", () => {
  const TABLE = `CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, email text NOT NULL,
    tenant text GENERATED ALWAYS AS (split_part(email, '@', 1)) VIRTUAL, body text NOT NULL)`;
  let remote: TestDatabase;
  const suffix = randomBytes(4).toString("hex");
  const [drainerRole, tA, tB] = ["drainer", "ta", "tb"].map((r) => `om_${r}_${suffix}`) as [string, string, string];
  let urls: Record<string, string> = {};
  let drainer: FeedDrainer | undefined;
  let A: Ominipg | undefined;
  beforeAll(async () => {
    remote = await createTestDatabase();
    urls = await createLoginRoles(remote.url, [drainerRole, tA, tB], { [drainerRole]: "REPLICATION" });
    await remote.sql
      .unsafe(
        `${TABLE};
         ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
         ALTER TABLE notes REPLICA IDENTITY FULL;
         CREATE POLICY own ON notes USING (tenant = current_user);
         GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO ${tA}, ${tB};
         INSERT INTO notes (id, email, body) VALUES (1, '${tA}@x', 'one'), (2, '${tA}@x', 'two');`,
      )
      .simple();
    await setUpRemote(remote.sql as never, [tA, tB], [drainerRole]);
    drainer = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 50 });
  });
  afterAll(async () => {
    await A?.close().catch(() => {});
    await drainer?.stop();
    await remote.drop();
    await dropRoles([drainerRole, tA, tB]);
  });

  it("a row given to another tenant leaves the first tenant's local table (the table is diffed, with the reason)", async () => {
    A = await Ominipg.connect({
      syncUrl: urls[tA],
      schemaSQL: [TABLE],
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    expect((await A.pull()).tables["public.notes"]!.strategy).toBe("copy");
    const lsn = (await remote.sql<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`)[0]!.lsn;
    await remote.sql.unsafe(`UPDATE notes SET email = '${tB}@x' WHERE id = 2`);
    await expect
      .poll(
        async () => (await remote.sql`SELECT drained_upto > ${lsn}::pg_lsn AS ok FROM _ominipg_feed_state`)[0]?.ok,
        {
          timeout: 10_000,
        },
      )
      .toBe(true);
    const seen = await remote.sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL ROLE ${tA}`);
      return tx.unsafe(`SELECT id, email, body FROM notes ORDER BY id`);
    });
    expect(seen.map((x) => x.id)).toEqual([1]);
    const r = await A.pull();
    expect(r.tables["public.notes"]).toMatchObject({
      strategy: "diff",
      deleted: 1,
      reason: expect.stringContaining("virtual generated column"),
    });
    expect((await A.query(`SELECT id, email, body FROM notes ORDER BY id`)).rows).toEqual(seen.map((x) => ({ ...x })));
  });
});

describe("feed pull: a policy calling a function that names another without its schema", () => {
  // The feed's read policy runs the table's policies with search_path pg_catalog, where me() is not found.
  const LOCAL = [
    `CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS tags (id int PRIMARY KEY, name text NOT NULL)`,
  ];
  let remote: TestDatabase;
  const suffix = randomBytes(4).toString("hex");
  const [drainerRole, tA] = ["drainer", "ta"].map((r) => `om_${r}_${suffix}`) as [string, string];
  let urls: Record<string, string> = {};
  let drainer: FeedDrainer | undefined;
  let A: Ominipg | undefined;
  beforeAll(async () => {
    remote = await createTestDatabase();
    urls = await createLoginRoles(remote.url, [drainerRole, tA], { [drainerRole]: "REPLICATION" });
    await remote.sql
      .unsafe(
        `CREATE FUNCTION me() RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_user::text $$;
         CREATE FUNCTION may_see(o text) RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT o = me() $$;
         ${LOCAL.join(";\n")};
         ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
         ALTER TABLE notes REPLICA IDENTITY FULL;
         CREATE POLICY own ON notes USING (may_see(owner));
         GRANT SELECT, INSERT, UPDATE, DELETE ON notes, tags TO ${tA};
         INSERT INTO notes VALUES (1, '${tA}', 'one'), (2, 'someone else', 'two');
         INSERT INTO tags VALUES (1, 'a');`,
      )
      .simple();
    await setUpRemote(remote.sql as never, [tA], [drainerRole]);
    drainer = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 50 });
  });
  afterAll(async () => {
    await A?.close().catch(() => {});
    await drainer?.stop();
    await remote.drop();
    await dropRoles([drainerRole, tA]);
  });

  it("diffs that table, saying why, and pulls the others from the feed (every pull failed, every table)", async () => {
    A = await Ominipg.connect({
      syncUrl: urls[tA],
      schemaSQL: LOCAL,
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    expect((await A.pull()).tables["public.notes"]!.strategy).toBe("copy");
    for (let i = 0; i < 2; i++) {
      const lsn = (await remote.sql<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`)[0]!.lsn;
      await remote.sql
        .unsafe(`INSERT INTO notes VALUES (${3 + i}, '${tA}', 'new'); INSERT INTO tags VALUES (${2 + i}, 'b')`)
        .simple();
      await expect
        .poll(
          async () => (await remote.sql`SELECT drained_upto > ${lsn}::pg_lsn AS ok FROM _ominipg_feed_state`)[0]?.ok,
          {
            timeout: 10_000,
          },
        )
        .toBe(true);
      const r = await A.pull();
      expect(r.tables["public.notes"]).toMatchObject({
        strategy: "diff",
        reason: expect.stringContaining("search_path"),
      });
      expect(r.tables["public.tags"]).toMatchObject({ strategy: "feed", upserted: 1 });
      const seen = await remote.sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL ROLE ${tA}`);
        return tx.unsafe(`SELECT id, owner, body FROM notes ORDER BY id`);
      });
      expect((await A.query(`SELECT id, owner, body FROM notes ORDER BY id`)).rows).toEqual(
        seen.map((x) => ({ ...x })),
      );
    }
  });

  it('fails a pull with sync.feed "require" (the refusal comes again at every pull: not a one-time re-read)', async () => {
    const B = await Ominipg.connect({
      syncUrl: urls[tA],
      schemaSQL: LOCAL,
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 }, feed: "require" },
    });
    try {
      expect((await B.pull()).tables["public.notes"]!.strategy).toBe("copy");
      const lsn = (await remote.sql<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`)[0]!.lsn;
      await remote.sql.unsafe(`INSERT INTO notes VALUES (10, '${tA}', 'later')`).simple();
      await expect
        .poll(
          async () => (await remote.sql`SELECT drained_upto > ${lsn}::pg_lsn AS ok FROM _ominipg_feed_state`)[0]?.ok,
          { timeout: 10_000 },
        )
        .toBe(true);
      const failed = await B.pull().then(
        () => undefined,
        (err: unknown) => err as { code?: string; message: string },
      );
      expect(failed?.code).toBe("FEED_UNAVAILABLE");
      expect(failed?.message).toContain("search_path");
      expect((await B.query(`SELECT id FROM notes WHERE id = 10`)).rows).toEqual([]);
    } finally {
      await B.close();
    }
  });
});
