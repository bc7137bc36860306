import type { TableInfo } from "../core/table.js";
import { toRanges } from "../core/ranges.js";
import { SyncError, type SyncErrorCode } from "../core/errors.js";
import { deleteEntries, readPage, statementEnd, type LogEntry } from "../log/queue.js";
import { setAside, type RejectedChange } from "../log/rejected.js";
import { planBatches, type Batch } from "./batches.js";
import { Coalescer, type Coalesced } from "./coalesce.js";
import type { PushContext } from "./context.js";
import { rejectedChange } from "./rejection.js";
import { refusePush } from "./schema-check.js";

/** A window's batches, the last entry it read, and whether the log ends there. */
export interface Window {
  batches: Batch[];
  cursor: number;
  exhausted: boolean;
}

/**
 * The window source: reads the log after `cursor` (of the `only` tables, if given) until a window holds
 * `windowRows` distinct rows (so memory stays bounded however long the queue is), is cut, or the log ends;
 * coalesces it and plans its batches. No-op changes are dropped here; entries of tables no longer synced,
 * and writes naming columns the table no longer has, are set aside (or stop the sync, `onReject: "stop"`).
 *
 * A window past its size still takes the rest of one statement's writes to a table that references itself: the
 * statement may have written them in any order (a tree inserted children first, deleted root first), which only
 * its end had to satisfy, and the window orders them (self-order.ts) as the remote needs, but only those it holds.
 * Such a statement's rows are in memory together, however many (statements of one transaction started in the same
 * millisecond, PGlite's clock's step, count as one).
 */
export async function readWindow(ctx: PushContext, only: string[] | undefined, cursor: number): Promise<Window> {
  const { catalog, maxId, tally, options } = ctx;
  const windowRows = Math.max(10_000, options.batchSize * options.concurrency * 8);
  const coalescer = new Coalescer(ctx.rules);
  const unknown: LogEntry[] = [];
  let exhausted = false;
  let cut = false;
  /** Past its size, the window takes entries up to here: the rest of a statement's writes to a tree. */
  let treeEnd: number | undefined;
  let last: TableInfo | undefined; // the table of the last entry taken
  while (!cut) {
    if (coalescer.rowCount >= windowRows && treeEnd === undefined) {
      if (!last || (ctx.rules.get(last.oid)?.selfRefs.length ?? 0) === 0) break;
      const end = await ctx.local.run((d) => statementEnd(d, cursor, maxId));
      if (end <= cursor) break;
      treeEnd = end;
    }
    const page = await ctx.local.run((d) => readPage(d, cursor, treeEnd ?? maxId, only));
    for (const e of page.entries) {
      const table = catalog.table(e.schema, e.table);
      if (table && !table.uncapturable) {
        // The coalescer refuses an entry that depends on the window's earlier writes in a way its
        // reordering would break: the window ends here and the next one starts with that entry.
        if (!coalescer.add(e, table)) {
          cut = true;
          break;
        }
      } else unknown.push(e);
      last = table;
      cursor = e.id;
    }
    if (!cut && page.hi >= maxId) {
      exhausted = true;
      break;
    }
    if (treeEnd !== undefined && page.hi >= treeEnd) break;
  }
  if (unknown.length > 0) await rejectUnknown(ctx, unknown);
  const window = coalescer.result();
  if (window.stale.length > 0) await rejectStale(ctx, window.stale);
  if (window.noop.length > 0) {
    const ids = window.noop.flatMap((n) => n.entryIds);
    await ctx.local.run((d) => deleteEntries(d, toRanges(ids), true));
    for (const n of window.noop) tally.table(n.table, n.entryIds.length);
    tally.count(ids.length);
  }
  // After coalescing: changes that came to nothing push nothing, and a delete writes no column.
  for (const op of window.rows) if (op.kind !== "delete") refusePush(ctx.remoteSchema, op.table);
  for (const t of window.truncates) tally.table(t.table, t.entryIds.length);
  for (const op of window.rows) tally.table(op.table, op.entryIds.length);
  return { batches: planBatches(window, ctx.order, options.batchSize, ctx.references, ctx.rules), cursor, exhausted };
}

