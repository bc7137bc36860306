// The remote change feed's drainer against a real PostgreSQL with wal_level=logical: what it records (keys of
// every row change, whatever the names, types and values; a TRUNCATE or a bulk change as the whole table),
// that it is safe (a drainer killed between its write and the slot's advance loses and doubles nothing; two at
// once write each change once), the slot replaced when dropped, and trimming.
import { describe, expect, it } from "vitest";
import { openRemote, type Sql } from "../src/remote/connection.js";
import { drainStep, type DrainOptions } from "../src/remote/feed-drain.js";
import { ensureFeed, slotHealth, trimFeed } from "../src/remote/feed.js";
import { setUpRemote } from "../src/remote/remote.js";
import type { OminipgWarning } from "../src/index.js";
import { Ominipg } from "../src/index.js";
import { createLoginRoles, createTestDatabase, dropRoles, withAdmin, type TestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const OPTIONS: DrainOptions = { chunk: 10_000, maxKeys: 100_000, heartbeatMs: 5_000 };

const cleanup = cleanupAfterEach();

async function setup(ddl: string): Promise<{ remote: TestDatabase; sql: Sql; slot: string }> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  const sql = openRemote(remote.url, { max: 3 });
  cleanup(() => sql.end({ timeout: 0 }));
  await remote.sql.unsafe(ddl).simple();
  await setUpRemote(sql, []);
  await ensureFeed(sql, 10_000);
  return { remote, sql, slot: (await slotHealth(sql)).slot };
}

/** Drain until caught up. */
async function drainAll(sql: Sql, slot: string, options: Partial<DrainOptions> = {}): Promise<number> {
  let written = 0;
  for (;;) {
    const step = await drainStep(sql, slot, { ...OPTIONS, ...options });
    written += step.written;
    if (!step.full && !step.busy) return written;
  }
}

/** The feed's key rows as (table, key) pairs in feed order (by key within a transaction), keys typed back through each table's own columns and printed. */
async function feed(remote: TestDatabase): Promise<string[]> {
  const rows = await remote.sql.unsafe<{ t: string; k: string | null }[]>(
    `SELECT table_name AS t, key::text AS k FROM _ominipg_feed WHERE image IS NULL ORDER BY lsn, key::text`,
  );
  return rows.map((r) => `${r.t} ${r.k ?? "*"}`);
}

