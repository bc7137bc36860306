/**
 * Section 7: pull() from a PostgreSQL on loopback (run with wal_level=logical: the change feed, docs/SYNC.md).
 *
 * Per run, side by side and rotated from run to run: the initial pull() of the whole table into a new in-memory
 * database, the raw path (the remote's `COPY ... TO STDOUT` into a Buffer, then one PGlite `COPY ... FROM
 * '/dev/blob'` into the table with its primary key) on `new PGlite()` as it comes (the naive path, the issue's
 * baseline), and the same raw path on a PGlite started the way Ominipg starts an in-memory database
 * (`file_extend_method = write_zeros`, local/new-database.ts). Then, on that client (sync.feed "auto", the
 * default: its role is the server's superuser, so it drains the feed itself before each pull), a pull with
 * nothing changed and one after 1% of the rows changed, which must go through the change feed (strategy
 * "feed", or the section fails); beside each, the same pull on a second client with `feed: "off"` (the hash
 * diff), the two in rotated order. Both clients are checked against the remote (row count and a digest of every
 * row) after the 1%-changed pulls. The feed's slot is set up once before the runs (`Ominipg.feed()`, started and
 * stopped), and the remote writes commit with `synchronous_commit = on` (lib/pull-items.ts: remoteWrite).
 *
 * Then, once: the live latency (pull-live.ts) and the remote work of idle pulls with 1, 10 and 100 clients at two
 * table sizes (pull-idle.ts). Tables and targets: pull-report.ts.
 */
import { PGlite } from "@electric-sql/pglite";
import type postgres from "postgres";
import { Ominipg, type PullResult as OminipgPull } from "../src/index.js";
import { copyOut, createDatabase, dropFeedSlots, rawClient, type RemoteServer } from "./lib/remote.js";
import { int, median, now, num, percentile, rotate } from "./lib/stats.js";
import {
  connect,
  expectIdle,
  expectSameRows,
  expectStrategy,
  fillSql,
  PULL_COLUMNS,
  PULL_DDL,
  pullTable as table,
  remoteWrite,
} from "./lib/pull-items.js";
import { runIdle, type IdleConfig, type IdleMeasure } from "./pull-idle.js";
import { runLive, type LiveResult } from "./pull-live.js";

export interface PullConfig {
  rows: number;
  runs: number;
  /** Remote updates whose local visibility the live client's latency is measured on (0: not measured). */
  liveUpdates: number;
  /** The idle pulls' remote work (undefined: not measured). */
  idle: Omit<IdleConfig, "template" | "log"> | undefined;
  template: Blob;
  log: (line: string) => void;
}

export interface PullRun {
  /** Raw path on `new PGlite()` with its defaults. */
  rawMs: number;
  /** Raw path on a PGlite started as Ominipg starts an in-memory database. */
  rawSameMs: number;
  initialMs: number;
  /** The change feed's pulls (sync.feed "auto"). */
  noChangeMs: number;
  changedMs: number;
  /** Rows the 1%-changed pull wrote locally. */
  changedRows: number;
  /** The same pulls by the hash diff, on a client with `feed: "off"`. */
  diffNoChangeMs: number;
  diffChangedMs: number;
}

export interface PullResult {
  runs: PullRun[];
  config: Pick<PullConfig, "rows" | "runs" | "liveUpdates" | "idle">;
  live?: LiveResult;
  idle?: IdleMeasure[];
}

