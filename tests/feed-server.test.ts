// The change feed on a PostgreSQL server of its own, for what is server-wide or needs WAL no other test writes:
// - A slot the server invalidated: max_slot_wal_keep_size bounds the WAL a slot may hold back, past it the server
//   gives the slot up (wal_status "lost") rather than fill its disk. The next pull finds it, replaces the slot (a
//   new epoch), diffs every table once (what changed meanwhile is in no feed) and says so, then reads the feed.
// - How a drain step moves the slot: not for a few bytes of WAL without a change, and past a step filled with
//   logical messages alone (WAL no other test writes: every test's WAL is in the shared server's one stream).
// - A commit that waits for a synchronous standby (a server-wide setting) is drained only once it is visible.
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedRemote, type EmbeddedRemote } from "../src/cli/embedded-remote.js";
import type { OminipgWarning } from "../src/core/warnings.js";
import { Ominipg, type PullResult } from "../src/index.js";
import { openRemote, type Sql } from "../src/remote/connection.js";
import { drainStep, type DrainOptions } from "../src/remote/feed-drain.js";
import { ensureFeed, slotHealth } from "../src/remote/feed.js";
import { setUpRemote } from "../src/remote/remote.js";
import { pgliteTemplate } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, body text NOT NULL)`];
const strategy = (r: PullResult) => r.tables["public.t"]!.strategy;
const OPTIONS: DrainOptions = { chunk: 10_000, maxKeys: 100_000, heartbeatMs: 5_000 };

describe("the change feed on a server of its own", () => {
  let server: EmbeddedRemote;
  let sql: postgres.Sql;
  beforeAll(async () => {
    server = await startEmbeddedRemote({
      dirPrefix: "ominipg-test-feed-",
      // No autovacuum: a vacuum's WAL between two drain steps would be more than the idle test's few bytes.
      postgresFlags: "-c wal_level=logical -c max_slot_wal_keep_size=1MB -c fsync=off -c autovacuum=off".split(" "),
    });
    sql = postgres(server.url, { max: 2, onnotice: () => {} });
    await sql.unsafe(SCHEMA[0]!);
    await sql`INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g`;
  });
  afterAll(async () => {
    await sql?.end();
    await server?.stop();
  });

  /** A database of this server holding `ddl`, its feed set up; its client ends after `fn`. */
  async function withFeed(name: string, ddl: string, fn: (remote: Sql, slot: string) => Promise<void>): Promise<void> {
    await sql.unsafe(`CREATE DATABASE ${name}`);
    const url = new URL(server.url);
    url.pathname = `/${name}`;
    const remote = openRemote(url.href, { max: 3 });
    try {
      await remote.unsafe(ddl).simple();
      await setUpRemote(remote, []);
      await ensureFeed(remote, 10_000);
      await fn(remote, (await slotHealth(remote)).slot);
    } finally {
      await remote.end({ timeout: 0 });
    }
  }

  it("a slot the server invalidated (max_slot_wal_keep_size) is replaced at the next pull: every table diffs once, a warning says why, then the feed again", async () => {
    const warnings: OminipgWarning[] = [];
    const db = await Ominipg.connect({ loadDataDir: await pgliteTemplate(), syncUrl: server.url, schemaSQL: SCHEMA });
    db.on("warning", (w) => warnings.push(w));
    try {
      expect(strategy(await db.pull())).toBe("copy");
      await sql`UPDATE t SET body = 'before' WHERE id = 1`;
      expect(strategy(await db.pull())).toBe("feed");
      // No drain while the server writes WAL past the slot's allowance: the checkpoint gives the slot up.
      for (let i = 0; i < 3; i++) {
        await sql`UPDATE t SET body = ${`lost ${i}`} WHERE id <= 100`;
        await sql`SELECT pg_switch_wal()`;
      }
      await sql`CHECKPOINT`;
      expect((await sql`SELECT wal_status FROM pg_replication_slots WHERE database = current_database()`)[0]).toEqual({
        wal_status: "lost",
      });
      const r = await db.pull();
      expect(strategy(r)).toBe("diff");
      expect(r.tables["public.t"]!.upserted).toBe(100);
      expect(warnings.map((w) => w.code)).toContain("FEED_SLOT_REPLACED");
      expect(
        (await sql`SELECT wal_status FROM pg_replication_slots WHERE database = current_database()`)[0]!.wal_status,
      ).not.toBe("lost");
      await expectSameRows(db, sql, { t: "id" });
      await sql`UPDATE t SET body = 'after' WHERE id = 2`;
      expect(strategy(await db.pull())).toBe("feed");
      await expectSameRows(db, sql, { t: "id" });
    } finally {
      await db.close();
    }
  });

  it("an idle drain leaves the slot where it is for a few bytes of WAL without a change, and passes them past 64 kB", async () => {
    await withFeed(
      "idle",
      `CREATE TABLE t (id int PRIMARY KEY); CREATE UNLOGGED TABLE u (n int)`,
      async (remote, slot) => {
        const confirmed = async () =>
          (
            await remote<
              { c: string }[]
            >`SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = ${slot}`
          )[0]!.c;
        await remote`INSERT INTO t VALUES (1)`;
        expect((await drainStep(remote, slot, OPTIONS)).written).toBe(1);

        // A commit that changed only an unlogged table, and a logical message: WAL, but no change of a table.
        await remote`INSERT INTO u VALUES (1)`;
        await remote`SELECT pg_logical_emit_message(false, 'test', 'small')`;
        const before = await confirmed();
        const idle = await drainStep(remote, slot, OPTIONS);
        expect(idle).toMatchObject({ written: 0, advanceTo: undefined });
        expect(await confirmed()).toBe(before);

        // Past 64 kB, the slot moves (or it would keep the WAL of other databases while this one is idle).
        await remote`SELECT pg_logical_emit_message(true, 'test', repeat('x', 70000))`; // its commit flushes it
        const [{ end }] = (await remote`SELECT pg_current_wal_insert_lsn()::text AS end`) as unknown as [
          { end: string },
        ];
        const passed = await drainStep(remote, slot, OPTIONS);
        expect(passed.written).toBe(0);
        expect(passed.advanceTo).toBeDefined();
        expect(
          (
            await remote`SELECT confirmed_flush_lsn >= ${end}::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = ${slot}`
          )[0],
        ).toEqual({
          past: true,
        });

        // A change is drained whatever the slot left behind, once. A step that read a change moves the slot past
        // it, even when it wrote nothing (the drainer before it was killed between its write and its advance).
        await remote`INSERT INTO t VALUES (2)`;
        const killed = drainStep(remote, slot, {
          ...OPTIONS,
          afterInsert: () => {
            throw new Error("killed");
          },
        });
        await expect(killed).rejects.toThrow("killed");
        const again = await drainStep(remote, slot, OPTIONS);
        expect(again.written).toBe(0);
        expect(again.advanceTo).toBeDefined();
        const keys = await remote<{ k: string }[]>`SELECT key::text AS k FROM _ominipg_feed ORDER BY lsn`;
        expect(keys.map((r) => r.k)).toEqual([`{"id": "1"}`, `{"id": "2"}`]);
      },
    );
  });

  it("a step filled with logical messages alone (no transaction to end it) still moves the slot on", async () => {
    await withFeed("messages", `CREATE TABLE t (id int PRIMARY KEY)`, async (remote, slot) => {
      for (let i = 0; i < 12; i++) await remote`SELECT pg_logical_emit_message(false, 'test', ${`m${i}`})`;
      await remote`INSERT INTO t VALUES (1)`;
      // Five lines of output per step: the first steps read messages only.
      let written = 0;
      for (let step = 0; step < 10 && written === 0; step++)
        written += (await drainStep(remote, slot, { ...OPTIONS, chunk: 5 })).written;
      expect(written).toBe(1);
    });
  });

  it("a commit other sessions cannot see yet (it waits for a synchronous standby) is drained once they can: no pull passes it", async () => {
    await sql.unsafe(`CREATE DATABASE standby_wait`);
    // Only the writer below waits for the standby; the clients' and the drain's own commits do not.
    await sql.unsafe(`ALTER DATABASE standby_wait SET synchronous_commit = local`);
    const url = new URL(server.url);
    url.pathname = "/standby_wait";
    const remote = postgres(url.href, { max: 2, onnotice: () => {} });
    const writer = postgres(url.href, { max: 1, onnotice: () => {} });
    await remote.unsafe(SCHEMA[0]!);
    await remote`INSERT INTO t VALUES (1, 'old'), (2, 'x')`;
    const db = await Ominipg.connect({ loadDataDir: await pgliteTemplate(), syncUrl: url.href, schemaSQL: SCHEMA });
    const body = async () => (await db.query(`SELECT body FROM t WHERE id = 1`)).rows[0]?.["body"];
    try {
      await db.pull();
      await remote`UPDATE t SET body = 'y' WHERE id = 2`;
      expect(strategy(await db.pull())).toBe("feed");
      await sql`ALTER SYSTEM SET synchronous_standby_names = 'ominipg_ghost'`;
      await sql`SELECT pg_reload_conf()`;
      const pid = Number((await writer`SELECT pg_backend_pid() AS pid`)[0]!["pid"]);
      await writer`SET synchronous_commit = on`;
      const waiting = writer`UPDATE t SET body = 'new' WHERE id = 1`.catch(() => {});
      // Its commit record is written and flushed (decoding reads it), the transaction not yet visible.
      for (let i = 0; i < 100; i++) {
        const [row] = await sql`SELECT wait_event FROM pg_stat_activity WHERE pid = ${pid}`;
        if (row?.["wait_event"] === "SyncRep") break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(strategy(await db.pull())).toBe("feed");
      expect(await body()).toBe("old");
      await sql`SELECT pg_cancel_backend(${pid})`; // committed locally: visible from now on
      await waiting;
      expect(strategy(await db.pull())).toBe("feed");
      expect(await body()).toBe("new");
      await expectSameRows(db, remote, { t: "id" });
    } finally {
      await sql`ALTER SYSTEM RESET synchronous_standby_names`;
      await sql`SELECT pg_reload_conf()`;
      await db.close();
      await writer.end({ timeout: 0 });
      await remote.end({ timeout: 0 });
    }
  });
});
