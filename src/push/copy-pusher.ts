import type { Driver } from "../core/driver.js";
import { SyncError } from "../core/errors.js";
import { sqlstateOf } from "../core/sqlstate.js";
import type { TableInfo } from "../core/table.js";
import { dropSpan, entriesByTable, readInsertRuns } from "../log/queue.js";
import { PUSH_FAILED, type PushContext } from "./context.js";
import { copyInto, type CopyInto } from "./copy.js";
import { claimedRanges, claimSql, narrowClaim, otherClaim } from "./ledger.js";
import { refusePush } from "./schema-check.js";
import { scheduler } from "./scheduler.js";

/** Ids (from its first entry on) a COPY batch reads and converts at a time: they stream out while the next are read. */
const COPY_CHUNK = 2500;

/** The log entries with ids after `after` and up to `hi`. */
export interface Span {
  after: number;
  hi: number;
}

/** A chunk of a COPY batch: its entries (the first one's id), and each table's rows as COPY text (none: it cannot go by COPY). */
interface CopyChunk extends Span {
  lo: number;
  entries: number;
  tables?: Map<TableInfo, { text: Uint8Array; rows: number }>;
}

/**
 * Push the inserts after `cursor` and before `end` by COPY, one remote transaction per `copyBatchSize`
 * ids (see copyBatch). Stops at a chunk that cannot go by COPY (an array or composite column, a table no
 * longer synced, a row image from before a column change) or a batch the remote refuses: the windows take
 * those over and find out why, row by row. `cursor` is where they start (all before it is applied),
 * `copyAfter` where COPY may be tried again.
 */
export async function pushCreates(
  ctx: PushContext,
  cursor: number,
  end: number,
): Promise<{ cursor: number; copyAfter?: number }> {
  const queue = scheduler(ctx.options);
  /** The first entry applied: the applied ones (first to `cursor`) are dropped at the end, in one statement; the ledger has them meanwhile. */
  let from: number | undefined;
  let left: Span | undefined;
  try {
    while (cursor < end - 1 && !left) {
      const batch = (await queue.add(() => copyBatch(ctx, cursor, end - 1)))!;
      if (batch.applied) from ??= batch.applied.lo;
      left = batch.left;
      cursor = batch.through;
    }
  } finally {
    const [lo, hi] = [from, cursor];
    if (lo !== undefined) await ctx.local.run((d) => dropSpan(d, lo, hi));
  }
  return left ? { cursor: left.after, copyAfter: left.hi } : { cursor };
}

/**
 * One COPY batch: the entries with ids after `cursor` and up to `last`, `copyBatchSize` ids at most, in
 * one remote transaction: the ledger claim, then the rows chunk by chunk into one COPY per table (parents
 * first; a COPY stays open while the next chunks are of its table) while the next chunk is read and
 * converted. Returns the entries applied (their first id, and `through`: all up to it are done) and the
 * span left to the windows.
 */