describe("the change feed's drainer", () => {
  it("records the key of every row change; TRUNCATE and bulk changes as the whole table; skips its own tables", async () => {
    const { remote, sql, slot } = await setup(`
      CREATE TABLE items (id int PRIMARY KEY, name text);
      CREATE TABLE "Odd, Name: x'y\\" ("K ""1""" text, k2 timestamptz, v int[], PRIMARY KEY ("K ""1""", k2));
      CREATE TABLE nokey (a int);
      CREATE TABLE big (id int PRIMARY KEY, body text);`);
    // One transaction each.
    for (const statement of [
      `INSERT INTO items VALUES (1, 'a'), (2, 'it''s'), (3, ' new-tuple: id[integer]:9')`,
      `UPDATE items SET name = 'b' WHERE id = 1`,
      `UPDATE items SET id = 10 WHERE id = 2`,
      `DELETE FROM items WHERE id = 3`,
      `INSERT INTO "Odd, Name: x'y\\" VALUES (E'q''u"o\\nte, ü: x', '2024-02-29 23:59:59.5+05', '{1,2}')`,
      `INSERT INTO nokey VALUES (1)`,
      `DO $$ BEGIN INSERT INTO items VALUES (4, 'x'); UPDATE items SET name = 'y' WHERE id = 4; UPDATE items SET name = 'z' WHERE id = 4; END $$`,
      `INSERT INTO big SELECT g, repeat('x', 5000) FROM generate_series(1, 30) g`,
      `TRUNCATE items`,
    ])
      await remote.sql.unsafe(statement).simple();
    await drainAll(sql, slot, { maxKeys: 20 });
    expect(await feed(remote)).toEqual([
      `items {"id": "1"}`,
      `items {"id": "2"}`,
      `items {"id": "3"}`,
      `items {"id": "1"}`,
      `items {"id": "10"}`,
      `items {"id": "2"}`,
      `items {"id": "3"}`,
      `Odd, Name: x'y\\ {"k2": "2024-02-29 18:59:59.5+00", "K \\"1\\"": "q'u\\"o\\nte, ü: x"}`,
      `items {"id": "4"}`, // three changes of one row in one transaction: one key
      `big *`, // more keys than maxKeys: the whole table
      `items *`,
    ]);
    // Keys read back as the rows' own keys, through each column's type.
    const [odd] = await remote.sql.unsafe<{ same: boolean }[]>(
      `SELECT (SELECT ("K ""1""", k2) FROM "Odd, Name: x'y\\") = (SELECT (p."K ""1""", p.k2) FROM _ominipg_feed f,
         jsonb_populate_record(NULL::"Odd, Name: x'y\\", f.key) p WHERE f.table_name = 'Odd, Name: x''y\\') AS same`,
    );
    expect(odd!.same).toBe(true);
    // Caught up: the slot is past everything, the state row says how far the feed is complete.
    const [s] = await remote.sql.unsafe<{ behind: boolean; upto: string }[]>(
      `SELECT s.drained_upto < r.confirmed_flush_lsn OR s.drained_upto = r.confirmed_flush_lsn AS behind,
         s.drained_upto::text AS upto FROM _ominipg_feed_state s JOIN pg_replication_slots r USING (slot_name)`,
    );
    expect(s!.behind).toBe(true);
    expect(await drainAll(sql, slot)).toBe(0); // its own writes decoded again, and skipped
    expect((await feed(remote)).length).toBe(11);
  });

  it("an UPDATE whose old key the replica identity does not print (NOTHING, an index without the key) records the whole table", async () => {
    const { remote, sql, slot } = await setup(`
      CREATE TABLE nothing (id int PRIMARY KEY, v int);
      ALTER TABLE nothing REPLICA IDENTITY NOTHING;
      CREATE TABLE byindex (id int PRIMARY KEY, code text NOT NULL UNIQUE);
      ALTER TABLE byindex REPLICA IDENTITY USING INDEX byindex_code_key;
      CREATE TABLE keyed (id int PRIMARY KEY, code text NOT NULL);
      CREATE UNIQUE INDEX keyed_both ON keyed (code, id);
      ALTER TABLE keyed REPLICA IDENTITY USING INDEX keyed_both;
      INSERT INTO nothing VALUES (1, 1);
      INSERT INTO byindex VALUES (1, 'c');
      INSERT INTO keyed VALUES (1, 'c');`);
    // Key changes: only an identity holding the key's columns prints the old key.
    for (const table of ["nothing", "byindex", "keyed"])
      await remote.sql.unsafe(`UPDATE ${table} SET id = 2 WHERE id = 1`);
    await drainAll(sql, slot);
    expect(await feed(remote)).toEqual([`nothing *`, `byindex *`, `keyed {"id": "1"}`, `keyed {"id": "2"}`]);
  });

  it("a json or jsonb key goes into the feed as the JSON it is: read back, it is the row's own key", async () => {
    const { remote, sql, slot } = await setup(`
      CREATE DOMAIN doc AS jsonb;
      CREATE TABLE docs (k jsonb PRIMARY KEY, v text);
      CREATE TABLE tagged (k doc, n int, PRIMARY KEY (k, n));`);
    await remote.sql`INSERT INTO docs VALUES ('"s"', 'a'), ('{"a": 1}', 'b'), ('[1, 2]', 'c'), ('12.50', 'd')`;
    await remote.sql`INSERT INTO tagged VALUES ('{"t": "x y"}', 1)`;
    await drainAll(sql, slot);
    const [found] = await remote.sql.unsafe<{ docs: number; tagged: number }[]>(
      `SELECT (SELECT count(*) FROM _ominipg_feed f, jsonb_populate_record(NULL::docs, f.key) p JOIN docs d ON d.k = p.k
                WHERE f.table_name = 'docs')::int AS docs,
              (SELECT count(*) FROM _ominipg_feed f, jsonb_populate_record(NULL::tagged, f.key) p JOIN tagged d
                ON d.k = p.k AND d.n = p.n WHERE f.table_name = 'tagged')::int AS tagged`,
    );
    expect(found).toEqual({ docs: 4, tagged: 1 });
  });

  it("records, for a table with row-level security, each updated or deleted row's image before the change", async () => {
    const { remote, sql, slot } = await setup(`
      CREATE TABLE docs (id int PRIMARY KEY, owner text NOT NULL, body text);
      ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
      ALTER TABLE docs REPLICA IDENTITY FULL;
      CREATE TABLE plain (id int PRIMARY KEY, v text);
      INSERT INTO docs VALUES (1, 'a', 'one'), (2, 'a', 'two');
      INSERT INTO plain VALUES (1, 'x');`);
    await drainAll(sql, slot);
    for (const statement of [
      `UPDATE docs SET owner = 'b', body = NULL WHERE id = 1`,
      `DELETE FROM docs WHERE id = 2`,
      `INSERT INTO docs VALUES (3, 'c', 'three')`,
      `DO $$ BEGIN UPDATE docs SET body = 'x' WHERE id = 3; UPDATE docs SET id = 4, body = 'y' WHERE id = 3; END $$`,
      `UPDATE plain SET v = 'y'; DELETE FROM plain`,
    ])
      await remote.sql.unsafe(statement).simple();
    await drainAll(sql, slot);
    const rows = await remote.sql.unsafe<{ t: string; k: string | null; i: string | null }[]>(
      `SELECT table_name AS t, key::text AS k, image::text AS i FROM _ominipg_feed ORDER BY lsn, image IS NULL, key::text`,
    );
    expect(rows.map((r) => `${r.t} ${r.k} ${r.i ?? "-"}`)).toEqual([
      `docs {"id": "1"} {"id": "1", "body": "one", "owner": "a"}`,
      `docs {"id": "1"} -`,
      `docs {"id": "2"} {"id": "2", "body": "two", "owner": "a"}`,
      `docs {"id": "2"} -`,
      `docs {"id": "3"} -`,
      // Two changes of row 3 in one transaction: the image before the first; the key it moved to, and its old one.
      `docs {"id": "3"} {"id": "3", "body": "three", "owner": "c"}`,
      `docs {"id": "3"} -`,
      `docs {"id": "4"} -`,
      `plain {"id": "1"} -`, // no row-level security: no image
    ]);
  });

  it("the API drainer sets the feed up on a database where Ominipg never ran; one started after its slot was dropped replaces it, and says so", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    await remote.sql`CREATE TABLE t (id int PRIMARY KEY)`;
    const drainer = await Ominipg.feed(remote.url, { intervalMs: 50 });
    try {
      expect(drainer.replaced).toBe(false);
      await remote.sql`INSERT INTO t VALUES (1)`;
      await expect.poll(() => feed(remote), { timeout: 10_000 }).toEqual([`t {"id": "1"}`]);
    } finally {
      await drainer.stop();
    }
    // The slot gone while no drainer ran: the next one replaces it, and says so.
    await remote.sql`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`;
    const next = await Ominipg.feed(remote.url, { intervalMs: 50 });
    await next.stop();
    expect(next.replaced).toBe(true);
  });

  it("a drainer whose role loses REPLICATION says it cannot drain", async () => {
    const role = `ominipg_drainer_${Date.now().toString(36)}`;
    const remote = await createTestDatabase();
    cleanup(() => dropRoles([role])); // after the database (clean-ups run last added first)
    cleanup(() => remote.drop());
    const urls = await createLoginRoles(remote.url, [role], { [role]: "REPLICATION" });
    await setUpRemote(remote.sql as never, [], [role]);
    const drainer = await Ominipg.feed(urls[role]!, { intervalMs: 20 });
    cleanup(() => drainer.stop());
    const warnings: OminipgWarning[] = [];
    drainer.on("warning", (w) => warnings.push(w));
    await withAdmin((sql) => sql.unsafe(`ALTER ROLE ${role} NOREPLICATION`));
    await expect
      .poll(() => warnings.find((w) => w.code === "FEED_UNAVAILABLE")?.message, { timeout: 15_000 })
      .toContain("neither a superuser nor has REPLICATION");
  });

  it("a drainer killed between writing its rows and advancing the slot: nothing lost, nothing doubled", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE t (id int PRIMARY KEY, v int)`);
    await remote.sql.unsafe(`INSERT INTO t SELECT g, g FROM generate_series(1, 50) g`);
    await remote.sql.unsafe(`UPDATE t SET v = -v WHERE id <= 5`);
    const killed = drainStep(sql, slot, {
      ...OPTIONS,
      afterInsert: () => {
        throw new Error("killed");
      },
    });
    await expect(killed).rejects.toThrow("killed");
    const before = await remote.sql<
      { confirmed: string }[]
    >`SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = ${slot}`;
    expect(await feed(remote)).toHaveLength(55);
    // Meanwhile another change commits; the next drain peeks the same transactions again, then the new one.
    await remote.sql.unsafe(`DELETE FROM t WHERE id = 50`);
    await drainAll(sql, slot);
    const rows = await feed(remote);
    expect(rows).toHaveLength(56);
    expect(rows.at(-1)).toBe(`t {"id": "50"}`);
    const [after] = await remote.sql<
      { confirmed: string }[]
    >`SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = ${slot}`;
    expect(after!.confirmed).not.toBe(before[0]!.confirmed);
  });

  it("a drainer killed after reading the slot, before its rows commit: nothing lost", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE t (id int PRIMARY KEY, v int)`);
    await remote.sql.unsafe(`INSERT INTO t SELECT g, g FROM generate_series(1, 20) g`);
    const killed = drainStep(sql, slot, {
      ...OPTIONS,
      afterPeek: () => {
        throw new Error("killed");
      },
    });
    await expect(killed).rejects.toThrow("killed");
    expect(await feed(remote)).toEqual([]);
    await drainAll(sql, slot);
    expect(await feed(remote)).toHaveLength(20);
  });

  it("one drainer at a time: concurrent drainers write each change once", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE t (id int PRIMARY KEY, v int)`);
    const others = [openRemote(remote.url, { max: 2 }), openRemote(remote.url, { max: 2 })];
    cleanup(async () => {
      for (const o of others) await o.end({ timeout: 0 });
    });
    for (let round = 0; round < 20; round++) {
      await remote.sql.unsafe(
        `INSERT INTO t SELECT g, g FROM generate_series(${round * 100 + 1}, ${round * 100 + 100}) g`,
      );
      const steps = await Promise.all([sql, ...others].map((s) => drainStep(s, slot, { ...OPTIONS, chunk: 150 })));
      expect(steps.filter((s) => s.busy).length).toBeLessThan(3);
    }
    await drainAll(sql, slot);
    const [n] = await remote.sql<
      { n: number; d: number }[]
    >`SELECT count(*)::int AS n, count(DISTINCT key)::int AS d FROM _ominipg_feed`;
    expect(n).toEqual({ n: 2000, d: 2000 });
  });

  it("a dropped slot is replaced by one of a new epoch; its old rows go", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE t (id int PRIMARY KEY)`);
    await remote.sql`INSERT INTO t VALUES (1)`;
    await drainAll(sql, slot);
    const [before] = await remote.sql<{ epoch: string }[]>`SELECT epoch::text FROM _ominipg_feed_state`;
    await remote.sql`SELECT pg_drop_replication_slot(${slot})`;
    await remote.sql`INSERT INTO t VALUES (2)`; // lost to the feed: readers diff
    await expect(drainStep(sql, slot, OPTIONS)).rejects.toThrow(/does not exist/);
    expect(await ensureFeed(sql, 10_000)).toEqual({ created: true, replaced: true });
    await remote.sql`INSERT INTO t VALUES (3)`;
    await drainAll(sql, slot);
    const [after] = await remote.sql<{ epoch: string }[]>`SELECT epoch::text FROM _ominipg_feed_state`;
    expect(after!.epoch).not.toBe(before!.epoch);
    expect(await feed(remote)).toEqual([`t {"id": "3"}`]);
  });

  it("trims rows every registered reader has passed, and rows older than the retention", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE t (id int PRIMARY KEY)`);
    const positions: string[] = [];
    for (let i = 1; i <= 4; i++) {
      await remote.sql`INSERT INTO t VALUES (${i})`;
      await drainAll(sql, slot);
      positions.push(
        (await remote.sql<{ p: string }[]>`SELECT drained_upto::text AS p FROM _ominipg_feed_state`)[0]!.p,
      );
    }
    const [state] = await remote.sql<{ epoch: string }[]>`SELECT epoch::text FROM _ominipg_feed_state`;
    const epoch = state!.epoch;
    const register = (id: string, lsn: string) =>
      remote.sql`INSERT INTO _ominipg_feed_clients (client_id, epoch, lsn) VALUES (${id}, ${epoch}, ${lsn}::pg_lsn)
        ON CONFLICT (owner, client_id) DO UPDATE SET lsn = EXCLUDED.lsn, seen_at = now()`;
    await register("00000000-0000-4000-8000-000000000001", positions[1]!);
    await register("00000000-0000-4000-8000-000000000002", positions[2]!);
    // Within the grace period nothing goes; after it, what both readers passed.
    expect(await trimFeed(sql, 3_600_000, 3_600_000)).toBe(0);
    await remote.sql`UPDATE _ominipg_feed SET drained_at = drained_at - interval '1 hour'`;
    expect(await trimFeed(sql, 7_200_000, 60_000)).toBe(2);
    expect(await feed(remote)).toEqual([`t {"id": "3"}`, `t {"id": "4"}`]);
    const [st] = await remote.sql<{ trimmed: string }[]>`SELECT trimmed_upto::text AS trimmed FROM _ominipg_feed_state`;
    expect(st!.trimmed).toBe(positions[1]);
    // Older than the retention: trimmed whoever still needs them; readers not seen within it are forgotten.
    await remote.sql`UPDATE _ominipg_feed_clients SET seen_at = now() - interval '3 hours'`;
    expect(await trimFeed(sql, 3_600_000, 60_000)).toBe(2);
    expect(await feed(remote)).toEqual([]);
    expect((await remote.sql`SELECT 1 FROM _ominipg_feed_clients`).length).toBe(0);
  });

  it("the slot's restart point follows the drain: the WAL of a burst of writes is not decoded again at every step", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE big (id int PRIMARY KEY, body text)`);
    await remote.sql`INSERT INTO big SELECT g, repeat('x', 500) FROM generate_series(1, 6000) g`; // ~4 MB of WAL
    const [{ after, version }] = (await remote.sql`
      SELECT pg_current_wal_insert_lsn()::text AS after, current_setting('server_version_num')::int AS version`) as unknown as [
      { after: string; version: number },
    ];
    await drainAll(sql, slot);
    // The record of running transactions the drain wrote is passed by the next step's advance. The restart point
    // moves to where the oldest transaction then running (in any database of the server: another test's) began:
    // a few rounds let such a one end, and more (up to 20 s) while another session holds a transaction that wrote
    // (under the suite's load one stayed open past 5 quick rounds). Not time alone: the server's own record, every
    // 15 s, would then move the restart point without pg_log_standby_snapshot().
    let moved = false;
    let blocked = false;
    let rounds = 0;
    const deadline = Date.now() + 20_000;
    for (; !moved && (rounds < 5 || (blocked && Date.now() < deadline)); rounds++) {
      if (rounds >= 5) await new Promise((resolve) => setTimeout(resolve, 200));
      await remote.sql`INSERT INTO big VALUES (${-rounds}, 'y')`;
      await drainAll(sql, slot);
      const [r] = await remote.sql<{ moved: boolean; blocked: boolean }[]>`
        SELECT restart_lsn >= ${after}::pg_lsn AS moved,
          EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()) AS blocked
        FROM pg_replication_slots WHERE slot_name = ${slot}`;
      moved = r!.moved;
      blocked = r!.blocked;
    }
    // pg_log_standby_snapshot() is PostgreSQL 16's: before it, the restart point moves when the server writes
    // such a record itself (every 15 s while it has WAL activity).
    if (version >= 160000) expect(moved).toBe(true);
    const [{ n }] =
      (await remote.sql`SELECT count(*)::int AS n FROM _ominipg_feed WHERE table_name = 'big'`) as unknown as [
        { n: number },
      ];
    expect(n).toBe(6000 + rounds);
  });

  it("an idle database's slot moves past the WAL other databases write: it is not decoded again, nor kept", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE t (id int PRIMARY KEY)`);
    const other = await createTestDatabase();
    cleanup(() => other.drop());
    await other.sql.unsafe(`CREATE TABLE busy (id int PRIMARY KEY, body text)`);
    await other.sql.unsafe(`INSERT INTO busy SELECT g, repeat('x', 500) FROM generate_series(1, 4000) g`);
    const [{ flushed }] = (await remote.sql`SELECT pg_current_wal_flush_lsn()::text AS flushed`) as unknown as [
      { flushed: string },
    ];
    expect((await drainStep(sql, slot, OPTIONS)).written).toBe(0);
    const [r] = await remote.sql<{ past: boolean }[]>`
      SELECT confirmed_flush_lsn >= ${flushed}::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = ${slot}`;
    expect(r!.past).toBe(true);
    // Changes of its own database after that are still drained.
    await remote.sql`INSERT INTO t VALUES (1)`;
    await drainAll(sql, slot);
    expect(await feed(remote)).toEqual([`t {"id": "1"}`]);
  });

  it("reads WAL written but not flushed yet up to its end, flushing it itself instead of waiting for the WAL writer", async () => {
    const { remote, sql, slot } = await setup(`CREATE TABLE t (id int PRIMARY KEY)`);
    const [{ version }] =
      (await remote.sql`SELECT current_setting('server_version_num')::int AS version`) as unknown as [
        { version: number },
      ];
    // A commit without a flush is flushed by the WAL writer only after wal_writer_delay (200 ms): a step right after
    // it finds it written but not flushed, and still reads it, whole. (pg_logical_emit_message's flush is
    // PostgreSQL 17's: before it, a step reads what is flushed, and the next one the rest.)
    let flushed = 0;
    let inserted = 0;
    for (let id = 1; id <= 20 && flushed < 3; id++) {
      inserted = id;
      await remote.sql.begin(async (tx) => {
        await tx.unsafe(`SET LOCAL synchronous_commit = off`);
        await tx.unsafe(`INSERT INTO t VALUES (${id})`);
      });
      const step = await drainStep(sql, slot, OPTIONS);
      if (!step.flushed) {
        await drainAll(sql, slot); // the WAL writer was first: nothing to see here
        continue;
      }
      flushed++;
      expect((await feed(remote)).at(-1)).toBe(`t {"id": "${id}"}`);
      const messages = await remote.sql<{ data: string }[]>`
        SELECT data FROM pg_logical_slot_peek_changes(${slot}, NULL, NULL) WHERE data LIKE 'message:%'`;
      expect(messages.map((m) => m.data)).toContainEqual(expect.stringContaining("prefix: ominipg_flush"));
      await drainAll(sql, slot);
    }
    if (version >= 170000) expect(flushed).toBeGreaterThan(0);
    else expect(flushed).toBe(0);
    expect(await feed(remote)).toEqual(Array.from({ length: inserted }, (_, i) => `t {"id": "${i + 1}"}`));
  });
});