async function rejectUnknown(ctx: PushContext, entries: LogEntry[]): Promise<void> {
  const names = [...new Set(entries.map((e) => `${e.schema}.${e.table}`))].join(", ");
  const message = `queued changes of ${names} cannot be pushed: the table is no longer synced locally (dropped, renamed, excluded or without a primary key)`;
  const changes = entries.map((e) => ({
    queueIds: [e.id],
    schema: e.schema,
    table: e.table,
    op: e.op,
    oldRow: e.oldRow,
    newRow: e.newRow,
    message,
  }));
  await refuse(ctx, "TABLE_NOT_SYNCED", message, changes);
}

/**
 * Writes captured before a column they name was renamed or dropped: pushed without it, its values would be lost.
 * Or before the primary key changed: their images lack a column of the key (an UPDATE's hold the key it had then).
 */
async function rejectStale(ctx: PushContext, stale: Coalesced["stale"]): Promise<void> {
  const byTable = new Map<string, Set<string>>();
  const changes = stale.map(({ op, columns }) => {
    const name = `${op.table.schema}.${op.table.name}`;
    const set = byTable.get(name) ?? new Set();
    for (const c of columns) set.add(c);
    byTable.set(name, set);
    const key = columns.filter((c) => op.table.primaryKey.includes(c));
    const gone = columns.filter((c) => !key.includes(c));
    const what = [
      ...(gone.length > 0 ? [`names columns ${name} no longer has: ${gone.join(", ")}`] : []),
      ...(key.length > 0 ? [`lacks columns of ${name}'s primary key: ${key.join(", ")}`] : []),
    ];
    return rejectedChange(op, `the change ${what.join(" and ")} (renamed, dropped or changed since it was captured)`);
  });
  const named = [...byTable].map(([table, columns]) => `${table} (${[...columns].join(", ")})`).join(", ");
  const message =
    `queued changes name columns their table no longer has, or lack columns of its primary key (renamed, dropped ` +
    `or changed since they were captured): ${named}; pushed, their values would be lost. Sync before renaming or ` +
    `dropping a column or changing a primary key; with onReject: "skip" these changes are kept in ` +
    `_ominipg_rejected to be handled by hand`;
  await refuse(ctx, "COLUMN_NOT_SYNCED", message, changes);
}

/** Changes that cannot be pushed: the sync stops (`onReject: "stop"`), or they are set aside and it goes on. */
async function refuse(
  ctx: PushContext,
  code: SyncErrorCode,
  message: string,
  changes: RejectedChange[],
): Promise<void> {
  if (ctx.options.onReject === "stop") throw new SyncError(code, message, { retryable: false });
  const ids = changes.flatMap((c) => c.queueIds);
  await ctx.local.run((d) => setAside(d, changes, ids));
  ctx.tally.rejected += ids.length;
  for (const c of changes) ctx.tally.table(`${c.schema}.${c.table}`, c.queueIds.length);
  ctx.tally.count(ids.length);
}

/** The tables named (and the tables they reference, recursively): a prioritized table's pending parents come along. */
export function withAncestors(names: string[], ctx: Pick<PushContext, "catalog" | "references">): string[] {
  const out = new Set<string>();
  const visit = (t: TableInfo | undefined) => {
    if (!t) return;
    const name = `${t.schema}.${t.name}`;
    if (out.has(name)) return;
    out.add(name);
    for (const ref of ctx.references(t)) visit(ctx.catalog.tables.get(ref));
  };
  for (const n of names) {
    const dot = n.indexOf(".");
    visit(ctx.catalog.table(n.slice(0, dot), n.slice(dot + 1)));
  }
  return [...out];
}

/** The synced tables outside `names` ("schema.table") with a foreign key to one of them. */
export function referencing(names: string[], ctx: Pick<PushContext, "catalog" | "references">): string[] {
  const named = (t: TableInfo) => `${t.schema}.${t.name}`;
  const tables = [...ctx.catalog.tables.values()];
  const set = new Set(names);
  const oids = new Set(tables.filter((t) => set.has(named(t))).map((t) => t.oid));
  return tables.filter((t) => !set.has(named(t)) && ctx.references(t).some((ref) => oids.has(ref))).map(named);
}
