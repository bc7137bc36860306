/**
 * Section 5, the measured process: captures `changes` pending changes through Ominipg, then drains them
 * with sync(), sampling its own memory every 50 ms. Prints one JSON line (MemoryChildResult) on stdout.
 * Run by memory.ts; not meant to be started by hand.
 */
import { readFileSync } from "node:fs";
import { Ominipg } from "../src/index.js";
import { rawDriver } from "./lib/contenders.js";
import { ITEMS_DDL } from "./lib/schema.js";
import { WIDE_DDL, wideInsertSelect } from "./lib/wide-schema.js";

export interface MemoryChildConfig {
  changes: number;
  chunk: number;
  url: string;
  syncUrl: string;
  /** A PGlite data dump to start from (a fresh cluster), or "" to initialise one. */
  templatePath: string;
  /**
   * "inserts": `changes` narrow rows inserted `chunk` at a time. "wide-updates" (section 8): `chunk` wide rows
   * inserted and synced before the baseline, then `changes` one-column updates of them, `chunk` per statement.
   */
  workload?: "inserts" | "wide-updates";
}

export interface MemoryChildResult {
  baselineRss: number;
  peakCaptureRss: number;
  peakDrainRss: number;
  /** getrusage() high-water mark: the true peak, even while WASM blocks the event loop. */
  maxRss: number;
  peakHeapUsed: number;
  peakArrayBuffers: number;
  captureMs: number;
  drainMs: number;
  pushed: number;
  applied: number;
  batches: number;
  samples: number;
}

type Phase = "setup" | "capture" | "drain";

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as MemoryChildConfig;
  let phase: Phase = "setup";
  const peak: Record<Phase, number> = { setup: 0, capture: 0, drain: 0 };
  let peakHeapUsed = 0;
  let peakArrayBuffers = 0;
  let samples = 0;
  const sample = () => {
    const m = process.memoryUsage();
    samples++;
    peak[phase] = Math.max(peak[phase], m.rss);
    peakHeapUsed = Math.max(peakHeapUsed, m.heapUsed);
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 50);

  const template = cfg.templatePath ? { loadDataDir: new Blob([readFileSync(cfg.templatePath)]) } : {};
  const wide = cfg.workload === "wide-updates";
  const db = await Ominipg.connect({
    url: cfg.url,
    syncUrl: cfg.syncUrl,
    schemaSQL: [wide ? WIDE_DDL : ITEMS_DDL],
    ...template,
  });
  db.on("error", () => {});
  // Warm up every code path once (capture, read, coalesce, push) so the baseline includes loaded code.
  if (wide) {
    await db.query(wideInsertSelect(1, cfg.chunk)); // the rows the updates change, synced before the baseline
    await db.sync();
    await db.query(`UPDATE wide SET i1 = i1 + 1 WHERE id <= ${Math.min(cfg.chunk, 2000)}`);
  } else
    await db.query(
      `INSERT INTO items (id, name, qty, price) SELECT -g, 'warm ' || g, 0, 0 FROM generate_series(1, 2000) AS g`,
    );
  await db.sync();
  await rawDriver(db).exec("CHECKPOINT");
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 300));
  gc?.();
  const baselineRss = process.memoryUsage().rss;
  sample();

  phase = "capture";
  process.stdout.write("@phase capture\n");
  let start = performance.now();
  for (let lo = 1; lo <= cfg.changes; lo += cfg.chunk) {
    const hi = Math.min(cfg.changes, lo + cfg.chunk - 1);
    if (wide) await db.query(`UPDATE wide SET i1 = i1 + 1 WHERE id <= ${hi - lo + 1}`);
    else
      await db.query(
        `INSERT INTO items (id, name, qty, price) SELECT g, 'item ' || g, g % 100, (g % 1000) / 10.0 FROM generate_series(${lo}, ${hi}) AS g`,
      );
    sample();
  }
  const captureMs = performance.now() - start;
  const { rows } = await rawDriver(db).query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`, [], {
    prepare: false,
  });
  if (rows[0]!.n !== cfg.changes) throw new Error(`expected ${cfg.changes} pending changes, found ${rows[0]!.n}`);
  sample();

  phase = "drain";
  process.stdout.write("@phase drain\n");
  start = performance.now();
  const result = await db.sync();
  const drainMs = performance.now() - start;
  sample();
  process.stdout.write("@phase done\n");
  clearInterval(timer);
  if (result.pushed !== cfg.changes) throw new Error(`sync() pushed ${result.pushed} changes, expected ${cfg.changes}`);
  const out: MemoryChildResult = {
    baselineRss,
    peakCaptureRss: peak.capture,
    peakDrainRss: peak.drain,
    maxRss: process.resourceUsage().maxRSS * 1024,
    peakHeapUsed,
    peakArrayBuffers,
    captureMs,
    drainMs,
    pushed: result.pushed,
    applied: result.applied,
    batches: result.batches,
    samples,
  };
  await db.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
