/**
 * Section 4: sync() throughput into a PostgreSQL on loopback, against one raw COPY of the same rows
 * (the floor: nothing but moving the bytes) measured in the same run, alternating which goes first.
 */
import type postgres from "postgres";
import { Ominipg } from "../src/index.js";
import { type SyncResult } from "../src/push/types.js";
import { rawDriver } from "./lib/contenders.js";
import { createDatabase, copyIn, rawClient, type RemoteServer } from "./lib/remote.js";
import { COPY_ITEMS, ITEMS_DDL, bulk, copyText } from "./lib/schema.js";
import { now } from "./lib/stats.js";

export interface PushConfig {
  inserts: number;
  updateRows: number;
  updatesPerRow: number;
  runs: number;
  warmup: number;
  template?: Blob;
  log: (line: string) => void;
}

export interface PushRun {
  copyMs: number;
  insertSyncMs: number;
  insert: SyncResult;
  updateSyncMs: number;
  update: SyncResult;
}

export interface PushResult {
  runs: PushRun[];
  config: PushConfig;
}

export async function runPush(server: RemoteServer, cfg: PushConfig): Promise<PushResult> {
  const url = await createDatabase(server, "bench_push");
  const remote = rawClient(url, 2);
  await remote.unsafe(ITEMS_DDL);
  const db = await Ominipg.connect({
    url: ":memory:",
    syncUrl: url,
    schemaSQL: [ITEMS_DDL],
    ...(cfg.template ? { loadDataDir: cfg.template } : {}),
  });
  db.on("error", () => {});
  const local = rawDriver(db);
  const runs: PushRun[] = [];
  try {
    await db.sync(); // remote set-up, schema check, ledger: once, as any app's first sync
    const copyData = copyText(1, cfg.inserts, new Date().toISOString());
    const total = cfg.warmup + cfg.runs;
    for (let run = 0; run < total; run++) {
      // --- 100,000 pending inserts vs one COPY of the same rows ---
      await local.exec("TRUNCATE items, _sync_queue");
      await db.query(bulk(cfg.inserts).insert); // captured: `inserts` pending changes
      await expectPending(db, cfg.inserts);
      let copyMs = 0;
      let insertSyncMs = 0;
      let insert: SyncResult | undefined;
      const doSync = async () => {
        await remote.unsafe("TRUNCATE items");
        const start = now();
        insert = await db.sync();
        insertSyncMs = now() - start;
        await expectPending(db, 0);
        await expectSameRows(db, remote);
      };
      const doCopy = async () => {
        await remote.unsafe("TRUNCATE items");
        const start = now();
        await copyIn(remote, COPY_ITEMS, copyData);
        copyMs = now() - start;
        await expectRemote(remote, cfg.inserts, "the COPY");
      };
      if (run % 2 === 0) {
        await doSync();
        await doCopy();
      } else {
        await doCopy();
        await doSync();
      }

      // --- `updateRows * updatesPerRow` pending updates over `updateRows` rows ---
      await local.exec("TRUNCATE items, _sync_queue");
      await remote.unsafe("TRUNCATE items");
      const seed = bulk(cfg.updateRows).insert;
      await local.exec(seed); // the same rows on both sides, not captured
      await remote.unsafe(seed);
      for (let u = 0; u < cfg.updatesPerRow; u++) await db.query(bulk(cfg.updateRows).update);
      await expectPending(db, cfg.updateRows * cfg.updatesPerRow);
      const start = now();
      const update = await db.sync();
      const updateSyncMs = now() - start;
      await expectPending(db, 0);
      await expectSameRows(db, remote);

      if (!insert) throw new Error("no insert sync result");
      if (run >= cfg.warmup) runs.push({ copyMs, insertSyncMs, insert, updateSyncMs, update });
      cfg.log(
        `push: run ${run + 1}/${total}${run < cfg.warmup ? " (warm-up)" : ""}: COPY ${copyMs.toFixed(0)} ms, ` +
          `sync inserts ${insertSyncMs.toFixed(0)} ms (${insert.batches} batches, ${insert.applied} writes), ` +
          `sync updates ${updateSyncMs.toFixed(0)} ms (${update.pushed} entries, ${update.batches} batches, ${update.applied} writes)`,
      );
    }
  } finally {
    await db.close().catch(() => {});
    await remote.end({ timeout: 5 });
  }
  return { runs, config: cfg };
}

async function expectPending(db: Ominipg, n: number): Promise<void> {
  const { rows } = await rawDriver(db).query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`, [], {
    prepare: false,
  });
  if (rows[0]!.n !== n) throw new Error(`expected ${n} pending changes, found ${rows[0]!.n}`);
}

async function expectRemote(remote: postgres.Sql, n: number, after: string): Promise<void> {
  const [row] = await remote.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM items`);
  if (row!.n !== n) throw new Error(`after ${after} the remote holds ${row!.n} rows, expected ${n}`);
}

/** The remote's rows must end up exactly as the local ones (the bench checks the pushed result, not only the speed). */
async function expectSameRows(db: Ominipg, remote: postgres.Sql): Promise<void> {
  const q =
    `SELECT count(*)::int AS n, md5(coalesce(string_agg(id || ':' || name || ':' || qty || ':' || price || ':' || ` +
    `(extract(epoch FROM updated_at) * 1000000)::int8, ',' ORDER BY id), '')) AS h FROM items`;
  const { rows } = await rawDriver(db).query<{ n: number; h: string }>(q, [], { prepare: false });
  const [r] = await remote.unsafe<{ n: number; h: string }[]>(q);
  const l = rows[0]!;
  if (l.n !== r!.n || l.h !== r!.h)
    throw new Error(
      `after sync() the remote differs from the local table: local ${l.n} rows (${l.h}), remote ${r!.n} rows (${r!.h})`,
    );
}
