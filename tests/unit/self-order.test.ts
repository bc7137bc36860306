// selfReferenceOrder (src/push/self-order.ts) on random forests of rows of a table referencing itself, written
// or deleted by one statement in any order: every row once, a row after its parent (writes) or before it
// (deletes), rows of other tables and rows without a parent in the window left where they were, and cycles kept.
import fc from "fast-check";
import { describe, it } from "vitest";
import { ok, strictEqual } from "node:assert/strict";
import { noRules, type TableRules } from "../../src/capture/constraints.js";
import type { RowOp } from "../../src/push/coalesce.js";
import { selfReferenceOrder } from "../../src/push/self-order.js";
import type { TableInfo } from "../../src/core/table.js";

function table(oid: number): TableInfo {
  return {
    oid,
    schema: "public",
    name: `t${oid}`,
    sql: `"public"."t${oid}"`,
    columns: [],
    writable: ["id", "up"],
    updatable: ["id", "up"],
    primaryKey: ["id"],
    references: [oid],
  };
}

const tree = table(1);
const other = table(2);
const rules = new Map<number, TableRules>([[1, { ...noRules(), selfRefs: [{ columns: ["up"], refs: ["id"] }] }]]);

function op(t: TableInfo, id: number, up: number | null, deletes: boolean, n: number): RowOp {
  const image = new Map([
    ["id", String(id)],
    ["up", up === null ? "null" : String(up)],
  ]);
  const common = { table: t, entryIds: [n], firstId: n, lastId: n, priority: 0 };
  return deletes
    ? { kind: "delete", ...common, key: new Map([["id", String(id)]]), base: image }
    : { kind: "upsert", ...common, image, set: ["id", "up"], base: null, reinserted: false };
}

const ofTree = (o: RowOp) => o.table === tree;
const idOf = (o: RowOp) => Number((o.kind === "delete" ? o.base : o.image).get("id"));
const upOf = (o: RowOp) => (o.kind === "delete" ? o.base : o.image).get("up");

describe("selfReferenceOrder", () => {
  it("puts each row after its parent (writes) or before it (deletes), and leaves the rest in order (500 forests)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(30), { minLength: 1, maxLength: 30 }), // row i's parent: a row before it, or none
        fc.array(fc.nat(1_000_000), { minLength: 30, maxLength: 30 }),
        fc.boolean(),
        fc.boolean(), // a cycle: the first row's parent is the last one
        (parents, shuffle, deletes, cycle) => {
          const n = parents.length;
          const rows = parents.map((p, i) => ({ id: i + 1, up: i > 0 && p < i ? p + 1 : null }));
          if (cycle && n > 1) rows[0]!.up = n;
          const order = rows.map((_, i) => i).sort((a, b) => shuffle[a]! - shuffle[b]! || a - b);
          const ops = [
            op(other, 99, 1, deletes, 0),
            ...order.map((i, k) => op(tree, rows[i]!.id, rows[i]!.up, deletes, k + 1)),
          ];
          const out = selfReferenceOrder(ops, rules, deletes);
          strictEqual(out.length, ops.length);
          strictEqual(new Set(out).size, ops.length, "every op once");
          strictEqual(out[0], ops[0], "another table's op stays");
          const at = new Map(out.filter(ofTree).map((o, i) => [idOf(o), i]));
          // The rows of the cycle, if row n's chain of parents leads back to row 1 (whose parent is row n).
          const inCycle = new Set<number>();
          if (cycle && n > 1)
            for (let id = n; ; id = rows[id - 1]!.up!) {
              if (inCycle.has(id)) break;
              inCycle.add(id);
              if (rows[id - 1]!.up === null) {
                inCycle.clear();
                break;
              }
            }
          for (const o of out.filter(ofTree)) {
            const up = upOf(o);
            if (up === "null" || inCycle.has(idOf(o))) continue;
            const [first, then] = deletes ? [idOf(o), Number(up)] : [Number(up), idOf(o)];
            if (inCycle.has(first) || inCycle.has(then)) continue;
            ok(at.get(first)! < at.get(then)!, `${first} before ${then} (${deletes ? "deletes" : "writes"})`);
          }
          // Without a parent or child among them, rows keep their order.
          const related = new Set(rows.flatMap((r) => (r.up === null ? [] : [r.id, r.up])));
          const alone = (ops: RowOp[]) => ops.filter((o) => ofTree(o) && !related.has(idOf(o))).map(idOf);
          strictEqual(alone(out).join(), alone(ops).join());
        },
      ),
      { numRuns: 500 },
    );
  });
});
