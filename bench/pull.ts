/**
 * Section 7: pull() from a PostgreSQL on loopback into a new in-memory database, side by side with the raw path
 * (the remote's `COPY ... TO STDOUT` into a Buffer, then one PGlite `COPY ... FROM '/dev/blob'` into the table
 * with its primary key), measured in the same run, contenders rotated from run to run. Then, on the pulled
 * client, a pull with nothing changed and one after 1% of the rows changed. The raw path runs twice: on
 * `new PGlite()` as it comes (the naive path, the baseline), and on a PGlite started the way Ominipg
 * starts an in-memory database (`file_extend_method = write_zeros`, local/new-database.ts), so the share of
 * that setting in the ratio shows.
 *
 * Live latency and the remote work of idle pulls with 1, 10 and 100 clients belong to the change feed: their
 * rows read "n/a" until a measurement fills `PullResult.feed`.
 */
import { PGlite } from "@electric-sql/pglite";
import type postgres from "postgres";
import { Ominipg } from "../src/index.js";
import { copyOut, createDatabase, rawClient, type RemoteServer } from "./lib/remote.js";
import { int, median, now, num, ratio, rotate } from "./lib/stats.js";
import type { Table } from "./lib/table.js";

export const TARGET_INITIAL_VS_RAW = 1.5;
export const TARGET_NO_CHANGE = 0.03;
export const TARGET_CHANGED = 0.06;
export const TARGET_LIVE_MS = 1000;

const DDL = `CREATE TABLE IF NOT EXISTS pull_items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL, meta jsonb)`;
const COLUMNS = "id, name, qty, meta";

export interface PullConfig {
  rows: number;
  runs: number;
  template: Blob;
  log: (line: string) => void;
}

export interface PullRun {
  /** Raw path on `new PGlite()` with its defaults. */
  rawMs: number;
  /** Raw path on a PGlite started as Ominipg starts an in-memory database. */
  rawSameMs: number;
  initialMs: number;
  noChangeMs: number;
  changedMs: number;
  /** Rows the 1%-changed pull wrote locally. */
  changedRows: number;
}

/** What the change feed's measurements add (not measured by this section). */
export interface FeedMeasures {
  /** Remote commit to local visibility, median (ms). */
  liveMs?: number;
  /** Remote work (e.g. ms of server time or rows read) per idle pull, with 1, 10 and 100 clients. */
  idleWork?: { clients: number; work: string }[];
}

export interface PullResult {
  runs: PullRun[];
  config: Omit<PullConfig, "template" | "log">;
  feed?: FeedMeasures;
}

export async function runPull(server: RemoteServer, cfg: PullConfig): Promise<PullResult> {
  const url = await createDatabase(server, "bench_pull");
  const remote = rawClient(url, 2);
  const runs: PullRun[] = [];
  try {
    await remote.unsafe(DDL);
    await remote.unsafe(
      `INSERT INTO pull_items SELECT g, 'item number ' || g, g % 1000, jsonb_build_object('g', g, 'tag', 't' || (g % 97),
         'note', repeat('x', 40), 'arr', jsonb_build_array(g % 7, 'y', null), 'ok', g % 2 = 0) FROM generate_series(1, ${cfg.rows}) g`,
    );
    await remote.unsafe(`VACUUM ANALYZE pull_items`);
    for (let run = 0; run < cfg.runs; run++) {
      const r: Partial<PullRun> = {};
      let client: Ominipg | undefined;
      try {
        for (const step of rotate(["raw", "rawSame", "pull"] as const, run)) {
          if (step === "raw") r.rawMs = await rawPath(remote, cfg, false);
          else if (step === "rawSame") r.rawSameMs = await rawPath(remote, cfg, true);
          else {
            client = await Ominipg.connect({ loadDataDir: cfg.template, syncUrl: url, schemaSQL: [DDL] });
            client.on("error", () => {});
            await client.sync(); // the remote set-up, once, as any app's first sync
            const start = now();
            const initial = await client.pull();
            r.initialMs = now() - start;
            expectCopied(initial.tables["public.pull_items"], cfg.rows);
          }
        }
        const db = client!;
        let start = now();
        const same = await db.pull();
        r.noChangeMs = now() - start;
        if (same.tables["public.pull_items"]?.upserted !== 0) throw new Error("a pull with nothing changed wrote rows");
        await remote.unsafe(`UPDATE pull_items SET qty = qty + 1 WHERE id % 100 = ${run % 100}`);
        start = now();
        const changed = await db.pull();
        r.changedMs = now() - start;
        r.changedRows = changed.tables["public.pull_items"]?.upserted ?? 0;
        await expectSameRows(db, remote);
      } finally {
        await client?.close().catch(() => {});
      }
      runs.push(r as PullRun);
      cfg.log(
        `pull: run ${run + 1}/${cfg.runs}: raw ${num(r.rawMs!)} ms (same settings ${num(r.rawSameMs!)} ms), ` +
          `initial pull ${num(r.initialMs!)} ms, no change ${num(r.noChangeMs!)} ms, 1% changed ${num(r.changedMs!)} ms (${int(r.changedRows!)} rows)`,
      );
    }
  } finally {
    await remote.end({ timeout: 5 });
  }
  return { runs, config: { rows: cfg.rows, runs: cfg.runs } };
}

