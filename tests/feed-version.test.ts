// The set-up versions of Ominipg's remote objects (the ledger's and the feed tables' comments) compared as numbers:
// objects a newer Ominipg set up (here v99) are used as they are by this version's clients and drainers (no DDL,
// no comment or epoch change: two versions in one fleet must not flip them back and forth, each flip making every
// reader diff), and `ominipg setup` refuses them; older ones are still upgraded.
import { describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { loadParser, parseStatements } from "../src/capture/parser.js";
import { dropFeed } from "../src/remote/feed.js";
import { setUpRemote } from "../src/remote/remote.js";
import { setupScript } from "../src/remote/schema.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, body text NOT NULL)`];
const cleanup = cleanupAfterEach();

async function remoteDb(): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  await remote.sql.unsafe(SCHEMA[0]!);
  await remote.sql`INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 20) g`;
  return remote;
}

async function client(remote: TestDatabase): Promise<Ominipg> {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: SCHEMA,
    sync: { retry: { attempts: 1 } },
  });
  cleanup(() => db.close());
  return db;
}

/** A client that copied the table by its first pull (which sets the feed up: the role is a superuser). */
async function pulled(remote: TestDatabase): Promise<Ominipg> {
  const db = await client(remote);
  expect((await db.pull()).tables["public.t"]!.strategy).toBe("copy");
  return db;
}

/** What a set-up (or its undoing) would change: the comments, the epoch, the images, the objects' catalog rows. */
async function snapshot(remote: TestDatabase) {
  const [r] = await remote.sql`SELECT
    obj_description('_ominipg_feed'::regclass, 'pg_class') AS feed,
    obj_description('_ominipg_ledger'::regclass, 'pg_class') AS ledger,
    (SELECT array_agg(epoch::text) FROM _ominipg_feed_state) AS epochs,
    (SELECT count(*)::int FROM _ominipg_feed WHERE image IS NOT NULL) AS images,
    (SELECT xmin::text FROM pg_proc WHERE oid = 'public._ominipg_feed_visible(text, text, jsonb, jsonb)'::regprocedure) AS visible,
    (SELECT xmin::text FROM pg_proc WHERE oid = 'public._ominipg_identity()'::regprocedure) AS identity,
    (SELECT oid::text FROM pg_constraint WHERE conname = '_ominipg_ledger_pkey') AS ledger_key`;
  return r!;
}

