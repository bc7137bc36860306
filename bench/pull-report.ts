/** Section 7's headline rows and tables. */
import { int, median, num, percentile, ratio } from "./lib/stats.js";
import type { Table } from "./lib/table.js";
import type { IdleMeasure } from "./pull-idle.js";
import type { PullResult, PullRun } from "./pull.js";

export const TARGET_INITIAL_VS_RAW = 1.5;
export const TARGET_NO_CHANGE = 0.03;
export const TARGET_CHANGED = 0.06;
export const TARGET_LIVE_MS = 1000;
/**
 * Blocks an idle pull touches on the server when the table is several times larger: at most this many times
 * more, or this many more (a few pages of decoded WAL or catalog make small counts jump).
 */
export const TARGET_IDLE_GROWTH = 1.5;
export const TARGET_IDLE_SLACK = 20;

interface Target {
  measure: string;
  result: string;
  target: string;
  met: boolean | undefined;
}

function stats(p: PullResult) {
  const m = (f: (r: PullRun) => number) => median(p.runs.map(f));
  return {
    rawMs: m((r) => r.rawMs),
    rawSameMs: m((r) => r.rawSameMs),
    initialMs: m((r) => r.initialMs),
    noChangeMs: m((r) => r.noChangeMs),
    changedMs: m((r) => r.changedMs),
    diffNoChangeMs: m((r) => r.diffNoChangeMs),
    diffChangedMs: m((r) => r.diffChangedMs),
    vsRaw: m((r) => r.rawMs / r.initialMs),
    vsRawSame: m((r) => r.rawSameMs / r.initialMs),
    noChange: m((r) => r.noChangeMs / r.initialMs),
    changed: m((r) => r.changedMs / r.initialMs),
    diffNoChange: m((r) => r.diffNoChangeMs / r.initialMs),
    diffChanged: m((r) => r.diffChangedMs / r.initialMs),
    feedVsDiffNoChange: m((r) => r.diffNoChangeMs / r.noChangeMs),
    feedVsDiffChanged: m((r) => r.diffChangedMs / r.changedMs),
  };
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "n/a");
const perPull = (m: IdleMeasure, total: number) => num(total / m.pulls);

/** Per client count, the feed's idle pulls at the smallest and the largest table size. */
function idleBySize(idle: IdleMeasure[]) {
  const sizes = [...new Set(idle.map((m) => m.rows))].sort((a, b) => a - b);
  const small = sizes[0]!;
  const large = sizes[sizes.length - 1]!;
  const at = (rows: number, strategy: string, clients: number) =>
    idle.find((m) => m.rows === rows && m.strategy === strategy && m.clients === clients);
  const counts = [...new Set(idle.filter((m) => m.strategy === "feed").map((m) => m.clients))].sort((a, b) => a - b);
  const pairs = counts.map((clients) => ({
    clients,
    small: at(small, "feed", clients)!,
    large: at(large, "feed", clients)!,
  }));
  return { small, large, pairs, diff: { small: at(small, "diff", 1), large: at(large, "diff", 1) } };
}

const blocksPerPull = (m: IdleMeasure) => m.blocks / m.pulls;
const growth = (small: IdleMeasure, large: IdleMeasure) => blocksPerPull(large) / blocksPerPull(small);
const idleMet = (small: IdleMeasure, large: IdleMeasure) =>
  blocksPerPull(large) <= Math.max(TARGET_IDLE_GROWTH * blocksPerPull(small), blocksPerPull(small) + TARGET_IDLE_SLACK);

function liveTarget(p: PullResult): Target {
  const live = p.live;
  const lat = live?.latenciesMs ?? [];
  const p95 = percentile(lat, 95);
  return {
    measure: 'Live latency, remote commit to local visibility (change feed; a `sync.pull: "live"` client)',
    result:
      lat.length === 0
        ? "n/a (not measured)"
        : `median ${num(median(lat))} ms, p95 ${num(p95)} ms (${lat.length} updates)`,
    target: `p95 ≤ ${int(TARGET_LIVE_MS)} ms`,
    met: lat.length === 0 ? undefined : p95 <= TARGET_LIVE_MS,
  };
}

function idleTarget(p: PullResult): Target {
  const counts = p.idle?.length ? idleBySize(p.idle).pairs.map((x) => x.clients) : [1, 10, 100];
  const measure = `Remote work per idle pull with ${counts.slice(0, -1).join(", ")} and ${counts[counts.length - 1]} clients (change feed)`;
  const target = `independent of table size (blocks per pull at the larger size ≤ ${TARGET_IDLE_GROWTH.toFixed(1)}x, or + ${TARGET_IDLE_SLACK}, those at the smaller)`;
  if (!p.idle || p.idle.length === 0) return { measure, result: "n/a (not measured)", target, met: undefined };
  const { small, large, pairs, diff } = idleBySize(p.idle);
  const blocks = (m: IdleMeasure | undefined) => (m ? perPull(m, m.blocks) : "n/a");
  const clients = (m: IdleMeasure) =>
    `${m.clients} client${m.clients === 1 ? "" : "s"}${m.concurrent < m.clients ? ` (${m.concurrent} at a time)` : ""}`;
  const result =
    `blocks per pull, ${int(small)} → ${int(large)} rows: ` +
    pairs.map((x) => `${clients(x.large)} ${blocks(x.small)} → ${blocks(x.large)}`).join("; ") +
    `; hash diff, 1 client: ${blocks(diff.small)} → ${blocks(diff.large)}`;
  return { measure, result, target, met: pairs.every((x) => idleMet(x.small, x.large)) };
}