async function copyBatch(
  ctx: PushContext,
  cursor: number,
  last: number,
): Promise<{ through: number; applied?: { lo: number }; left?: Span }> {
  const { remote, clientId, tally } = ctx;
  const size = ctx.options.copyBatchSize;
  const read = (after: number, upTo: number) => {
    const chunk = ctx.local.run((d) => readCopyChunk(ctx, d, after, upTo, Math.min(COPY_CHUNK, size)));
    chunk.catch(() => {}); // observed when awaited
    return chunk;
  };
  const first = await read(cursor, last);
  if (first.entries === 0) return { through: last };
  if (!first.tables) return { through: cursor, left: first };
  const lo = first.lo;
  const hi = Math.min(last, lo - 1 + size);
  let outcome:
    { fresh: boolean; through: number; entries: number; tables: Map<TableInfo, number>; left?: Span } | { other: true };
  try {
    outcome = await remote.retrying(PUSH_FAILED, "pushing a batch", async () => {
      const result = await remote.transaction(async (tx) => {
        const [claim] = await tx.unsafe(claimSql("$1", "$2", "$3", "true"), [clientId, lo, `{${lo},${hi}}`]);
        if (!claim) {
          // An earlier attempt's claim is one range from lo, narrowed or not.
          const claimed = await claimedRanges(tx, clientId, lo);
          if (claimed.length !== 2 || claimed[0] !== lo) return { other: true as const };
          return { fresh: false, through: claimed[1]!, entries: 0, tables: new Map<TableInfo, number>() };
        }
        const tables = new Map<TableInfo, number>();
        let [chunk, entries, open] = [first, 0, undefined as CopyInto | undefined];
        let left: Span | undefined;
        for (;;) {
          const next = chunk.hi < hi ? read(chunk.hi, hi) : undefined;
          for (const [table, rows] of inDependencyOrder(chunk.tables!, ctx.order)) {
            if (open?.table !== table) {
              await open?.end();
              open = await copyInto(tx, table, ctx.layouts(table)!.columns);
            }
            await open.write(rows.text);
            tables.set(table, (tables.get(table) ?? 0) + rows.rows);
          }
          entries += chunk.entries;
          tally.progress(entries);
          if (!next) break;
          chunk = await next;
          if (!chunk.tables) {
            left = chunk;
            break;
          }
        }
        await open?.end();
        if (left) await narrowClaim(tx, clientId, lo, [lo, left.after]);
        return { fresh: true, through: left ? left.after : hi, entries, tables, ...(left ? { left } : {}) };
      });
      await ctx.testHooks.afterRemoteCommit?.();
      return result;
    });
  } catch (err) {
    // Refused (the windows' bisection finds the rows), or cancelled at each attempt (57014: a remote
    // statement_timeout shorter than one COPY of the batch takes): the windows push it in smaller statements.
    if (err instanceof SyncError && err.code === PUSH_FAILED && (!err.retryable || sqlstateOf(err.cause) === "57014"))
      return { through: cursor, left: { after: cursor, hi } };
    throw err;
  }
  if ("other" in outcome) throw otherClaim(lo);
  tally.appliedBatchIds.push(lo);
  if (outcome.fresh) {
    tally.batches++;
    tally.applied += outcome.entries;
  } else {
    // Applied by an earlier attempt whose COMMIT reply was lost: what it applied is what the log holds there.
    for (const r of await ctx.local.run((d) => entriesByTable(d, lo, outcome.through))) {
      const table = ctx.catalog.table(r.schema, r.table);
      if (table) outcome.tables.set(table, r.n);
    }
    for (const n of outcome.tables.values()) outcome.entries += n;
  }
  for (const [table, n] of outcome.tables) tally.table(table, n);
  tally.count(outcome.entries);
  return { through: outcome.through, applied: { lo }, ...(outcome.left ? { left: outcome.left } : {}) };
}

/**
 * A COPY chunk: the log's inserts after `after`, `size` ids from the first of them and up to `upTo`, as
 * COPY text per table (none when a table is not synced or its images cannot go by COPY).
 */
async function readCopyChunk(
  ctx: PushContext,
  d: Driver,
  after: number,
  upTo: number,
  size: number,
): Promise<CopyChunk> {
  const { hi, runs } = await readInsertRuns(d, after, upTo, size);
  const chunk: CopyChunk = { after, hi, lo: Infinity, entries: 0, tables: new Map() };
  for (const run of runs) {
    chunk.lo = Math.min(chunk.lo, run.lo);
    chunk.entries += run.rows;
    const table = ctx.catalog.table(run.schema, run.table);
    if (table && !table.uncapturable) refusePush(ctx.remoteSchema, table);
    const layout = table && !table.uncapturable ? ctx.layouts(table) : undefined;
    const copyText = layout?.text(run.images);
    if (!table || !copyText) delete chunk.tables;
    else chunk.tables?.set(table, { text: copyText, rows: run.rows });
  }
  return chunk;
}

/** A chunk's tables, parents before the tables that reference them. */
function inDependencyOrder<T>(tables: Map<TableInfo, T>, order: Map<number, number>): [TableInfo, T][] {
  return [...tables].sort(([a], [b]) => (order.get(a.oid) ?? 0) - (order.get(b.oid) ?? 0));
}