describe("the versions of Ominipg's remote objects", () => {
  it("a newer version's objects (v99): clients and drainers use them as they are, `ominipg setup` refuses them", async () => {
    const remote = await remoteDb();
    const first = await pulled(remote);
    // A newer Ominipg set them up: its comments, and an image row (which an upgrade from before v4 deletes) at a
    // position past the drained one, so that no trim takes it.
    await remote.sql.unsafe(
      `COMMENT ON TABLE _ominipg_feed IS 'ominipg feed v99';
       COMMENT ON TABLE _ominipg_ledger IS 'ominipg ledger v99';
       INSERT INTO _ominipg_feed (lsn, schema_name, table_name, key, image)
         VALUES ('FFFF/0', 'public', 't', '{"id": "1"}', '{"id": "1", "body": "old image"}')`,
    );
    const before = await snapshot(remote);
    expect(before).toMatchObject({ feed: "ominipg feed v99", ledger: "ominipg ledger v99", images: 1 });

    await (await Ominipg.feed(remote.url)).stop(); // a drainer sets the feed up where it is older
    const second = await client(remote); // a new client sets the ledger up where it is older
    await second.query(`INSERT INTO t VALUES (100, 'local')`);
    await second.sync();
    await remote.sql`UPDATE t SET body = 'changed' WHERE id = 2`;
    const r = await first.pull();
    expect(r.tables["public.t"]).toMatchObject({ strategy: "feed", upserted: 2 });
    expect((await first.query(`SELECT body FROM t WHERE id IN (2, 100) ORDER BY id`)).rows).toEqual([
      { body: "changed" },
      { body: "local" },
    ]);
    expect(await snapshot(remote)).toEqual(before);

    // `ominipg setup`'s function: refused, whichever of them is newer, before it changes anything.
    for (const [table, older] of [
      ["_ominipg_ledger", "ominipg ledger v2"],
      ["_ominipg_feed", "ominipg feed v6"],
    ] as const) {
      await expect(setUpRemote(remote.sql as never, [])).rejects.toMatchObject({
        code: "REMOTE_SETUP_FAILED",
        message: expect.stringMatching(
          new RegExp(
            `\\(public\\.${table}: version 99\\) were set up by a newer Ominipg .*run the newer version's \`ominipg setup\``,
          ),
        ),
      });
      await remote.sql.unsafe(`COMMENT ON TABLE ${table} IS '${older}'`);
    }
    const now = await snapshot(remote);
    expect(now).toEqual({ ...before, feed: "ominipg feed v6", ledger: "ominipg ledger v2" });
    await setUpRemote(remote.sql as never, []); // both of this version again: set up as before
  });

  it("a newer version's objects it says this one may not use (`min v99`): clients diff, drainers and pushes are refused", async () => {
    const remote = await remoteDb();
    const first = await pulled(remote);
    // What follows a newer version's number is that version's to define: still version 99, not "not Ominipg's".
    await remote.sql.unsafe(
      `COMMENT ON TABLE _ominipg_feed IS 'ominipg feed v99 min v99';
       COMMENT ON TABLE _ominipg_ledger IS 'ominipg ledger v99 with more words';`,
    );
    const before = await snapshot(remote);

    const feedState = async () =>
      (
        await remote.sql`SELECT (SELECT count(*)::int FROM _ominipg_feed) AS rows,
          (SELECT array_agg(drained_upto::text) FROM _ominipg_feed_state) AS drained`
      )[0];
    const fed = await feedState();

    await remote.sql`UPDATE t SET body = 'changed' WHERE id = 2`;
    const warnings: { code: string; message: string }[] = [];
    first.on("warning", (w) => warnings.push(w));
    const r = await first.pull(); // its drain agent read the feed's health before: refused under the drain lock
    expect(r.tables["public.t"]).toMatchObject({ strategy: "diff", upserted: 1 });
    const tooOld =
      /the change feed was set up by a newer Ominipg for its own set-up versions \(99 and later; this Ominipg's is 6\), which older ones may not use: upgrade Ominipg/;
    expect(r.feed?.unusable).toMatch(tooOld);
    // One warning: the refusal is not taken for a missing slot (which the drain would try to set up again).
    expect(warnings).toEqual([{ code: "FEED_DRAIN_FAILED", message: expect.stringMatching(tooOld) }]);
    expect(await feedState()).toEqual(fed); // nothing drained into it, nothing trimmed
    expect((await first.status()).feed).toMatchObject({ drainer: false });
    await expect(Ominipg.feed(remote.url)).rejects.toMatchObject({ code: "FEED_UNAVAILABLE", message: tooOld });
    await expect(dropFeed(remote.sql as never)).rejects.toMatchObject({ code: "FEED_UNAVAILABLE", message: tooOld });
    const readers = async () => (await remote.sql`SELECT count(*)::int AS n FROM _ominipg_feed_clients`)[0]!.n;
    const registered = await readers();
    expect(registered).toBeGreaterThan(0);
    await first.unregister(); // its registration in a feed this version may not write: left alone
    expect(await readers()).toBe(registered);
    expect(await feedState()).toEqual(fed);

    const second = await client(remote); // the ledger (no `min`): used as it is
    await second.query(`INSERT INTO t VALUES (100, 'local')`);
    await second.sync();
    expect(await remote.sql`SELECT body FROM t WHERE id = 100`).toEqual([{ body: "local" }]);
    expect(await snapshot(remote)).toEqual(before);

    // Set up so while `second` runs: its next sync is refused before it pushes anything.
    await remote.sql.unsafe(`COMMENT ON TABLE _ominipg_ledger IS 'ominipg ledger v99 min v3'`);
    await second.query(`INSERT INTO t VALUES (101, 'not pushed')`);
    await expect(second.sync()).rejects.toMatchObject({
      code: "REMOTE_SETUP_FAILED",
      message: expect.stringMatching(
        /ledger public\._ominipg_ledger was set up by a newer Ominipg for its own set-up versions \(3 and later; this Ominipg's is 2\)/,
      ),
    });
    expect(await remote.sql`SELECT count(*)::int AS n FROM t WHERE id = 101`).toEqual([{ n: 0 }]);
    expect(await snapshot(remote)).toEqual({ ...before, ledger: "ominipg ledger v99 min v3" });
  });

  it("a sync running when a newer set-up forbids this version the ledger stops before its next batch: nothing set aside or lost", async () => {
    const remote = await remoteDb();
    let setUp = false;
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: SCHEMA,
      sync: { retry: { attempts: 1 }, batchSize: 1, concurrency: 1, copyBatchSize: 0 },
      testHooks: {
        // The newer set-up commits right after this sync's first batch did.
        afterRemoteCommit: async () => {
          if (setUp) return;
          setUp = true;
          await remote.sql.unsafe(`COMMENT ON TABLE _ominipg_ledger IS 'ominipg ledger v99 min v3'`);
        },
      },
    });
    cleanup(() => db.close());
    await db.pull();
    for (let id = 101; id <= 105; id++) await db.query(`INSERT INTO t VALUES ($1, 'local')`, [id]);
    await expect(db.sync()).rejects.toMatchObject({
      code: "REMOTE_SETUP_FAILED",
      message: expect.stringMatching(/ledger public\._ominipg_ledger was set up by a newer Ominipg .*upgrade Ominipg/),
    });
    expect(await remote.sql`SELECT id FROM t WHERE id > 100 ORDER BY id`).toEqual([{ id: 101 }]);
    const local = async (sql: string) => (await db.query<{ n: number }>(sql)).rows[0]!.n;
    expect(await local(`SELECT count(*)::int AS n FROM _ominipg_rejected`)).toBe(0);
    expect(await local(`SELECT count(*)::int AS n FROM _sync_queue`)).toBe(4);

    await remote.sql.unsafe(`COMMENT ON TABLE _ominipg_ledger IS 'ominipg ledger v2'`); // that set-up undone
    await db.sync();
    expect(await remote.sql`SELECT count(*)::int AS n FROM t WHERE id > 100`).toEqual([{ n: 5 }]);
    expect(await local(`SELECT count(*)::int AS n FROM _sync_queue`)).toBe(0);
  });

  it("older versions are still set up again: a v1 ledger by a client, a v5 feed by a drainer (same epoch), a v3 feed with a new epoch", async () => {
    const remote = await remoteDb();
    const db = await client(remote);
    await db.pull();
    const start = await snapshot(remote);
    await remote.sql.unsafe(
      `COMMENT ON TABLE _ominipg_ledger IS 'ominipg ledger v1';
       COMMENT ON TABLE _ominipg_feed IS 'ominipg feed v5';`,
    );
    await (await client(remote)).sync();
    await (await Ominipg.feed(remote.url)).stop();
    const upgraded = await snapshot(remote);
    expect(upgraded).toMatchObject({ feed: "ominipg feed v6", ledger: "ominipg ledger v2", epochs: start.epochs });
    expect(upgraded.ledger_key).not.toBe(start.ledger_key);
    expect(upgraded.visible).not.toBe(start.visible);
    await remote.sql.unsafe(`COMMENT ON TABLE _ominipg_feed IS 'ominipg feed v3'`);
    await (await Ominipg.feed(remote.url)).stop();
    const fromV3 = await snapshot(remote);
    expect(fromV3.feed).toBe("ominipg feed v6");
    expect(fromV3.epochs).not.toEqual(start.epochs);
  });

  it("the set-up SQL itself refuses a newer version's objects: `ominipg setup --print` run as psql runs a script, and a drainer beside a newer ledger", async () => {
    const remote = await remoteDb();
    await setUpRemote(remote.sql as never, ["postgres"]);
    const identity = `CREATE OR REPLACE FUNCTION public._ominipg_identity() RETURNS text LANGUAGE sql STABLE
      SET search_path = pg_catalog AS $$ SELECT 'v99 identity' $$`;
    await remote.sql.unsafe(`COMMENT ON TABLE _ominipg_feed IS 'ominipg feed v99'; ${identity}`);
    const before = await snapshot(remote);
    // psql -f with its defaults: each statement on its own, in autocommit, going on after an error.
    await loadParser();
    const script = Buffer.from(setupScript(["postgres"], []));
    const session = await remote.sql.reserve();
    const errors: string[] = [];
    try {
      for (const { stmt_location: at = 0, stmt_len: len } of parseStatements(script.toString())) {
        const text = script.subarray(at, len === undefined || len === 0 ? undefined : at + len).toString();
        await session
          .unsafe(text)
          .simple()
          .catch((err: Error) => errors.push(err.message));
      }
    } finally {
      session.release();
    }
    expect(errors[0]).toMatch(
      /set up by a newer Ominipg than this one \(public\._ominipg_ledger version 2, public\._ominipg_feed version 99/,
    );
    expect(await snapshot(remote)).toEqual(before); // rolled back with the refusal: nothing after it took effect

    // The ledger of a newer version, the feed missing: a drainer (which would set the feed up) is refused, and the
    // identity function the two share is left as that version made it.
    await remote.sql.unsafe(
      `DROP TABLE _ominipg_feed, _ominipg_feed_state, _ominipg_feed_clients CASCADE;
       COMMENT ON TABLE _ominipg_ledger IS 'ominipg ledger v99'`,
    );
    await expect(Ominipg.feed(remote.url)).rejects.toThrow(/set up by a newer Ominipg than this one/);
    expect(await remote.sql`SELECT public._ominipg_identity() AS id`).toEqual([{ id: "v99 identity" }]);
  });
});