export function pullTargets(p: PullResult): Target[] {
  const s = stats(p);
  const rows = int(p.config.rows);
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
      measure: `\`pull()\` with nothing changed, share of the initial pull's time (change feed)`,
      result: `${pct(s.noChange)} (${num(s.noChangeMs)} ms)`,
      target: `≤ ${pct(TARGET_NO_CHANGE)}`,
      met: s.noChange <= TARGET_NO_CHANGE,
    },
    {
      measure: `\`pull()\` after 1% of the rows changed, share of the initial pull's time (change feed)`,
      result: `${pct(s.changed)} (${num(s.changedMs)} ms)`,
      target: `≤ ${pct(TARGET_CHANGED)}`,
      met: s.changed <= TARGET_CHANGED,
    },
    {
      measure: `The same two pulls by the hash diff (a second client, \`feed: "off"\`, same runs): nothing changed / 1% changed`,
      result:
        `${pct(s.diffNoChange)} (${num(s.diffNoChangeMs)} ms) / ${pct(s.diffChanged)} (${num(s.diffChangedMs)} ms); ` +
        `the feed ${ratio(s.feedVsDiffNoChange)} / ${ratio(s.feedVsDiffChanged)} faster`,
      target: "(comparison)",
      met: undefined,
    },
    liveTarget(p),
    idleTarget(p),
  ];
}

function pullTable(p: PullResult): Table {
  const s = stats(p);
  const n = p.config.rows;
  const rate = (ms: number) => int((n / ms) * 1000);
  const share = (f: (r: PullRun) => number) => pct(median(p.runs.map(f)));
  const changed = `after ${int(n / 100)} rows (1%) changed remotely (${int(median(p.runs.map((r) => r.changedRows)))} written)`;
  const rows = [
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
    ["`pull()`, nothing changed: change feed", num(s.noChangeMs), "—", share((r) => r.noChangeMs / r.initialMs)],
    [
      '`pull()`, nothing changed: hash diff (`feed: "off"`)',
      num(s.diffNoChangeMs),
      "—",
      share((r) => r.diffNoChangeMs / r.initialMs),
    ],
    [`\`pull()\` ${changed}: change feed`, num(s.changedMs), "—", share((r) => r.changedMs / r.initialMs)],
    [
      `\`pull()\` ${changed}: hash diff (\`feed: "off"\`)`,
      num(s.diffChangedMs),
      "—",
      share((r) => r.diffChangedMs / r.initialMs),
    ],
  ];
  const lat = p.live?.latenciesMs ?? [];
  if (lat.length > 0)
    rows.push([
      `live client (\`sync.pull: "live"\`): remote commit to local visibility, median of ${lat.length} updates (p95 ${num(percentile(lat, 95))} ms, max ${num(Math.max(...lat))} ms)`,
      num(median(lat)),
      "—",
      "—",
    ]);
  return {
    title: `7. Pull from PostgreSQL on loopback into a new in-memory database, ${int(n)} rows (median of runs)`,
    headers: ["what", "ms", "rows/s", "vs initial pull"],
    rows,
    alignRight: [false, true, true, true],
    notes: [
      "vs initial pull = time / the initial pull's time in the same run (per-run ratio, median): below 1.00x is faster than the pull.",
      'Change feed: the client of the initial pull (sync.feed "auto"; its role, the superuser, drains the feed itself at the start of each pull, included). Hash diff: a second client with `feed: "off"`, same runs, the two pulls in rotated order. Every pull\'s strategy is checked ("feed" / "diff"), and both clients against the remote (row count and a digest of every row) after the 1%-changed pulls.',
      'Live: a third client with `sync.pull: "live"` (it drains and polls the feed\'s position every 500 ms while idle); each update is one remote UPDATE of a random row after a random 0-500 ms pause; visibility = the local row read every 5 ms shows it.',
    ],
  };
}

function idleTable(p: PullResult): Table | undefined {
  if (!p.idle || p.idle.length === 0) return undefined;
  const { small, large, pairs } = idleBySize(p.idle);
  return {
    title: "7b. Remote work per idle pull (pg_stat_statements on the server, per pull; nothing changed remotely)",
    headers: [
      "table rows",
      "pulled by",
      "clients",
      "at once",
      "pulls",
      "statements",
      "rows returned",
      "blocks",
      "server ms",
      "pull() ms",
    ],
    rows: p.idle.map((m) => [
      int(m.rows),
      m.strategy === "feed" ? "change feed" : 'hash diff (`feed: "off"`)',
      int(m.clients),
      int(m.concurrent),
      int(m.pulls),
      perPull(m, m.statements),
      perPull(m, m.rowsReturned),
      perPull(m, m.blocks),
      perPull(m, m.serverMs),
      num(m.clientMs),
    ]),
    alignRight: [true, false, true, true, true, true, true, true, true, true],
    notes: [
      `Blocks per pull at ${int(large)} rows / at ${int(small)} rows: ${pairs.map((x) => `${x.clients} client(s) ${ratio(growth(x.small, x.large))}`).join(", ")}.`,
      'Each size is a database of its own; its clients are new Ominipg clients loaded from a dump of a client that pulled the table (own client ids), the server\'s superuser (sync.feed "auto": each drains the feed at the start of its pulls; one at a time holds the drain lock, the others skip). At most `at once` clients are open (a PGlite instance each): 100 clients are that many distinct clients in successive waves. One warm-up pull per client first (the once-a-minute slot health check and trim fall there), then all of them pull at once, round after round.',
      "statements: every statement counted, BEGIN, SET, FETCH... included (pg_stat_statements.track = top); blocks: shared and local blocks hit or read (what was read, in pages); server ms: their execution time; pull() ms: the median pull() as the client saw it (the clients of a wave share one Node thread).",
    ],
  };
}

export function pullTables(p: PullResult): Table[] {
  const idle = idleTable(p);
  return idle ? [pullTable(p), idle] : [pullTable(p)];
}
