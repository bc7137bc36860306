// A change feed whose slot the server invalidated: max_slot_wal_keep_size bounds the WAL a slot may hold back,
// past it the server gives the slot up (wal_status "lost") rather than fill its disk. The next pull finds it,
// replaces the slot (a new epoch), diffs every table once (what changed meanwhile is in no feed) and says so,
// then reads the feed again. On a server of its own: the setting is server-wide.
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmbeddedRemote, type EmbeddedRemote } from "../src/cli/embedded-remote.js";
import type { OminipgWarning } from "../src/core/warnings.js";
import { Ominipg, type PullResult } from "../src/index.js";
import { pgliteTemplate } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, body text NOT NULL)`];
const strategy = (r: PullResult) => r.tables["public.t"]!.strategy;

describe("a slot the server invalidated (max_slot_wal_keep_size)", () => {
  let server: EmbeddedRemote;
  let sql: postgres.Sql;
  beforeAll(async () => {
    server = await startEmbeddedRemote({
      dirPrefix: "ominipg-test-lost-",
      postgresFlags: ["-c", "wal_level=logical", "-c", "max_slot_wal_keep_size=1MB", "-c", "fsync=off"],
    });
    sql = postgres(server.url, { max: 2, onnotice: () => {} });
    await sql.unsafe(SCHEMA[0]!);
    await sql`INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g`;
  });
  afterAll(async () => {
    await sql?.end();
    await server?.stop();
  });

  it("is replaced at the next pull: every table diffs once, a warning says why, then the feed again", async () => {
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
      expect((await sql`SELECT wal_status FROM pg_replication_slots`)[0]).toEqual({ wal_status: "lost" });
      const r = await db.pull();
      expect(strategy(r)).toBe("diff");
      expect(r.tables["public.t"]!.upserted).toBe(100);
      expect(warnings.map((w) => w.code)).toContain("FEED_SLOT_REPLACED");
      expect((await sql`SELECT wal_status FROM pg_replication_slots`)[0]!.wal_status).not.toBe("lost");
      await expectSameRows(db, sql, { t: "id" });
      await sql`UPDATE t SET body = 'after' WHERE id = 2`;
      expect(strategy(await db.pull())).toBe("feed");
      await expectSameRows(db, sql, { t: "id" });
    } finally {
      await db.close();
    }
  });
});
