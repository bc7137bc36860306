import { readableKey } from "../core/key-text.js";
import { localReferences, referencesItself, type References, type TableInfo } from "../core/table.js";
import { remoteTarget, type PartitionedTables } from "../remote/remote-target.js";
import type { RowOp } from "./coalesce.js";
import { isPartial } from "./complete.js";
import { writableIn } from "./shape.js";
import type { GroupWrite } from "./statements.js";

/** Row writes of one table, one statement shape and one way of checking the remote rows, applied together. */
export interface OpGroup {
  kind: RowOp["kind"];
  table: TableInfo;
  columns: string[];
  set: string[];
  check: Check;
  /** Updates whose images hold only some columns (push/complete.ts): the remote rows are updated, never inserted. */
  partial: boolean;
  ops: RowOp[];
}

/**
 * How a change is checked against the remote row before it is written: the columns compared with the row
 * the remote should hold (`expected`: the before image, or after a settled conflict the remote row it was
 * settled against; "none": the remote should have no row, or the same row as the one written).
 */
interface Check {
  columns: string[];
  expected: "base" | "settled" | "none";
}

function checkOf(op: RowOp, columns: string[]): Check {
  const all = op.table.writable;
  if (op.expected !== undefined) return { columns: all, expected: "settled" };
  if (op.kind === "delete") return { columns: all, expected: "base" };
  if (op.kind === "move") return { columns: op.set, expected: "base" };
  if (op.base === null) return { columns, expected: "none" };
  // Deleted and inserted again: the change touched every column.
  return { columns: op.reinserted ? all : op.set, expected: "base" };
}

/**
 * Groups a batch's ops by statement shape. Ops of different rows commute (Coalescer.add keeps dependent
 * ones out of the window), except in a table referencing itself, where a group holds only consecutive ops
 * so that parent rows are still written before their children.
 */
export function groupOps(ops: RowOp[], references: References = localReferences): OpGroup[] {
  const groups = new Map<string, OpGroup>();
  const out: OpGroup[] = [];
  for (const op of ops) {
    const columns = op.kind === "delete" ? [] : writableIn(op.table, op.image);
    const set = op.kind === "delete" ? [] : op.set;
    const check = checkOf(op, columns);
    const partial = check.expected === "base" && isPartial(op);
    const key = `${op.kind}\u0000${op.table.oid}\u0000${columns.join(",")}\u0000${set.join(",")}\u0000${check.expected}\u0000${check.columns.join(",")}\u0000${partial}`;
    let g = groups.get(key);
    if (g && g !== out[out.length - 1] && referencesItself(op.table, references)) g = undefined;
    if (!g) {
      g = { kind: op.kind, table: op.table, columns, set, check, partial, ops: [] };
      groups.set(key, g);
      out.push(g);
    }
    g.ops.push(op);
  }
  return out;
}

/**
 * The group as the batch statement writes it; `partitioned`: the tables written whole (remote-target.ts);
 * `writeOnly`: the tables whose new rows go by a plain INSERT (batch-pusher.ts).
 */
export function toGroupWrite(
  g: OpGroup,
  partitioned: PartitionedTables,
  writeOnly: ReadonlySet<number> = new Set(),
): GroupWrite {
  const check = {
    columns: g.check.columns,
    ...(g.check.expected === "none"
      ? {}
      : { expected: g.ops.map((o) => (g.check.expected === "settled" ? o.expected! : o.base)) }),
  };
  const table = g.table;
  const target = remoteTarget(table, partitioned);
  if (g.kind === "delete")
    return {
      kind: "delete",
      table,
      target,
      check,
      rows: g.ops.map((o) => readableKey(table, (o as Extract<RowOp, { kind: "delete" }>).key, o.base)),
    };
  if (g.kind === "upsert")
    return {
      kind: "upsert",
      table,
      target,
      check,
      columns: g.columns,
      set: g.set,
      rows: g.ops.map((o) => (o as Extract<RowOp, { kind: "upsert" }>).image),
      ...(g.partial ? { existing: true } : {}),
      ...(newRows(g) && writeOnly.has(table.oid) ? { plain: true } : {}),
    };
  return {
    kind: "move",
    table,
    target,
    check,
    columns: g.columns,
    set: g.set,
    rows: g.ops as Extract<RowOp, { kind: "move" }>[],
  };
}

/** Inserts of rows the remote should not hold yet: what a plain INSERT may write (GroupWrite `plain`). */
export function newRows(g: OpGroup): boolean {
  return g.kind === "upsert" && !g.partial && g.check.expected === "none";
}
