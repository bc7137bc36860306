import { localReferences, referencesItself, type References, type TableInfo } from "../core/table.js";
import type { TableRules } from "../capture/constraints.js";
import type { Coalesced, RowOp } from "./coalesce.js";
import { selfReferenceOrder } from "./self-order.js";

/** One remote transaction's worth of work. */
export interface Batch {
  truncates: TableInfo[];
  ops: RowOp[];
  /** Every log entry this batch drains. */
  entryIds: number[];
  /** May run at the same time as the batch before it (same table, same kind of write, no self-reference). */
  concurrentWithPrevious: boolean;
}

/**
 * Orders a window's writes so that foreign keys hold on the remote at every step: truncations first, then
 * inserts/updates parents before children, then deletes children before parents. Higher priority first
 * within each table; then log order. Cuts them into batches of at most `batchSize` row writes, but never
 * inside a bond (Coalescer: rows that swapped values of a DEFERRABLE unique constraint). (The window
 * holds no write that depends on an earlier one in a way this order breaks: see Coalescer.add.)
 */
export function planBatches(
  window: Pick<Coalesced, "truncates" | "rows">,
  order: Map<number, number>,
  batchSize: number,
  references: References = localReferences,
  rules: ReadonlyMap<number, TableRules> = new Map(),
): Batch[] {
  const selfReferencing = (t: TableInfo) => referencesItself(t, references);
  const rank = (t: TableInfo) => order.get(t.oid) ?? Number.MAX_SAFE_INTEGER;
  // The ops of a bond (never deletes) sort together, where its first op does, at its highest priority.
  const bonds = new Map<number, { priority: number; firstId: number }>();
  for (const op of window.rows) {
    if (op.bond === undefined) continue;
    const b = bonds.get(op.bond);
    if (!b) bonds.set(op.bond, { priority: op.priority, firstId: op.firstId });
    else {
      b.priority = Math.max(b.priority, op.priority);
      b.firstId = Math.min(b.firstId, op.firstId);
    }
  }
  const lead = (op: RowOp) => (op.bond === undefined ? op : bonds.get(op.bond)!);
  // Within a table referencing itself, log order keeps its foreign key satisfied, with the rows one statement
  // wrote in any order sorted out by selfReferenceOrder: no priority there.
  const priority = (a: RowOp, b: RowOp) => (selfReferencing(a.table) ? 0 : lead(b).priority - lead(a).priority);
  const writes = window.rows
    .filter((op) => op.kind !== "delete")
    .sort(
      (a, b) =>
        rank(a.table) - rank(b.table) || priority(a, b) || lead(a).firstId - lead(b).firstId || a.firstId - b.firstId,
    );
  // Deletes in the order they happened (by their delete entry): a row's children went before it.
  const deletes = window.rows
    .filter((op) => op.kind === "delete")
    .sort((a, b) => rank(b.table) - rank(a.table) || priority(a, b) || a.lastId - b.lastId);

  const batches: Batch[] = [];
  if (window.truncates.length > 0) {
    batches.push({
      truncates: window.truncates.map((t) => t.table),
      ops: [],
      entryIds: window.truncates.flatMap((t) => t.entryIds),
      concurrentWithPrevious: false,
    });
  }
  let current: Batch | undefined;
  /** What every op of the current batch writes ("table oid:delete?"), or null once they differ. */
  let kind: string | null = null;
  for (const op of [...selfReferenceOrder(writes, rules, false), ...selfReferenceOrder(deletes, rules, true)]) {
    const opKind = `${op.table.oid}:${op.kind === "delete"}`;
    const bonded = op.bond !== undefined && current?.ops[current.ops.length - 1]!.bond === op.bond;
    if (!current || (current.ops.length >= batchSize && !bonded)) {
      const prevKind = current ? kind : null;
      current = {
        truncates: [],
        ops: [],
        entryIds: [],
        concurrentWithPrevious: prevKind === opKind && !selfReferencing(op.table),
      };
      kind = opKind;
      batches.push(current);
    } else if (kind !== opKind) {
      kind = null;
      current.concurrentWithPrevious = false;
    }
    current.ops.push(op);
    for (const id of op.entryIds) current.entryIds.push(id); // no spread: a row may stand for 100k+ entries
  }
  return batches;
}
