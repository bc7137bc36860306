/**
 * Section 7, the remote work of idle pulls: per table size, a database of its own holding the section's table
 * (ids 1..n), its change feed set up by a first client (the server's superuser, sync.feed "auto": every client
 * drains the feed itself before each pull, one at a time under the drain lock, the others skip). That client's
 * in-memory database, once pulled, is dumped; every measured client is a new Ominipg client loaded from the
 * dump (its own client id, at the feed position of the dump), as a copied data directory would be.
 *
 * Clients open at most `wave` at a time (each is a PGlite instance: ~150-250 MB of memory): 1 and `wave`
 * clients are one wave; a larger count (100) is that many distinct clients in successive waves of `wave`
 * pulling at the same time. Each client makes one warm-up pull (its first: where the once-a-minute slot
 * health check and trim, and its registration as a reader, fall), then `rounds` idle pulls, all the wave's
 * clients at once (a single client makes max(rounds, 10)). Between the two, each client of the wave pulls once
 * more, alone: the warm-up's own remote writes (registrations as readers, trims) are decoded by the next drain,
 * and without this the first measured pulls decoded them (a one-off of 200-500 blocks, by how the wave's pulls
 * interleaved, which made one client's 10 pulls 57-100 blocks each at either table size; 29 each once settled).
 * Every idle pull must be a "feed" pull that wrote nothing. As a contrast, one client with `feed: "off"` makes `diffPulls` idle pulls (the hash diff).
 *
 * Remote work = what pg_stat_statements (track = top, this database only) counts between a reset and the end
 * of the rounds: statements (BEGIN, SET, FETCH... included), rows they returned, blocks they touched (shared
 * and local, hit or read: the rows read), and their execution time on the server; divided by the pulls.
 * Client ms = the median time of one pull() as the client saw it (the wave's pulls share one Node thread).
 */
import type { PGlite } from "@electric-sql/pglite";
import type postgres from "postgres";
import type { Ominipg } from "../src/index.js";
import { rawDriver } from "./lib/contenders.js";
import { connect, expectIdle, expectStrategy, fillSql, PULL_DDL, pullTable } from "./lib/pull-items.js";
import { createDatabase, dropFeedSlots, rawClient, type RemoteServer } from "./lib/remote.js";
import { int, median, now, num } from "./lib/stats.js";

export interface IdleConfig {
  /** Remote table sizes, rows. */
  sizes: number[];
  /** Client counts measured. */
  clients: number[];
  /** At most this many clients open at once. */
  wave: number;
  /** Idle pulls per client per measurement. */
  rounds: number;
  /** Idle pulls of the hash diff's client per size. */
  diffPulls: number;
  template: Blob;
  log: (line: string) => void;
}

export interface IdleMeasure {
  rows: number;
  strategy: "feed" | "diff";
  clients: number;
  /** Most clients pulling at the same time. */
  concurrent: number;
  pulls: number;
  /** Totals over the pulls. */
  statements: number;
  rowsReturned: number;
  blocks: number;
  serverMs: number;
  /** Median pull() time as the clients saw it, ms. */
  clientMs: number;
}

const RESET = `SELECT pg_stat_statements_reset()`;
const READ = `SELECT coalesce(sum(calls), 0)::float8 AS calls, coalesce(sum(rows), 0)::float8 AS rows,
  coalesce(sum(shared_blks_hit + shared_blks_read + local_blks_hit + local_blks_read), 0)::float8 AS blocks,
  coalesce(sum(total_exec_time), 0)::float8 AS ms
  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%pg_stat_statements%'`;

export async function runIdle(server: RemoteServer, cfg: IdleConfig): Promise<IdleMeasure[]> {
  const out: IdleMeasure[] = [];
  for (const rows of cfg.sizes) out.push(...(await idleAt(server, cfg, rows)));
  return out;
}

