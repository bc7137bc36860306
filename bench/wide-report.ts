/** Section 8's headline rows and tables (wide rows, issue 18). */
import { IDS, speedup } from "./capture.js";
import type { ContenderId, Storage } from "./lib/contenders.js";
import { int, mb, median, num, ratio } from "./lib/stats.js";
import type { Table } from "./lib/table.js";
import { WIDE_OP_LABELS, type WideOp } from "./lib/wide-schema.js";
import { capturePeak, drainPeak, peakOf } from "./memory.js";
import type { WideResult } from "./wide.js";

export const TARGET_WIDE_VS_PLAIN = 1.0;
export const TARGET_WIDE_VS_TRIGGER = 1.3;
export const TARGET_WIDE_LOG_BYTES = 2;

interface Target {
  measure: string;
  result: string;
  target: string;
  met: boolean | undefined;
}

const storageName = (s: Storage) => (s === "memory" ? "in-memory" : "directory");
const label = (op: string) => WIDE_OP_LABELS[op as WideOp] ?? op;

export function wideTargets(w: WideResult): Target[] {
  const out: Target[] = [];
  for (const storage of ["memory", "directory"] as Storage[]) {
    const ms = w.measurements.filter((m) => m.storage === storage);
    if (ms.length === 0) continue;
    const kinds = "INSERT / UPDATE one column / UPDATE document / DELETE";
    const vsPlain = ms.map((m) => speedup(m, "d", "a"));
    out.push({
      measure: `Wide rows (30 columns): captured single-row ${kinds} through Ominipg vs **uncaptured** plain PGlite (d/a), ${storageName(storage)}`,
      result: vsPlain.map(ratio).join(" / "),
      target: `≥ ${TARGET_WIDE_VS_PLAIN.toFixed(1)}x`,
      met: vsPlain.every((x) => x >= TARGET_WIDE_VS_PLAIN),
    });
    const vsTrigger = ms.map((m) => speedup(m, "d", "b"));
    out.push({
      measure: `Wide rows: captured single-row ${kinds}, Ominipg vs trigger capture (d/b), ${storageName(storage)}`,
      result: vsTrigger.map(ratio).join(" / "),
      target: `≥ ${TARGET_WIDE_VS_TRIGGER.toFixed(1)}x`,
      met: vsTrigger.every((x) => x >= TARGET_WIDE_VS_TRIGGER),
    });
  }
  const one = w.bytes.find((b) => b.op === "update1");
  if (one) {
    const x = one.ominipgText / one.assigned;
    out.push({
      measure:
        "Wide rows: change-log row data of a one-column UPDATE vs its key + assigned values (bytes of JSON text)",
      result: `${ratio(x)} (${int(one.ominipgText)} vs ${int(one.assigned)} bytes; ${int(one.ominipgData)} as stored)`,
      target: `≤ ${TARGET_WIDE_LOG_BYTES.toFixed(1)}x`,
      met: x <= TARGET_WIDE_LOG_BYTES,
    });
  }
  const m = w.memory;
  if (m)
    out.push({
      measure: `Wide rows: peak RSS growth while ${int(m.changes)} pending one-column updates of ${int(w.memoryRows ?? 0)} wide rows are captured, then drained by \`sync()\` (directory)`,
      result: `${mb(peakOf(m) - m.baselineRss)} (baseline ${mb(m.baselineRss)}, peak ${mb(peakOf(m))})`,
      target: "(no target)",
      met: undefined,
    });
  return out;
}

export function wideTables(w: WideResult): Table[] {
  const tables: Table[] = [];
  const per = (values: number[]) => (median(values) * 1000) / w.statements;
  tables.push({
    title: "8. Wide rows (30 columns, ~2 KB jsonb, ~1 KB text): µs per single-row statement by key (median of runs)",
    headers: ["storage", "statement", "a µs", "b µs", "c µs", "d µs", "d ops/s", "d/a", "d/b", "c/a", "d/c"],
    rows: w.measurements.map((m) => [
      storageName(m.storage),
      label(m.op),
      ...IDS.map((id: ContenderId) => num(per(m.ms[id]))),
      int(1e6 / per(m.ms.d)),
      ratio(speedup(m, "d", "a")),
      ratio(speedup(m, "d", "b")),
      ratio(speedup(m, "c", "a")),
      ratio(speedup(m, "d", "c")),
    ]),
    notes: [
      "Contenders as in section 1; d/a and d/b here are what issue 18 calls c/a and c/b (Ominipg with capture vs plain PGlite, vs the row trigger).",
      `${int(w.statements)} statements of each kind per run, ids 1..${int(w.statements)}, in this order: INSERT (29 parameters), UPDATE wide SET i1 = i1 + $2, UPDATE wide SET doc = $2 (a new ~2 KB document), DELETE.`,
    ],
  });
  if (w.bytes.length > 0)
    tables.push({
      title: `8b. Wide rows: bytes each change adds to the change log (average over ${int(w.bytesRows)} rows)`,
      headers: [
        "statement",
        "key + assigned",
        "d log row",
        "d row data",
        "d row data as text",
        "d text / assigned",
        "b log row",
        "b row data",
        "d data / b data",
      ],
      rows: w.bytes.map((b) => [
        label(b.op),
        int(b.assigned),
        int(b.ominipgRow),
        int(b.ominipgData),
        int(b.ominipgText),
        ratio(b.ominipgText / b.assigned),
        int(b.triggerRow),
        int(b.triggerData),
        ratio(b.ominipgData / b.triggerData),
      ]),
      notes: [
        "key + assigned = octet_length of the JSON text of the key and the values the statement assigns (the whole row for an INSERT, the key for a DELETE).",
        `log row = pg_column_size of the whole log row (metadata included); row data = pg_column_size of its row-data columns (d: _sync_queue's json/jsonb/bytea columns, now ${w.dataColumns.join(", ") || "none"}; b: row_key + row_data), compressed or TOASTed sizes where PostgreSQL stored them so, with their 1-4 byte headers; as text = octet_length of the same columns' text, the measure of key + assigned (the target compares these two).`,
      ],
    });
  const m = w.memory;
  if (m)
    tables.push({
      title: "8c. Wide rows: memory of a child process capturing, then draining, pending one-column updates",
      headers: ["rows", "updates", "baseline RSS", "peak (capture)", "peak (drain)", "growth", "capture s", "drain s"],
      rows: [
        [
          int(w.memoryRows ?? 0),
          int(m.changes),
          mb(m.baselineRss),
          mb(capturePeak(m)),
          mb(drainPeak(m)),
          mb(peakOf(m) - m.baselineRss),
          (m.captureMs / 1000).toFixed(1),
          (m.drainMs / 1000).toFixed(1),
        ],
      ],
      notes: [
        "The rows are inserted and synced before the baseline; the updates (UPDATE wide SET i1 = i1 + 1 of every row, repeated) are then pending together and drained by one sync(); local data directory.",
      ],
    });
  return tables;
}