/** The remote table as COPY text into a Buffer, then one COPY from PGlite's /dev/blob into the keyed table. */
async function rawPath(remote: postgres.Sql, cfg: PullConfig, sameSettings: boolean): Promise<number> {
  const startParams = [...PGlite.defaultStartParams, "-c", "file_extend_method=write_zeros"];
  const pg = await PGlite.create({ loadDataDir: cfg.template, ...(sameSettings ? { startParams } : {}) });
  try {
    await pg.exec(DDL);
    const start = now();
    const text = await copyOut(remote, `COPY (SELECT ${COLUMNS} FROM pull_items) TO STDOUT`);
    await pg.query(`COPY pull_items (${COLUMNS}) FROM '/dev/blob'`, [], { blob: new Blob([text]) });
    const ms = now() - start;
    const { rows } = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM pull_items`);
    if (rows[0]!.n !== cfg.rows) throw new Error(`the raw path loaded ${rows[0]!.n} rows, expected ${cfg.rows}`);
    return ms;
  } finally {
    await pg.close();
  }
}

function expectCopied(t: { strategy: string; upserted: number } | undefined, rows: number): void {
  if (t?.strategy !== "copy" || t.upserted !== rows)
    throw new Error(`the initial pull did not copy ${rows} rows: ${JSON.stringify(t)}`);
}

/** The local table must end up exactly as the remote one (the bench checks the result, not only the speed). */
async function expectSameRows(db: Ominipg, remote: postgres.Sql): Promise<void> {
  const q = `SELECT count(*)::int AS n, md5(string_agg(id || ':' || name || ':' || qty || ':' || meta::text, ',' ORDER BY id)) AS h FROM pull_items`;
  const local = (await db.query<{ n: number; h: string }>(q)).rows[0]!;
  const [theirs] = await remote.unsafe<{ n: number; h: string }[]>(q);
  if (local.n !== theirs!.n || local.h !== theirs!.h)
    throw new Error(
      `after pull() the local table differs: ${local.n} rows (${local.h}) vs ${theirs!.n} (${theirs!.h})`,
    );
}

function stats(p: PullResult) {
  const m = (f: (r: PullRun) => number) => median(p.runs.map(f));
  return {
    rawMs: m((r) => r.rawMs),
    rawSameMs: m((r) => r.rawSameMs),
    initialMs: m((r) => r.initialMs),
    noChangeMs: m((r) => r.noChangeMs),
    changedMs: m((r) => r.changedMs),
    vsRaw: m((r) => r.rawMs / r.initialMs),
    vsRawSame: m((r) => r.rawSameMs / r.initialMs),
    noChange: m((r) => r.noChangeMs / r.initialMs),
    changed: m((r) => r.changedMs / r.initialMs),
  };
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "n/a");

export function pullTargets(
  p: PullResult,
): { measure: string; result: string; target: string; met: boolean | undefined }[] {
  const s = stats(p);
  const rows = int(p.config.rows);
  const feed = p.feed ?? {};
  return [
    {
      measure: `Initial \`pull()\` of ${rows} rows vs the raw path (remote COPY TO STDOUT into a Buffer + PGlite COPY FROM '/dev/blob' into the keyed table, \`new PGlite()\`)`,
      result: `${ratio(s.vsRaw)} (${num(s.initialMs)} vs ${num(s.rawMs)} ms)`,
      target: `≥ ${TARGET_INITIAL_VS_RAW.toFixed(1)}x`,
      met: s.vsRaw >= TARGET_INITIAL_VS_RAW,
    },
    {
      measure: `Initial \`pull()\` vs the same raw path on a PGlite started as Ominipg starts one (write_zeros)`,
      result: `${ratio(s.vsRawSame)} (${num(s.initialMs)} vs ${num(s.rawSameMs)} ms)`,
      target: "(no target)",
      met: undefined,
    },
    {
      measure: `\`pull()\` with nothing changed, share of the initial pull's time (hash diff; the change feed is not in this section)`,
      result: `${pct(s.noChange)} (${num(s.noChangeMs)} ms)`,
      target: `≤ ${pct(TARGET_NO_CHANGE)}`,
      met: s.noChange <= TARGET_NO_CHANGE,
    },
    {
      measure: `\`pull()\` after 1% of the rows changed, share of the initial pull's time (hash diff)`,
      result: `${pct(s.changed)} (${num(s.changedMs)} ms)`,
      target: `≤ ${pct(TARGET_CHANGED)}`,
      met: s.changed <= TARGET_CHANGED,
    },
    {
      measure: "Live latency, remote commit to local visibility (change feed)",
      result: feed.liveMs === undefined ? "n/a (not measured here)" : `${num(feed.liveMs)} ms`,
      target: `≤ ${num(TARGET_LIVE_MS)} ms`,
      met: feed.liveMs === undefined ? undefined : feed.liveMs <= TARGET_LIVE_MS,
    },
    {
      measure: "Remote work per idle pull with 1, 10 and 100 clients (change feed)",
      result: feed.idleWork
        ? feed.idleWork.map((w) => `${w.clients}: ${w.work}`).join(", ")
        : "n/a (not measured here)",
      target: "independent of table size",
      met: undefined,
    },
  ];
}

