// The change feed with unprivileged clients: tenant roles that may not read a replication slot pull from a feed
// drained by a separate drainer role with REPLICATION (not a superuser), through the API (`Ominipg.feed()`) and
// the CLI (`ominipg feed`). Row-level security decides which rows a tenant gets, and which changes it learns of:
// a tenant reads in the feed only the changes of rows it may see, or saw before they were changed away from it
// or deleted, whatever it was granted; without REPLICA IDENTITY FULL its pulls diff. Without a drainer the feed
// goes stale and pulls diff; "require" refuses. Through PgBouncer in transaction pooling mode, a privileged
// client sets the feed up, drains it and pulls from it.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg, type FeedDrainer, type PullResult, type SyncOptions } from "../src/index.js";
import { setUpRemote } from "../src/remote/remote.js";
import {
  createLoginRoles,
  createTestDatabase,
  dropRoles,
  poolerInfo,
  tempDir,
  type TestDatabase,
} from "./harness/index.js";

const LOCAL = [`CREATE TABLE IF NOT EXISTS docs (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`];
const strategy = (r: PullResult) => r.tables["public.docs"]!.strategy;

describe("the change feed with unprivileged clients", () => {
  let remote: TestDatabase;
  const suffix = randomBytes(4).toString("hex");
  const [drainerRole, tenantA, tenantB] = ["drainer", "tenant_a", "tenant_b"].map((r) => `ominipg_${r}_${suffix}`) as [
    string,
    string,
    string,
  ];
  let urls: Record<string, string> = {};
  const clients: Ominipg[] = [];
  beforeAll(async () => {
    remote = await createTestDatabase();
    urls = await createLoginRoles(remote.url, [drainerRole, tenantA, tenantB], { [drainerRole]: "REPLICATION" });
    await remote.sql
      .unsafe(
        `CREATE TABLE docs (id int PRIMARY KEY, owner text NOT NULL DEFAULT current_user, body text NOT NULL);
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         ALTER TABLE docs REPLICA IDENTITY FULL;
         CREATE POLICY own ON docs USING (owner = current_user) WITH CHECK (owner = current_user);
         GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO ${tenantA}, ${tenantB};
         INSERT INTO docs SELECT g, CASE WHEN g % 2 = 0 THEN '${tenantA}' ELSE '${tenantB}' END, 'doc ' || g FROM generate_series(1, 100) g;`,
      )
      .simple();
    await setUpRemote(remote.sql as never, [tenantA, tenantB], [drainerRole]);
    // PostgreSQL 16+: the drainer may write the record of running transactions that moves the slot's restart point.
    const [g] = await remote.sql.unsafe<{ version: number; may: boolean | null }[]>(
      `SELECT current_setting('server_version_num')::int AS version,
              has_function_privilege($1, to_regprocedure('pg_catalog.pg_log_standby_snapshot()'), 'EXECUTE') AS may`,
      [drainerRole],
    );
    expect(g!.may).toBe(g!.version >= 160000 ? true : null);
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await remote.drop();
    await dropRoles([drainerRole, tenantA, tenantB]);
  });

  const open = async (role: string, sync: SyncOptions = {}) => {
    const db = await Ominipg.connect({
      syncUrl: urls[role],
      schemaSQL: LOCAL,
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 }, ...sync },
    });
    clients.push(db);
    return db;
  };
  /** What `role` sees of docs on the remote, and what `db` holds. */
  const seen = async (role: string) =>
    (await remote.sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL ROLE ${role}`);
      return tx.unsafe(`SELECT id, owner, body FROM docs ORDER BY id`);
    })) as unknown as { id: number }[];
  const local = async (db: Ominipg) => (await db.query(`SELECT id, owner, body FROM docs ORDER BY id`)).rows;
  /** A table of tenant A's rows (row security: each tenant its own; REPLICA IDENTITY FULL), and A's client of it. */
  const ownTable = async (name: string, columns: string, rows: string) => {
    await remote.sql.unsafe(
      `CREATE TABLE ${name} (${columns});
       ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY;
       ALTER TABLE ${name} REPLICA IDENTITY FULL;
       CREATE POLICY own ON ${name} USING (owner = current_user);
       GRANT SELECT ON ${name} TO ${tenantA};
       INSERT INTO ${name} VALUES ${rows};`,
    );
  };
  const clientOf = async (role: string, table: string) => {
    const db = await Ominipg.connect({
      syncUrl: urls[role],
      schemaSQL: [...LOCAL, `CREATE TABLE IF NOT EXISTS ${table}`],
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    clients.push(db);
    return db;
  };

  let drainer: FeedDrainer | undefined;

  it("tenants pull from a feed the API drainer (a REPLICATION role) keeps; RLS decides the rows they get", async () => {
    drainer = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    const A = await open(tenantA, { feed: { staleMs: 2_000 } });
    const B = await open(tenantB);
    expect(strategy(await A.pull())).toBe("copy");
    expect(strategy(await B.pull())).toBe("copy");
    expect(await local(A)).toEqual(await seen(tenantA));
    // Changes by both tenants and the administrator, A's row given to B, a row of B's deleted.
    await remote.sql.unsafe(`UPDATE docs SET body = 'changed' WHERE id IN (2, 3, 4, 5)`);
    await remote.sql.unsafe(`UPDATE docs SET owner = '${tenantB}' WHERE id = 6`);
    await remote.sql.unsafe(`DELETE FROM docs WHERE id = 7`);
    await B.query(`INSERT INTO docs VALUES (1001, $1, 'from B')`, [tenantB]);
    await B.sync();
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE key ->> 'id' = '1001'`).length, {
        timeout: 10_000,
      })
      .toBe(1);
    const r = await A.pull();
    expect(strategy(r)).toBe("feed");
    expect(r.tables["public.docs"]).toMatchObject({ upserted: 2, deleted: 1 }); // 2 and 4 changed; 6 gone from sight
    expect(await local(A)).toEqual(await seen(tenantA));
    expect((await local(A)).some((row) => row.owner === tenantB)).toBe(false);
    expect(strategy(await B.pull())).toBe("feed");
    expect(await local(B)).toEqual(await seen(tenantB));

    // What a tenant reads of the feed: the changes of rows it may see (2, 4; 6 and 1001 are B's now), or saw
    // before they changed away from it or were deleted (6 for A, 7 for B); not the images they are judged on
    // (as granted, a column privilege), or, with every privilege granted, images of its own rows only. It writes
    // nothing (forced row-level security: drainers only).
    await remote.sql.unsafe(`GRANT ALL ON _ominipg_feed, _ominipg_feed_state TO ${tenantB}`);
    for (const [role, granted, keys] of [
      [tenantA, false, [2, 4, 6]],
      [tenantB, true, [3, 5, 6, 7, 1001]],
    ] as const) {
      const as = postgres(urls[role]!, { max: 1, onnotice: () => {} });
      try {
        const rows = await as<{ id: string }[]>`SELECT DISTINCT key ->> 'id' AS id FROM _ominipg_feed`;
        expect(rows.map((r) => Number(r.id)).sort((x, y) => x - y)).toEqual(keys);
        const images = as<
          { owner: string }[]
        >`SELECT image ->> 'owner' AS owner FROM _ominipg_feed WHERE image IS NOT NULL`;
        if (!granted) await expect(images).rejects.toThrow(/permission denied/);
        else expect(new Set((await images).map((i) => i.owner))).toEqual(new Set([role]));
        const refused = granted ? /row-level security|cannot be truncated/ : /permission denied/;
        if (granted) {
          expect((await as`DELETE FROM _ominipg_feed`).count).toBe(0);
          expect((await as`UPDATE _ominipg_feed_state SET drained_at = now()`).count).toBe(0);
        } else await expect(as`DELETE FROM _ominipg_feed`).rejects.toThrow(refused);
        await expect(as`TRUNCATE _ominipg_feed`).rejects.toThrow(refused);
        await expect(as`INSERT INTO _ominipg_feed VALUES ('0/1', 'public', 'docs', '{}')`).rejects.toThrow(refused);
      } finally {
        await as.end();
      }
    }
    expect((await remote.sql`SELECT count(*)::int AS n FROM _ominipg_feed`)[0]!.n).toBeGreaterThan(0);
  });

  it("the feed's images hold no state a tenant never could see: a row's state inside the transaction that made it, a partial row", async () => {
    // B granted everything on the feed, so that it reads images.
    const own = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    await remote.sql.unsafe(
      `GRANT ALL ON _ominipg_feed TO ${tenantB};
       CREATE TABLE drafts (id int PRIMARY KEY, owner text NOT NULL, private boolean);
       ALTER TABLE drafts ENABLE ROW LEVEL SECURITY;
       CREATE POLICY mine_or_public ON drafts FOR SELECT USING (owner = current_user OR NOT coalesce(private, false));
       GRANT SELECT ON drafts TO ${tenantB};`,
    );
    // A row made and given away (docs: FULL identity) in one transaction: its state before was never committed.
    await remote.sql.begin(async (tx) => {
      await tx.unsafe(`INSERT INTO docs VALUES (3001, '${tenantB}', 'draft')`);
      await tx.unsafe(`UPDATE docs SET owner = '${tenantA}', body = 'A''s now' WHERE id = 3001`);
    });
    // A private row of A's deleted from a table of the default identity: its image would be the key alone, and
    // the policy true on NULLs.
    await remote.sql.unsafe(`INSERT INTO drafts VALUES (1, '${tenantA}', true)`);
    await remote.sql.unsafe(`DELETE FROM drafts WHERE id = 1`);
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'drafts'`).length, {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(2); // both transactions drained
    const as = postgres(urls[tenantB]!, { max: 1, onnotice: () => {} });
    try {
      const keys = await as<{ t: string; id: string }[]>`SELECT table_name AS t, key ->> 'id' AS id FROM _ominipg_feed
        WHERE (table_name, key ->> 'id') IN (('docs', '3001'), ('drafts', '1'))`;
      expect(keys).toEqual([]);
    } finally {
      await as.end();
    }
    const [images] = await remote.sql`SELECT count(*) FILTER (WHERE image IS NOT NULL)::int AS n FROM _ominipg_feed
      WHERE (table_name, key ->> 'id') IN (('docs', '3001'), ('drafts', '1'))`;
    expect(images).toEqual({ n: 0 }); // none recorded at all
    await own.stop();
  });

  it("a column's type changed on the remote: images that no longer read as the table's row do not stop a tenant's pulls", async () => {
    const own = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    await ownTable(
      "tasks",
      "id int PRIMARY KEY, owner text NOT NULL, prio text",
      `(1, '${tenantA}', 'high'), (2, '${tenantA}', 'low')`,
    );
    const db = await clientOf(tenantA, "tasks (id int PRIMARY KEY, owner text NOT NULL)");
    expect((await db.pull()).tables["public.tasks"]!.strategy).toBe("copy");
    const drained = async (n: number) =>
      expect
        .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'tasks'`).length, {
          timeout: 10_000,
        })
        .toBe(n);
    await remote.sql.unsafe(`UPDATE tasks SET owner = owner`); // images with prio 'high', 'low'
    await drained(6); // the insert's 2 keys, the update's 2 keys and 2 images
    await remote.sql.unsafe(`ALTER TABLE tasks ALTER COLUMN prio TYPE int USING 1; DELETE FROM tasks WHERE id = 2`);
    await drained(8);
    const r = await db.pull();
    expect(r.tables["public.tasks"]).toMatchObject({ strategy: "feed", deleted: 1 });
    expect((await db.query(`SELECT id FROM tasks`)).rows).toEqual([{ id: 1 }]);
    await own.stop();
  });

  it("a column of a NOT NULL domain: a tenant reads the table's inserts from the feed (a key was read as a whole row)", async () => {
    const own = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    await remote.sql.unsafe(`CREATE DOMAIN label AS text NOT NULL`);
    await ownTable("labelled", "id int PRIMARY KEY, owner text NOT NULL, name label", `(1, '${tenantA}', 'one')`);
    const db = await clientOf(tenantA, "labelled (id int PRIMARY KEY, owner text NOT NULL, name text NOT NULL)");
    expect((await db.pull()).tables["public.labelled"]!.strategy).toBe("copy");
    await remote.sql.unsafe(`INSERT INTO labelled VALUES (2, '${tenantA}', 'two'), (3, '${tenantB}', 'three')`);
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'labelled'`).length, {
        timeout: 10_000,
      })
      .toBe(3);
    const r = await db.pull();
    expect(r.tables["public.labelled"]).toMatchObject({ strategy: "feed", upserted: 1 });
    expect((await db.query(`SELECT id, name FROM labelled ORDER BY id`)).rows).toEqual([
      { id: 1, name: "one" },
      { id: 2, name: "two" },
    ]);
    await own.stop();
  });

  it("a key of a type in a schema the tenant may not use: its keys read as a row of the table (a type it cannot name)", async () => {
    const own = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    await remote.sql.unsafe(`CREATE SCHEMA priv; CREATE DOMAIN priv.code AS text`);
    await ownTable("coded", "id priv.code PRIMARY KEY, owner text NOT NULL", `('a', '${tenantA}')`);
    const db = await clientOf(tenantA, "coded (id text PRIMARY KEY, owner text NOT NULL)");
    expect((await db.pull()).tables["public.coded"]!.strategy).toBe("copy"); // reading the table needs no USAGE
    await remote.sql.unsafe(`INSERT INTO coded VALUES ('b', '${tenantA}'), ('c', '${tenantB}')`);
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'coded'`).length, {
        timeout: 10_000,
      })
      .toBe(3);
    expect((await db.pull()).tables["public.coded"]).toMatchObject({ strategy: "feed", upserted: 1 });
    expect((await db.query(`SELECT id FROM coded ORDER BY id`)).rows).toEqual([{ id: "a" }, { id: "b" }]);
    await own.stop();
  });

  it("a key column's type narrowed on the remote: feed keys that no longer read as the key do not fail a tenant's reads of the feed", async () => {
    const own = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    await ownTable("short_codes", "code varchar(10) PRIMARY KEY, owner text NOT NULL", `('abc', '${tenantA}')`);
    await remote.sql.unsafe(`INSERT INTO short_codes VALUES ('abcdefghij', '${tenantA}')`);
    await remote.sql.unsafe(`DELETE FROM short_codes WHERE code = 'abcdefghij'`);
    await remote.sql.unsafe(`ALTER TABLE short_codes ALTER COLUMN code TYPE varchar(5)`);
    await remote.sql.unsafe(`INSERT INTO short_codes VALUES ('xyz', '${tenantA}')`);
    // A domain's CHECK added since (23514, not a data exception) does the same.
    await remote.sql.unsafe(`CREATE DOMAIN code_d AS text`);
    await ownTable("checked_codes", "code code_d PRIMARY KEY, owner text NOT NULL", `('abc', '${tenantA}')`);
    await remote.sql.unsafe(`INSERT INTO checked_codes VALUES ('abcdefghij', '${tenantA}')`);
    await remote.sql.unsafe(`DELETE FROM checked_codes WHERE code = 'abcdefghij'`);
    await remote.sql.unsafe(`ALTER DOMAIN code_d ADD CONSTRAINT short CHECK (length(VALUE) <= 5)`);
    await remote.sql.unsafe(`INSERT INTO checked_codes VALUES ('xyz', '${tenantA}')`);
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE key ->> 'code' = 'xyz'`).length, {
        timeout: 10_000,
      })
      .toBe(2);
    await own.stop();
    // The feed's read policy judged the long key as a row of the table: "value too long" failed every read.
    const keys = await remote.sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL ROLE ${tenantA}`);
      const sql = `SELECT table_name AS t, key ->> 'code' AS code FROM _ominipg_feed WHERE table_name LIKE '%codes'`;
      return [...(await tx.unsafe(sql))].map((k) => `${k.t} ${k.code}`);
    });
    expect(keys.sort()).toEqual(["checked_codes abc", "checked_codes xyz", "short_codes abc", "short_codes xyz"]);
  });

  it("the feed shows a table's keys only to a role that may read the key's columns", async () => {
    const own = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    await remote.sql.unsafe(
      `CREATE TABLE people (ssn text PRIMARY KEY, name text NOT NULL);
       GRANT SELECT (name) ON people TO ${tenantA};
       GRANT SELECT ON people TO ${tenantB};
       INSERT INTO people VALUES ('123-45-6789', 'alice');`,
    );
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'people'`).length, {
        timeout: 10_000,
      })
      .toBe(1);
    const feedAs = (role: string) =>
      remote.sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL ROLE ${role}`);
        return [...(await tx.unsafe(`SELECT key FROM _ominipg_feed WHERE table_name = 'people'`))];
      });
    await expect(feedAs(tenantA)).resolves.toEqual([]);
    await expect(feedAs(tenantB)).resolves.toEqual([{ key: { ssn: "123-45-6789" } }]);
    await own.stop();
  });

  it("a delete the remote does not carry out (a DELETE policy narrower than SELECT): the next feed pull brings the row back; a soft delete stays deleted", async () => {
    const own = await Ominipg.feed(urls[drainerRole]!, { intervalMs: 100 });
    await remote.sql.unsafe(
      `CREATE TABLE board (id int PRIMARY KEY, owner text NOT NULL, gone boolean NOT NULL DEFAULT false);
       ALTER TABLE board ENABLE ROW LEVEL SECURITY;
       ALTER TABLE board REPLICA IDENTITY FULL;
       CREATE POLICY sel ON board FOR SELECT USING (NOT gone);
       CREATE POLICY upd ON board FOR UPDATE USING (owner = current_user);
       CREATE POLICY del ON board FOR DELETE USING (owner = current_user);
       CREATE FUNCTION soft_delete() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
         BEGIN UPDATE board SET gone = true WHERE id = OLD.id; RETURN NULL; END $$;
       CREATE TRIGGER soft BEFORE DELETE ON board FOR EACH ROW WHEN (OLD.id = 3 AND pg_trigger_depth() = 0)
         EXECUTE FUNCTION soft_delete();
       GRANT SELECT, UPDATE, DELETE ON board TO ${tenantA};
       INSERT INTO board VALUES (1, '${tenantB}'), (2, '${tenantA}'), (3, '${tenantA}'), (4, '${tenantA}');`,
    );
    const db = await clientOf(
      tenantA,
      "board (id int PRIMARY KEY, owner text NOT NULL, gone boolean NOT NULL DEFAULT false)",
    );
    expect((await db.pull()).tables["public.board"]!.strategy).toBe("copy");
    // 1: B's, which A sees and may not delete (PostgreSQL deletes nothing, without an error); 2: deleted; 3: soft deleted.
    await db.query(`DELETE FROM board WHERE id IN (1, 2, 3)`);
    expect(await db.sync()).toMatchObject({ pushed: 3, rejected: 0 });
    expect(await remote.sql`SELECT id, gone FROM board ORDER BY id`).toEqual([
      { id: 1, gone: false },
      { id: 3, gone: true },
      { id: 4, gone: false },
    ]);
    await expect
      .poll(
        async () =>
          (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'board' AND key ->> 'id' = '3'`).length,
        {
          timeout: 10_000,
        },
      )
      .toBeGreaterThan(0);
    const r = await db.pull();
    expect(r.tables["public.board"]!.strategy).toBe("feed");
    expect((await db.query(`SELECT id FROM board ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 4 }]);
    await own.stop();
  });

  it("a role granted SELECT on some columns only (the synced ones) pulls from the feed too", async () => {
    await remote.sql.unsafe(
      `CREATE TABLE notes (id int PRIMARY KEY, body text, internal text);
       INSERT INTO notes VALUES (1, 'one', 'x'), (2, 'two', 'y');
       GRANT SELECT (id, body) ON notes TO ${tenantA};`,
    );
    const db = await Ominipg.connect({
      syncUrl: urls[tenantA],
      schemaSQL: [...LOCAL, `CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text)`],
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    clients.push(db);
    expect((await db.pull()).tables["public.notes"]!.strategy).toBe("copy");
    await remote.sql.unsafe(`UPDATE notes SET body = 'ONE' WHERE id = 1; DELETE FROM notes WHERE id = 2;
      INSERT INTO notes VALUES (3, 'three', 'z');`);
    await expect
      .poll(
        async () =>
          (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'notes' AND key ->> 'id' = '3'`).length,
        { timeout: 10_000 },
      )
      .toBe(1);
    const r = await db.pull();
    expect(r.tables["public.notes"]).toMatchObject({ strategy: "feed", upserted: 2, deleted: 1 });
    expect((await db.query(`SELECT id, body FROM notes ORDER BY id`)).rows).toEqual([
      { id: 1, body: "ONE" },
      { id: 3, body: "three" },
    ]);
  });

  it("random remote writes, rows given from tenant to tenant: a tenant's feed pulls keep it equal to what it may see", async () => {
    const A = await open(tenantA);
    expect(strategy(await A.pull())).toBe("copy");
    let seed = 16;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) as number;
    const id = () => 1 + Math.floor(rnd() * 150);
    const owner = () => (rnd() < 0.5 ? tenantA : tenantB);
    for (let round = 1; round <= 6; round++) {
      for (let i = 0; i < 8; i++) {
        const ops = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => {
          const x = rnd();
          if (x < 0.3)
            return `UPDATE docs SET owner = CASE owner WHEN '${tenantA}' THEN '${tenantB}' ELSE '${tenantA}' END WHERE id = ${id()}`;
          if (x < 0.5) return `UPDATE docs SET body = md5(random()::text) WHERE id BETWEEN ${id()} AND ${id()}`;
          if (x < 0.7) return `INSERT INTO docs VALUES (${id()}, '${owner()}', 'new') ON CONFLICT (id) DO NOTHING`;
          if (x < 0.85) return `DELETE FROM docs WHERE id = ${id()}`;
          const from = id();
          return `UPDATE docs SET id = ${from + 1000} WHERE id = ${from} AND NOT EXISTS (SELECT 1 FROM docs WHERE id = ${from + 1000})`;
        });
        await remote.sql.unsafe(ops.join("; ")).simple();
      }
      // A marker row of A's, written last: once A has it, the feed holds everything before it.
      await remote.sql.unsafe(
        `INSERT INTO docs VALUES (5000, '${tenantA}', '${round}') ON CONFLICT (id) DO UPDATE SET body = '${round}', owner = '${tenantA}'`,
      );
      await expect
        .poll(
          async () => {
            await A.pull();
            return (await A.query<{ body: string }>(`SELECT body FROM docs WHERE id = 5000`)).rows[0]?.body;
          },
          { timeout: 20_000 },
        )
        .toBe(String(round));
      const r = await A.pull();
      expect(strategy(r)).toBe("feed");
      expect(await local(A)).toEqual(await seen(tenantA));
    }
  });

  it("without REPLICA IDENTITY FULL a tenant's pulls diff, saying why; 'require' refuses", async () => {
    // Without the images of rows before a change, the feed cannot tell a tenant which rows left its sight.
    await remote.sql.unsafe(`ALTER TABLE docs REPLICA IDENTITY DEFAULT`);
    const A = await open(tenantA); // staleMs at its default: a drainer slowed down by a busy machine still counts
    try {
      expect(strategy(await A.pull())).toBe("copy");
      await remote.sql.unsafe(`UPDATE docs SET owner = '${tenantB}' WHERE id = 8`);
      expect((await A.pull()).tables["public.docs"]).toMatchObject({
        strategy: "diff",
        deleted: 1,
        reason: expect.stringMatching(/replica identity is not FULL.*REPLICA IDENTITY FULL/),
      });
      expect(await local(A)).toEqual(await seen(tenantA));
      const strict = await open(tenantA, { feed: { mode: "require" } });
      expect(strategy(await strict.pull())).toBe("copy");
      await expect(strict.pull()).rejects.toMatchObject({
        code: "FEED_UNAVAILABLE",
        message: expect.stringMatching(/REPLICA IDENTITY FULL/),
      });
    } finally {
      await remote.sql.unsafe(`ALTER TABLE docs REPLICA IDENTITY FULL`);
    }
    // Changes logged meanwhile have no images: a diff once, then the feed.
    expect((await A.pull()).tables["public.docs"]!.reason).toMatch(/what decides which rows this role sees/);
    expect(strategy(await A.pull())).toBe("feed");
  });

  it("a policy that reads another table (team membership): a tenant's pulls diff, saying why, and follow its moves", async () => {
    await remote.sql
      .unsafe(
        `CREATE TABLE members (team text, member text);
         CREATE TABLE team_docs (id int PRIMARY KEY, team text NOT NULL, body text NOT NULL);
         ALTER TABLE team_docs ENABLE ROW LEVEL SECURITY;
         ALTER TABLE team_docs REPLICA IDENTITY FULL;
         CREATE POLICY team ON team_docs USING (team IN (SELECT team FROM members WHERE member = current_user));
         GRANT SELECT ON members, team_docs TO ${tenantA};
         INSERT INTO members VALUES ('red', '${tenantA}');
         INSERT INTO team_docs VALUES (1, 'red', 'r1'), (2, 'green', 'g2');`,
      )
      .simple();
    const db = await Ominipg.connect({
      syncUrl: urls[tenantA],
      schemaSQL: [
        ...LOCAL,
        `CREATE TABLE IF NOT EXISTS team_docs (id int PRIMARY KEY, team text NOT NULL, body text NOT NULL)`,
      ],
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    clients.push(db);
    const teamDocs = async () => (await db.query(`SELECT id, team FROM team_docs ORDER BY id`)).rows;
    expect((await db.pull()).tables["public.team_docs"]!.strategy).toBe("copy");
    expect(await teamDocs()).toEqual([{ id: 1, team: "red" }]);
    await remote.sql.unsafe(`UPDATE members SET team = 'green'`); // no change of a team_docs row
    expect((await db.pull()).tables["public.team_docs"]).toMatchObject({
      strategy: "diff",
      reason: expect.stringMatching(/policy that reads another table/),
    });
    expect(await teamDocs()).toEqual([{ id: 2, team: "green" }]);
  });

  it("what decides the rows a tenant sees, or the key's type, changed with no row change: its next pull diffs once", async () => {
    // No change of a row the feed could list: a policy narrowed; row security enabled; REPLICA IDENTITY FULL set
    // after a row was given away while the change was logged without its image (A never reads it in the feed);
    // a key column's type narrowed after a longer key was deleted (the feed's key no longer reads as the type).
    await remote.sql
      .unsafe(
        `CREATE TABLE narrowed (id int PRIMARY KEY, owner text NOT NULL);
         ALTER TABLE narrowed ENABLE ROW LEVEL SECURITY;
         ALTER TABLE narrowed REPLICA IDENTITY FULL;
         CREATE POLICY p ON narrowed FOR SELECT USING (true);
         CREATE TABLE opened (id int PRIMARY KEY, owner text NOT NULL);
         ALTER TABLE opened REPLICA IDENTITY FULL;
         CREATE POLICY own ON opened USING (owner = current_user);
         CREATE TABLE given (id int PRIMARY KEY, owner text NOT NULL);
         ALTER TABLE given ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON given USING (owner = current_user);
         CREATE TABLE codes (id varchar(10) PRIMARY KEY, owner text NOT NULL);
         GRANT SELECT ON narrowed, opened, given, codes TO ${tenantA};
         INSERT INTO narrowed VALUES (1, '${tenantA}'), (2, '${tenantB}');
         INSERT INTO opened VALUES (1, '${tenantA}'), (2, '${tenantB}');
         INSERT INTO given VALUES (1, '${tenantA}'), (2, '${tenantA}');
         INSERT INTO codes VALUES ('abcdefgh', '${tenantA}'), ('abc', '${tenantA}');`,
      )
      .simple();
    const names = ["narrowed", "opened", "given", "codes"];
    const db = await Ominipg.connect({
      syncUrl: urls[tenantA],
      schemaSQL: [
        ...LOCAL,
        ...names.map((n) => `CREATE TABLE IF NOT EXISTS ${n} (id varchar(10) PRIMARY KEY, owner text NOT NULL)`),
      ],
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    clients.push(db);
    const pulled = (r: PullResult) => names.map((n) => r.tables[`public.${n}`]!);
    const equal = async () => {
      for (const n of names) {
        const mine = await db.query<{ id: string }>(`SELECT id FROM ${n} ORDER BY id`);
        const theirs = await remote.sql.begin(async (tx) => {
          await tx.unsafe(`SET LOCAL ROLE ${tenantA}`);
          return tx.unsafe<{ id: string }[]>(`SELECT id::text FROM ${n} ORDER BY id`);
        });
        expect(
          mine.rows.map((r) => r.id),
          n,
        ).toEqual(theirs.map((r) => r.id));
      }
    };
    expect(pulled(await db.pull()).map((t) => t.strategy)).toEqual(["copy", "copy", "copy", "copy"]);
    await remote.sql
      .unsafe(
        `UPDATE given SET owner = '${tenantB}' WHERE id = 1;
         DELETE FROM codes WHERE id = 'abcdefgh';
         ALTER POLICY p ON narrowed USING (owner = current_user);
         ALTER TABLE opened ENABLE ROW LEVEL SECURITY;
         ALTER TABLE given REPLICA IDENTITY FULL;
         ALTER TABLE codes ALTER COLUMN id TYPE varchar(5);
         INSERT INTO docs VALUES (1100, '${tenantA}', 'drained after the rest');`,
      )
      .simple();
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE key ->> 'id' = '1100'`).length, {
        timeout: 10_000,
      })
      .toBe(1);
    const why = /what decides which rows this role sees .*its key's types or its primary key changed/;
    expect(pulled(await db.pull())).toEqual(
      names.map(() => expect.objectContaining({ strategy: "diff", reason: expect.stringMatching(why) })),
    );
    await equal();
    // Once: the next pulls use the feed again.
    expect(pulled(await db.pull()).map((t) => t.strategy)).toEqual(["feed", "feed", "feed", "feed"]);
    await equal();
  });

  it("a local database opened again under another identity: its next pull diffs once, to what that identity sees", async () => {
    // The cursors were read under A: from them, B would only learn of later changes, and keep A's rows. Claims
    // with another sub are another identity too (a policy may read them).
    const dir = join(tempDir("ominipg-feed-identity-"), "db");
    const reopen = (role: string, remoteClaims?: Record<string, unknown>) =>
      Ominipg.connect({
        url: dir,
        syncUrl: urls[role],
        schemaSQL: LOCAL,
        remoteSchema: "skip",
        sync: { retry: { attempts: 1 } },
        ...(remoteClaims ? { remoteClaims } : {}),
      });
    const asA = await reopen(tenantA);
    expect(strategy(await asA.pull())).toBe("copy");
    expect(await local(asA)).toEqual(await seen(tenantA));
    await asA.close();
    for (const claims of [undefined, { sub: "b2" }]) {
      const asB = await reopen(tenantB, claims);
      try {
        expect((await asB.pull()).tables["public.docs"]).toMatchObject({
          strategy: "diff",
          reason: expect.stringMatching(/another remote identity/),
        });
        expect(await local(asB)).toEqual(await seen(tenantB));
        expect(strategy(await asB.pull())).toBe("feed");
      } finally {
        await asB.close();
      }
    }
  });

  it("a table partitioned on the remote, with row-level security: a tenant's pulls diff, saying why", async () => {
    // The drainer keeps rows' images per partition (for a partition with row security of its own): a tenant
    // cannot be told which rows of the partitioned table left its sight.
    await remote.sql
      .unsafe(
        `CREATE TABLE pdocs (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL) PARTITION BY RANGE (id);
         CREATE TABLE pdocs1 PARTITION OF pdocs FOR VALUES FROM (0) TO (1000);
         ALTER TABLE pdocs ENABLE ROW LEVEL SECURITY;
         ALTER TABLE pdocs REPLICA IDENTITY FULL;
         CREATE POLICY own ON pdocs USING (owner = current_user);
         GRANT SELECT ON pdocs, pdocs1 TO ${tenantA};
         INSERT INTO pdocs VALUES (1, '${tenantA}', 'a'), (2, '${tenantA}', 'b'), (3, '${tenantB}', 'c');`,
      )
      .simple();
    const A = await Ominipg.connect({
      syncUrl: urls[tenantA],
      schemaSQL: [`CREATE TABLE IF NOT EXISTS pdocs (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`],
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    clients.push(A);
    expect((await A.pull()).tables["public.pdocs"]).toMatchObject({ strategy: "copy", upserted: 2 });
    await remote.sql.unsafe(`UPDATE pdocs SET owner = '${tenantB}' WHERE id = 2`);
    expect((await A.pull()).tables["public.pdocs"]).toMatchObject({
      strategy: "diff",
      deleted: 1,
      reason: expect.stringMatching(/row-level security applies to this role and the table is partitioned/),
    });
    expect((await A.query(`SELECT id FROM pdocs ORDER BY id`)).rows).toEqual([{ id: 1 }]);
  });

  it("a partitioned table granted on its root alone diffs, saying why; granted on its partitions too, it pulls from the feed", async () => {
    // The drainer lists a change under the partition that holds the row, and the feed shows a role only the rows
    // listed under tables it may read by name.
    await remote.sql
      .unsafe(
        `CREATE TABLE parts (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
         CREATE SCHEMA hidden; CREATE TABLE hidden.parts_lo PARTITION OF parts FOR VALUES FROM (0) TO (100);
         CREATE TABLE parts_hi PARTITION OF parts FOR VALUES FROM (100) TO (200);
         GRANT SELECT ON parts TO ${tenantA};
         INSERT INTO parts VALUES (1, 'a'), (150, 'b');`,
      )
      .simple();
    const A = await Ominipg.connect({
      syncUrl: urls[tenantA],
      schemaSQL: [`CREATE TABLE IF NOT EXISTS parts (id int PRIMARY KEY, v text)`],
      remoteSchema: "skip",
      sync: { retry: { attempts: 1 } },
    });
    clients.push(A);
    const pull = async () => (await A.pull()).tables["public.parts"];
    const rows = async () => (await A.query(`SELECT id, v FROM parts ORDER BY id`)).rows;
    expect(await pull()).toMatchObject({ strategy: "copy", upserted: 2 });
    await remote.sql.unsafe(`UPDATE parts SET v = v || '!'`);
    expect(await pull()).toMatchObject({
      strategy: "diff",
      upserted: 2,
      reason: expect.stringMatching(/may not read every partition/),
    });
    await remote.sql.unsafe(
      `GRANT USAGE ON SCHEMA hidden TO ${tenantA}; GRANT SELECT ON hidden.parts_lo, parts_hi TO ${tenantA}`,
    );
    const at = (await remote.sql<{ at: string }[]>`SELECT pg_current_wal_lsn()::text AS at`)[0]!.at;
    await remote.sql.unsafe(`UPDATE parts SET v = v || '?'`);
    await expect // drained by the file's drainer (its role may)
      .poll(
        async () =>
          (
            await remote.sql`SELECT count(*)::int AS n FROM _ominipg_feed WHERE table_name LIKE 'parts_%' AND lsn > ${at}::pg_lsn`
          )[0]!.n,
      )
      .toBe(2);
    expect(await pull()).toMatchObject({ strategy: "feed", upserted: 2 });
    expect(await rows()).toEqual([
      { id: 1, v: "a!?" },
      { id: 150, v: "b!?" },
    ]);
  });

  it("without a drainer the feed goes stale: pulls diff (and say why); 'require' refuses", async () => {
    await drainer!.stop();
    drainer = undefined;
    const A = clients[0]!;
    await sleep(2_500);
    await remote.sql.unsafe(`UPDATE docs SET body = 'stale' WHERE id = 10`);
    const r = await A.pull();
    expect(strategy(r)).toBe("diff");
    expect(r.feed?.unusable).toMatch(/no drainer has run/);
    expect(await local(A)).toEqual(await seen(tenantA));
    const strict = await open(tenantA, { feed: { mode: "require", staleMs: 2_000 } });
    await expect(strict.pull()).rejects.toMatchObject({ code: "FEED_UNAVAILABLE" });
  });

  it("`ominipg feed` drains for them until SIGTERM", async () => {
    const cli = spawn(process.execPath, ["dist/cli/main.js", "feed", "--interval", "100"], {
      env: { ...process.env, OMINIPG_REMOTE_URL: urls[drainerRole] },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    cli.stdout.on("data", (d: Buffer) => (out += d.toString()));
    cli.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => cli.once("exit", resolve));
    try {
      await expect.poll(() => out, { timeout: 20_000 }).toMatch(/draining the change feed/);
      expect(out).not.toContain(new URL(urls[drainerRole]!).password);
      // staleMs at its default: clients[0]'s 2 s (for the test before) is shorter than the drainer's 5 s heartbeat,
      // so on a busy machine its pulls could find the feed stale between two of the drainer's writes.
      const A = await open(tenantA);
      expect(strategy(await A.pull())).toBe("copy");
      await remote.sql.unsafe(`UPDATE docs SET body = 'by cli' WHERE id = 12`);
      await expect
        .poll(async () => (await A.pull()).tables["public.docs"], { timeout: 10_000 })
        .toMatchObject({ strategy: "feed", upserted: 1 });
      expect(await local(A)).toEqual(await seen(tenantA));
    } finally {
      cli.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(/stopped/);

    // --drop, by the REPLICATION role: the slot goes (the server keeps no WAL for it), and pulls diff.
    const drop = spawn(process.execPath, ["dist/cli/main.js", "feed", "--drop"], {
      env: { ...process.env, OMINIPG_REMOTE_URL: urls[drainerRole] },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let dropped = "";
    drop.stdout.on("data", (d: Buffer) => (dropped += d.toString()));
    drop.stderr.on("data", (d: Buffer) => (dropped += d.toString()));
    expect([await new Promise((resolve) => drop.once("exit", resolve)), dropped]).toEqual([
      0,
      expect.stringMatching(/dropped the change feed's slot/),
    ]);
    expect(await remote.sql`SELECT 1 FROM pg_replication_slots WHERE database = current_database()`).toHaveLength(0);
    const r = await clients[0]!.pull();
    expect(strategy(r)).toBe("diff");
    expect(r.feed?.unusable).toMatch(/no change feed is set up/);
  });

  it("rows with NULL columns (which the logged old row leaves out) deleted or given away: the tenant is told", async () => {
    const own = await Ominipg.feed(remote.url, { intervalMs: 100 });
    const columns = "id int PRIMARY KEY, owner text NOT NULL, body text";
    await ownTable("notes2", columns, `(1, '${tenantA}', NULL), (2, '${tenantA}', NULL), (3, '${tenantA}', 'kept')`);
    const db = await clientOf(tenantA, `notes2 (${columns})`);
    expect((await db.pull()).tables["public.notes2"]!.strategy).toBe("copy");
    await remote.sql.unsafe(`DELETE FROM notes2 WHERE id = 1; UPDATE notes2 SET owner = '${tenantB}' WHERE id = 2`);
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'notes2'`).length, {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(4);
    expect((await db.pull()).tables["public.notes2"]!.strategy).toBe("feed");
    expect((await db.query(`SELECT id FROM notes2`)).rows).toEqual([{ id: 3 }]);
    await own.stop();
  });

  it("a NOT NULL column added while changes wait to be drained: their rows, logged whole without it, still tell the tenant", async () => {
    await (await Ominipg.feed(remote.url)).stop(); // set up; no drainer runs until after the ALTER
    const columns = "id int PRIMARY KEY, owner text NOT NULL";
    await ownTable("late", columns, `(1, '${tenantA}'), (2, '${tenantA}')`);
    const db = await clientOf(tenantA, `late (${columns})`);
    expect((await db.pull()).tables["public.late"]!.strategy).toBe("copy");
    await remote.sql.unsafe(
      `DELETE FROM late WHERE id = 1; ALTER TABLE late ADD COLUMN extra text NOT NULL DEFAULT 'x'`,
    );
    const own = await Ominipg.feed(remote.url, { intervalMs: 100 });
    await expect
      .poll(
        async () =>
          (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'late' AND image IS NOT NULL`).length,
        {
          timeout: 10_000,
        },
      )
      .toBe(1);
    await own.stop();
    expect((await db.pull()).tables["public.late"]!.strategy).toBe("feed");
    expect((await db.query(`SELECT id FROM late`)).rows).toEqual([{ id: 2 }]);
  });

  it("a change logged with the key alone, drained after the table's identity became FULL: no image is taken from it", async () => {
    await remote.sql.unsafe(
      `CREATE TABLE memos (id int PRIMARY KEY, owner text NOT NULL, private boolean);
       ALTER TABLE memos ENABLE ROW LEVEL SECURITY;
       CREATE POLICY mine_or_public ON memos FOR SELECT USING (owner = current_user OR NOT coalesce(private, false));
       GRANT SELECT ON memos TO ${tenantB};
       GRANT ALL ON _ominipg_feed TO ${tenantB};`,
    );
    await (await Ominipg.feed(remote.url)).stop(); // set up; no drainer runs until after the ALTER
    await remote.sql`INSERT INTO memos VALUES (1, ${tenantA}, true)`;
    await remote.sql`DELETE FROM memos WHERE id = 1`; // logged with the key alone (identity DEFAULT)
    await remote.sql`ALTER TABLE memos REPLICA IDENTITY FULL`;
    const own = await Ominipg.feed(remote.url, { intervalMs: 100 });
    await expect
      .poll(async () => (await remote.sql`SELECT 1 FROM _ominipg_feed WHERE table_name = 'memos'`).length, {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(2);
    await own.stop();
    const as = postgres(urls[tenantB]!, { max: 1, onnotice: () => {} });
    try {
      expect(await as`SELECT key FROM _ominipg_feed WHERE table_name = 'memos'`).toEqual([]);
    } finally {
      await as.end();
    }
  });

  it("feed tables of an older version set up again: readers keep the columns they read, not the images, which go; readers diff once", async () => {
    await (await Ominipg.feed(remote.url)).stop(); // set up (as this file's earlier tests leave it)
    await remote.sql.unsafe(
      `COMMENT ON TABLE _ominipg_feed IS 'ominipg feed v3';
       GRANT SELECT ON _ominipg_feed TO ${tenantA};
       INSERT INTO _ominipg_feed (lsn, schema_name, table_name, key, image)
         VALUES (pg_current_wal_lsn(), 'public', 'docs', '{"id": "2"}', '{"id": "2", "owner": "x", "body": "old image"}')`,
    );
    const [before] = await remote.sql`SELECT epoch::text AS epoch FROM _ominipg_feed_state`;
    await (await Ominipg.feed(remote.url)).stop(); // its owner: sets the tables up again
    const [after] =
      await remote.sql`SELECT epoch::text AS epoch, obj_description('_ominipg_feed'::regclass, 'pg_class') AS v FROM _ominipg_feed_state`;
    expect(after).toMatchObject({ v: "ominipg feed v6" });
    expect(after!.epoch).not.toBe(before!.epoch);
    expect(await remote.sql`SELECT count(*)::int AS n FROM _ominipg_feed WHERE image IS NOT NULL`).toEqual([{ n: 0 }]);
    // From v4 and v5 only the read policy's function changed (v5: keys shown only to roles that may read the key's
    // columns; v6: a key read as the key alone): the epoch and the images stay.
    for (const [n, older] of ["ominipg feed v4", "ominipg feed v5"].entries()) {
      await remote.sql.unsafe(
        `COMMENT ON TABLE _ominipg_feed IS '${older}';
         INSERT INTO _ominipg_feed (lsn, schema_name, table_name, key, image)
           VALUES (pg_current_wal_lsn(), 'public', 'docs', '{"id": "2"}', '{"id": "2", "owner": "x", "body": "old image"}')`,
      );
      await (await Ominipg.feed(remote.url)).stop();
      const [now] =
        await remote.sql`SELECT epoch::text AS epoch, obj_description('_ominipg_feed'::regclass, 'pg_class') AS v FROM _ominipg_feed_state`;
      expect(now, older).toEqual({ epoch: after!.epoch, v: "ominipg feed v6" });
      expect(await remote.sql`SELECT count(*)::int AS n FROM _ominipg_feed WHERE image IS NOT NULL`).toEqual([
        { n: n + 1 },
      ]);
    }
    const as = postgres(urls[tenantA]!, { max: 1, onnotice: () => {} });
    try {
      await expect(as`SELECT image FROM _ominipg_feed`).rejects.toThrow(/permission denied/);
      expect((await as`SELECT count(key) FROM _ominipg_feed`).length).toBe(1);
    } finally {
      await as.end();
    }
  });
});

const pooler = poolerInfo();
describe.skipIf("skip" in pooler)("the change feed through PgBouncer (transaction pooling)", () => {
  it("a privileged client sets the feed up, drains it and pulls from it through the pooler", async () => {
    const remote = await createTestDatabase();
    const u = new URL((pooler as { url: string }).url);
    u.pathname = new URL(remote.url).pathname;
    await remote.sql.unsafe(LOCAL[0]!);
    await remote.sql`INSERT INTO docs SELECT g, 'x', 'doc ' || g FROM generate_series(1, 50) g`;
    const db = await Ominipg.connect({
      syncUrl: u.href,
      schemaSQL: LOCAL,
      sync: { retry: { attempts: 2 } },
    });
    try {
      expect(strategy(await db.pull())).toBe("copy");
      await remote.sql`UPDATE docs SET body = 'through the pooler' WHERE id <= 3`;
      await db.query(`INSERT INTO docs VALUES (99, 'x', 'local')`);
      await db.sync();
      const r = await db.pull();
      expect(r.tables["public.docs"]).toMatchObject({ strategy: "feed", upserted: 3 });
      expect((await db.query(`SELECT count(*)::int AS n FROM docs WHERE body = 'through the pooler'`)).rows).toEqual([
        { n: 3 },
      ]);
    } finally {
      await db.close();
      await remote.drop();
    }
  });
});
