/** Sections 4 and 5's tables (push, memory). */
import type { Storage } from "./lib/contenders.js";
import { int, mb, median, num, ratio } from "./lib/stats.js";
import type { Table } from "./lib/table.js";
import { capturePeak, drainPeak, peakOf, type MemoryResult } from "./memory.js";
import type { PushResult } from "./push.js";

const storageName = (s: Storage) => (s === "memory" ? "in-memory" : "directory");

export function pushStats(p: PushResult) {
  const runs = p.runs;
  const copyMs = median(runs.map((x) => x.copyMs));
  const insMs = median(runs.map((x) => x.insertSyncMs));
  const updMs = median(runs.map((x) => x.updateSyncMs));
  const insVsCopy = median(runs.map((x) => x.copyMs / x.insertSyncMs));
  const updVsCopy = median(
    runs.map((x) => (p.config.updateRows * p.config.updatesPerRow) / x.updateSyncMs / (p.config.inserts / x.copyMs)),
  );
  const maxUpdWrites = Math.max(...runs.map((x) => x.update.applied));
  return { copyMs, insMs, updMs, insVsCopy, updVsCopy, maxUpdWrites };
}

export function pushTable(push: PushResult | undefined): Table | undefined {
  if (!push || push.runs.length === 0) return undefined;
  const p = pushStats(push);
  const cfg = push.config;
  const med = (f: (x: PushResult["runs"][number]) => number) => median(push.runs.map(f));
  const updates = cfg.updateRows * cfg.updatesPerRow;
  return {
    title: "4. Push into PostgreSQL on loopback (median of runs)",
    headers: ["what", "ms", "changes/s", "rows written/s", "batches", "remote row writes", "vs COPY"],
    rows: [
      [
        "raw baseline: one COPY of " + int(cfg.inserts) + " rows",
        num(p.copyMs),
        "—",
        int((cfg.inserts / p.copyMs) * 1000),
        "1",
        int(cfg.inserts),
        "1.00x",
      ],
      [
        `sync() of ${int(cfg.inserts)} pending inserts`,
        num(p.insMs),
        int((cfg.inserts / p.insMs) * 1000),
        int((med((x) => x.insert.applied) / p.insMs) * 1000),
        int(med((x) => x.insert.batches)),
        int(med((x) => x.insert.applied)),
        ratio(p.insVsCopy),
      ],
      [
        `sync() of ${int(updates)} updates over ${int(cfg.updateRows)} rows`,
        num(p.updMs),
        int((updates / p.updMs) * 1000),
        int((med((x) => x.update.applied) / p.updMs) * 1000),
        int(med((x) => x.update.batches)),
        int(p.maxUpdWrites),
        ratio(p.updVsCopy),
      ],
    ],
    notes: [
      "vs COPY: changes drained per second / rows per second of the raw COPY in the same run (for the updates: the same number of changes as the COPY's rows, not the same rows).",
      "remote row writes: the upsert/update/delete rows sync() sent (SyncResult.applied; max over runs for the updates).",
    ],
  };
}

export function memoryTable(memory: MemoryResult[]): Table | undefined {
  if (memory.length === 0) return undefined;
  return {
    title: "5. Memory: RSS of a child process capturing, then draining, pending changes",
    headers: [
      "storage",
      "changes",
      "baseline RSS",
      "peak (capture)",
      "peak (drain)",
      "growth",
      "max JS heap",
      "max ArrayBuffers",
      "capture s",
      "drain s",
      "drained/s",
    ],
    rows: memory.map((m) => [
      storageName(m.storage),
      int(m.changes),
      mb(m.baselineRss),
      mb(capturePeak(m)),
      mb(drainPeak(m)),
      mb(peakOf(m) - m.baselineRss),
      mb(m.peakHeapUsed),
      mb(m.peakArrayBuffers),
      (m.captureMs / 1000).toFixed(1),
      (m.drainMs / 1000).toFixed(1),
      int((m.changes / m.drainMs) * 1000),
    ]),
    notes: [
      "peak = highest RSS during capture and drain (child's own 50 ms samples and the parent's /proc samples); growth = peak - baseline (RSS after connect, warm-up and GC, before capturing).",
    ],
  };
}