export function pullTable(p: PullResult): Table {
  const s = stats(p);
  const n = p.config.rows;
  const rate = (ms: number) => int((n / ms) * 1000);
  const share = (f: (r: PullRun) => number) => pct(median(p.runs.map(f)));
  return {
    title: `7. Pull from PostgreSQL on loopback into a new in-memory database, ${int(n)} rows (median of runs)`,
    headers: ["what", "ms", "rows/s", "vs initial pull"],
    rows: [
      [
        "raw path: remote COPY TO STDOUT into a Buffer + PGlite COPY FROM '/dev/blob' into the keyed table (`new PGlite()`)",
        num(s.rawMs),
        rate(s.rawMs),
        ratio(median(p.runs.map((r) => r.rawMs / r.initialMs))),
      ],
      [
        "the same raw path, PGlite started as Ominipg starts one (`file_extend_method = write_zeros`)",
        num(s.rawSameMs),
        rate(s.rawSameMs),
        ratio(median(p.runs.map((r) => r.rawSameMs / r.initialMs))),
      ],
      ["initial `pull()` (COPY ranges of the key)", num(s.initialMs), rate(s.initialMs), "1.00x"],
      ["`pull()`, nothing changed", num(s.noChangeMs), "—", share((r) => r.noChangeMs / r.initialMs)],
      [
        `\`pull()\` after ${int(n / 100)} rows (1%) changed remotely (${int(median(p.runs.map((r) => r.changedRows)))} written)`,
        num(s.changedMs),
        "—",
        share((r) => r.changedMs / r.initialMs),
      ],
    ],
    alignRight: [false, true, true, true],
    notes: [
      "vs initial pull = time / the initial pull's time in the same run (per-run ratio, median): below 1.00x is faster than the pull.",
      "Every pull is checked against the remote (row count and a digest of every row) after the 1%-changed pull.",
    ],
  };
}
