import type { TableRules } from "../capture/constraints.js";
import type { Image } from "../core/image.js";
import type { RowOp } from "./coalesce.js";

/**
 * Orders the ops of a table that references itself so that its foreign keys to itself hold at every batch:
 * a row written after the row it references (`deletes` false), a row deleted before the rows that reference it
 * (`deletes` true). Otherwise, and where rows form a cycle, the order given (log order): rows written by
 * separate statements already come in an order the local database accepted, but one statement writes its rows
 * in any order (an INSERT ... SELECT of a tree, a DELETE of a subtree), checked only at its end. Ops of a bond
 * keep their places. `ops` is sorted by table, each table's ops together.
 */
export function selfReferenceOrder(ops: RowOp[], rules: ReadonlyMap<number, TableRules>, deletes: boolean): RowOp[] {
  const out: RowOp[] = [];
  for (let i = 0; i < ops.length;) {
    let end = i + 1;
    while (end < ops.length && ops[end]!.table === ops[i]!.table) end++;
    const run = ops.slice(i, end);
    const refs = rules.get(ops[i]!.table.oid)?.selfRefs ?? [];
    out.push(
      ...(refs.length > 0 && run.length > 1 && run.every((op) => op.bond === undefined)
        ? sorted(run, refs, deletes)
        : run),
    );
    i = end;
  }
  return out;
}

/**
 * `run` with each row after its parents (writes) or before them (deletes), otherwise as close to the order given
 * as that allows: each op, in order, after the ops it waits for (depth first, iterative: a chain may be long).
 */
function sorted(run: RowOp[], refs: TableRules["selfRefs"], deletes: boolean): RowOp[] {
  const image = (op: RowOp): Image => (op.kind === "delete" ? op.base : op.image);
  const valuesOf = (img: Image, columns: readonly string[]) => {
    const values = columns.map((c) => img.get(c));
    return values.some((v) => v === undefined || v === "null") ? undefined : values.join("\u0000");
  };
  // A write orders rows only by the values it brings: a row the remote does not hold yet, a reference or a
  // referenced value it changes. What it leaves as it was, the remote already holds.
  const brings = (op: RowOp, columns: readonly string[]) =>
    op.kind === "delete" || op.base === null || valuesOf(op.base, columns) !== valuesOf(op.image, columns);
  // Which op holds each referenced value, per foreign key.
  const holders = refs.map((fk) => {
    const byValue = new Map<string, number>();
    run.forEach((op, i) => {
      const v = brings(op, fk.refs) ? valuesOf(image(op), fk.refs) : undefined;
      if (v !== undefined && !byValue.has(v)) byValue.set(v, i);
    });
    return byValue;
  });
  const waitsFor = run.map(() => [] as number[]);
  let edges = 0;
  run.forEach((op, child) => {
    refs.forEach((fk, f) => {
      const v = brings(op, fk.columns) ? valuesOf(image(op), fk.columns) : undefined;
      const parent = v === undefined ? undefined : holders[f]!.get(v);
      if (parent === undefined || parent === child) return;
      if (deletes) waitsFor[parent]!.push(child);
      else waitsFor[child]!.push(parent);
      edges++;
    });
  });
  if (edges === 0) return run;
  const state = new Uint8Array(run.length); // 0: not reached, 1: waiting for others (a cycle stops here), 2: out
  const out: RowOp[] = [];
  for (let first = 0; first < run.length; first++) {
    if (state[first] !== 0) continue;
    state[first] = 1;
    const stack: [op: number, next: number][] = [[first, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const before = waitsFor[top[0]]!;
      if (top[1] < before.length) {
        const p = before[top[1]++]!;
        if (state[p] === 0) {
          state[p] = 1;
          stack.push([p, 0]);
        }
        continue;
      }
      stack.pop();
      state[top[0]] = 2;
      out.push(run[top[0]]!);
    }
  }
  return out;
}