export async function runPull(server: RemoteServer, cfg: PullConfig): Promise<PullResult> {
  const url = await createDatabase(server, "bench_pull");
  const remote = rawClient(url, 2);
  const runs: PullRun[] = [];
  const result: PullResult = {
    runs,
    config: { rows: cfg.rows, runs: cfg.runs, liveUpdates: cfg.liveUpdates, idle: cfg.idle },
  };
  const changed = Math.floor(cfg.rows / 100);
  try {
    await remote.unsafe(PULL_DDL);
    await remote.unsafe(fillSql(cfg.rows));
    await remote.unsafe(`VACUUM ANALYZE pull_items`);
    // The feed's slot is made once, before the runs (it waits for running transactions; not part of any pull).
    await (await Ominipg.feed(url)).stop();
    for (let run = 0; run < cfg.runs; run++) {
      const r: Partial<PullRun> = {};
      let feedClient: Ominipg | undefined;
      let diffClient: Ominipg | undefined;
      try {
        for (const step of rotate(["raw", "rawSame", "pull"] as const, run)) {
          if (step === "raw") r.rawMs = await rawPath(remote, cfg, false);
          else if (step === "rawSame") r.rawSameMs = await rawPath(remote, cfg, true);
          else {
            feedClient = await connect(url, cfg.template, "auto");
            await feedClient.sync(); // the remote set-up, once, as any app's first sync
            const start = now();
            const initial = await feedClient.pull();
            r.initialMs = now() - start;
            expectCopied(initial, cfg.rows);
          }
        }
        // The hash diff's client (untimed initial copy).
        diffClient = await connect(url, cfg.template, "off");
        await diffClient.sync();
        expectCopied(await diffClient.pull(), cfg.rows);
        const clients = { feed: feedClient!, diff: diffClient };

        for (const kind of rotate(["feed", "diff"] as const, run)) {
          const start = now();
          const same = await clients[kind].pull();
          const ms = now() - start;
          expectIdle(same, kind, `pull() with nothing changed (${kind})`);
          if (kind === "feed") r.noChangeMs = ms;
          else r.diffNoChangeMs = ms;
        }
        await remoteWrite(remote, `UPDATE pull_items SET qty = qty + 1 WHERE id % 100 = ${run % 100}`);
        for (const kind of rotate(["feed", "diff"] as const, run + 1)) {
          const start = now();
          const after = await clients[kind].pull();
          const ms = now() - start;
          expectStrategy(after, kind, `pull() after 1% changed (${kind})`);
          if (table(after)!.upserted !== changed)
            throw new Error(`the 1%-changed pull (${kind}) wrote ${table(after)!.upserted} rows, expected ${changed}`);
          if (kind === "feed") {
            r.changedMs = ms;
            r.changedRows = table(after)!.upserted;
          } else r.diffChangedMs = ms;
        }
        await expectSameRows(clients.feed, remote);
        await expectSameRows(clients.diff, remote);
      } finally {
        await feedClient?.close().catch(() => {});
        await diffClient?.close().catch(() => {});
      }
      runs.push(r as PullRun);
      cfg.log(
        `pull: run ${run + 1}/${cfg.runs}: raw ${num(r.rawMs!)} ms (same settings ${num(r.rawSameMs!)} ms), ` +
          `initial pull ${num(r.initialMs!)} ms; no change: feed ${num(r.noChangeMs!)} ms, diff ${num(r.diffNoChangeMs!)} ms; ` +
          `1% changed (${int(r.changedRows!)} rows): feed ${num(r.changedMs!)} ms, diff ${num(r.diffChangedMs!)} ms`,
      );
    }
    if (cfg.liveUpdates > 0) {
      result.live = await runLive(url, remote, { updates: cfg.liveUpdates, rows: cfg.rows, template: cfg.template });
      cfg.log(
        `pull: live latency over ${cfg.liveUpdates} updates: median ${num(median(result.live.latenciesMs))} ms, ` +
          `p95 ${num(percentile(result.live.latenciesMs, 95))} ms`,
      );
    }
  } finally {
    await dropFeedSlots(remote).catch(() => {}); // a slot nobody drains keeps WAL
    await remote.end({ timeout: 5 });
  }
  if (cfg.idle) result.idle = await runIdle(server, { ...cfg.idle, template: cfg.template, log: cfg.log });
  return result;
}

/** The remote table as COPY text into a Buffer, then one COPY from PGlite's /dev/blob into the keyed table. */
async function rawPath(remote: postgres.Sql, cfg: PullConfig, sameSettings: boolean): Promise<number> {
  const startParams = [...PGlite.defaultStartParams, "-c", "file_extend_method=write_zeros"];
  const pg = await PGlite.create({ loadDataDir: cfg.template, ...(sameSettings ? { startParams } : {}) });
  try {
    await pg.exec(PULL_DDL);
    const start = now();
    const text = await copyOut(remote, `COPY (SELECT ${PULL_COLUMNS} FROM pull_items) TO STDOUT`);
    await pg.query(`COPY pull_items (${PULL_COLUMNS}) FROM '/dev/blob'`, [], { blob: new Blob([text]) });
    const ms = now() - start;
    const { rows } = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM pull_items`);
    if (rows[0]!.n !== cfg.rows) throw new Error(`the raw path loaded ${rows[0]!.n} rows, expected ${cfg.rows}`);
    return ms;
  } finally {
    await pg.close();
  }
}

function expectCopied(r: OminipgPull, rows: number): void {
  const t = table(r);
  if (t?.strategy !== "copy" || t.upserted !== rows)
    throw new Error(`the initial pull did not copy ${rows} rows: ${JSON.stringify(t)}`);
}