async function idleAt(server: RemoteServer, cfg: IdleConfig, rows: number): Promise<IdleMeasure[]> {
  const started = now();
  const database = `bench_idle_${rows}`;
  const url = await createDatabase(server, database);
  const admin = rawClient(url, 1);
  const open = new Set<Ominipg>();
  const out: IdleMeasure[] = [];
  const client = async (dump: Blob, feed: "auto" | "off") => {
    const c = await connect(url, dump, feed);
    open.add(c);
    return c;
  };
  const close = async (cs: Ominipg[]) => {
    for (const c of cs) {
      open.delete(c);
      await c.close();
    }
  };
  try {
    await admin.unsafe(PULL_DDL);
    await admin.unsafe(fillSql(rows));
    await admin.unsafe(`VACUUM ANALYZE pull_items`);
    await admin.unsafe(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`);
    await admin.unsafe(`ALTER DATABASE ${database} SET pg_stat_statements.track = 'top'`); // new sessions

    // The first client sets the feed up and copies the table; its database is every other client's start.
    const seed = await client(cfg.template, "auto");
    expectStrategy(await seed.pull(), "copy", "the idle clients' first pull");
    expectIdle(await seed.pull(), "feed", "the idle clients' second pull");
    const pglite = (rawDriver(seed) as unknown as { pglite: PGlite }).pglite;
    const dump = (await pglite.dumpDataDir("none")) as Blob;
    await close([seed]);

    const diff = await client(dump, "off");
    out.push(result(rows, 1, 1, await measure(admin, [diff], cfg.diffPulls, "diff")));
    await close([diff]);

    const most = Math.max(...cfg.clients);
    const totals = new Map<number, { work: Work; concurrent: number }>();
    const add = (n: number, concurrent: number, w: Work) => {
      const t = totals.get(n);
      if (!t) return totals.set(n, { work: w, concurrent });
      t.concurrent = Math.max(t.concurrent, concurrent);
      t.work.pulls += w.pulls;
      t.work.statements += w.statements;
      t.work.rowsReturned += w.rowsReturned;
      t.work.blocks += w.blocks;
      t.work.serverMs += w.serverMs;
      t.work.durations.push(...w.durations);
    };
    for (let opened = 0; opened < most;) {
      const first = opened;
      const wave: Ominipg[] = [];
      for (let i = 0; i < Math.min(cfg.wave, most - first); i++) wave.push(await client(dump, "auto"));
      opened += wave.length;
      // Not measured, so a diff is accepted: after the wave's opening (over 30 s under load at 200,000 rows) the
      // feed is stale, and a client that found the drain lock taken may take its snapshot before the drain's commit.
      for (const r of await Promise.all(wave.map((c) => c.pull())))
        expectIdle(r, pullTable(r)?.strategy === "diff" ? "diff" : "feed", "a warm-up pull");
      // Then one at a time, so each drains for sure: the feed is drained of what the warm-up wrote (registrations).
      for (const c of wave) expectIdle(await c.pull(), "feed", "a settling pull");
      for (const n of cfg.clients) {
        if (n <= cfg.wave) {
          if (first > 0) continue;
          add(n, n, await measure(admin, wave.slice(0, n), n === 1 ? Math.max(cfg.rounds, 10) : cfg.rounds, "feed"));
        } else if (first < n) {
          const some = wave.slice(0, n - first);
          add(n, some.length, await measure(admin, some, cfg.rounds, "feed"));
        }
      }
      await close(wave);
    }
    for (const n of cfg.clients) {
      const t = totals.get(n)!;
      out.push(result(rows, n, t.concurrent, t.work));
    }
    for (const m of out)
      cfg.log(
        `pull: idle, ${int(rows)} rows, ${m.strategy}, ${m.clients} client(s) (${m.concurrent} at once): ` +
          `${int(m.pulls)} pulls, per pull ${num(m.statements / m.pulls)} statements, ${num(m.blocks / m.pulls)} blocks, ` +
          `${num(m.serverMs / m.pulls)} ms on the server, ${num(m.clientMs)} ms pull()`,
      );
    cfg.log(`pull: idle, ${int(rows)} rows measured in ${num((now() - started) / 1000)} s`);
    return out;
  } finally {
    await close([...open]).catch(() => {});
    await dropFeedSlots(admin).catch(() => {});
    await admin.end({ timeout: 5 });
  }
}

interface Work {
  strategy: "feed" | "diff";
  pulls: number;
  statements: number;
  rowsReturned: number;
  blocks: number;
  serverMs: number;
  /** pull() times as the clients saw them, ms. */
  durations: number[];
}

function result(rows: number, clients: number, concurrent: number, w: Work): IdleMeasure {
  const { durations, ...work } = w;
  return { ...work, rows, clients, concurrent, clientMs: median(durations) };
}

/** `rounds` times, every client pulls at once; what the server did meanwhile (pg_stat_statements). */
async function measure(
  admin: postgres.Sql,
  clients: Ominipg[],
  rounds: number,
  strategy: "feed" | "diff",
): Promise<Work> {
  await admin.unsafe(RESET);
  const durations: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const results = await Promise.all(
      clients.map(async (c) => {
        const start = now();
        const result = await c.pull();
        return { result, ms: now() - start };
      }),
    );
    for (const { result, ms } of results) {
      expectIdle(result, strategy, `an idle pull (${strategy})`);
      durations.push(ms);
    }
  }
  const [w] = await admin.unsafe<{ calls: number; rows: number; blocks: number; ms: number }[]>(READ);
  return {
    strategy,
    pulls: clients.length * rounds,
    statements: Number(w!.calls),
    rowsReturned: Number(w!.rows),
    blocks: Number(w!.blocks),
    serverMs: Number(w!.ms),
    durations,
  };
}
