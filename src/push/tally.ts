import type { TableInfo } from "../core/table.js";
import type { SyncResult } from "./types.js";

/**
 * What one sync has done so far, and its progress: `done` counts log entries applied, rejected or found to
 * be no-ops; progress is reported only when it goes up (a COPY batch reports rows as they are sent, and a
 * batch retried or refused after that must not take them back).
 */
export class Tally {
  pushed = 0;
  applied = 0;
  batches = 0;
  rejected = 0;
  conflicts = 0;
  readonly tables: Record<string, number> = {};
  /** Ledger rows of this sync's applied batches: pruned from the remote at its end. */
  readonly appliedBatchIds: number[] = [];
  #done = 0;
  #shown = 0;

  constructor(
    readonly total: number,
    private readonly report: (done: number, total: number) => void,
  ) {
    report(0, total);
  }

  /** Log entries of a table ("schema.table" or its TableInfo) drained. */
  table(table: TableInfo | string, entries: number): void {
    const name = typeof table === "string" ? table : `${table.schema}.${table.name}`;
    this.tables[name] = (this.tables[name] ?? 0) + entries;
  }

  /** Entries drained for good (applied, rejected, no-ops). */
  count(entries: number): void {
    this.pushed += entries;
    this.#done += entries;
    this.progress();
  }

  /** Report progress: the entries done, and `sending` more on their way (a COPY batch not committed yet). */
  progress(sending = 0): void {
    const done = Math.min(this.total, this.#done + sending);
    if (done <= this.#shown) return;
    this.#shown = done;
    this.report(done, this.total);
  }

  result(durationMs: number): SyncResult {
    const { pushed, applied, batches, rejected, conflicts, tables } = this;
    return { pushed, applied, batches, rejected, conflicts, tables, durationMs: Math.round(durationMs) };
  }
}
