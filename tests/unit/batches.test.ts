// planBatches (src/push/batches.ts) on random windows: batch sizes, every write exactly once, foreign keys
// satisfied at every step (parents written before children, children deleted before parents), priority and
// log order within a table, and which batches may run at the same time as the one before.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { planBatches, type Batch } from "../../src/push/batches.js";
import type { Coalesced, RowOp } from "../../src/push/coalesce.js";
import type { TableInfo } from "../../src/core/table.js";

function tableInfo(oid: number, references: number[]): TableInfo {
  return {
    oid,
    schema: "public",
    name: `t${oid}`,
    sql: `"public"."t${oid}"`,
    columns: [{ name: "id", type: "integer", typeId: "23:-1", generated: false, identity: "", jsonValue: "text" }],
    writable: ["id"],
    updatable: ["id"],
    primaryKey: ["id"],
    references,
  };
}

interface Scenario {
  tables: TableInfo[];
  /** Rank of each table in dependency order (parents first), as the syncer builds it; a table may be missing. */
  order: Map<number, number>;
  window: Pick<Coalesced, "rows" | "truncates">;
  batchSize: number;
}

const KINDS = ["upsert", "move", "delete"] as const;

/**
 * Tables t0..tn-1 where a table references only earlier ones (and maybe itself), so the index order is a
 * dependency order; ranks are increasing numbers with gaps. The last table may be left out of `order` (it
 * then ranks after all others, which is still a dependency order since no table references a later one).
 */
const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    n: fc.integer({ min: 1, max: 5 }),
    refs: fc.array(fc.nat(63), { minLength: 5, maxLength: 5 }), // bit j: references table j
    gaps: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 5, maxLength: 5 }),
    lastUnranked: fc.boolean(),
    ops: fc.array(
      fc.record({
        table: fc.nat(4),
        kind: fc.constantFrom(...KINDS),
        priority: fc.nat(2),
        entries: fc.integer({ min: 1, max: 3 }),
      }),
      {
        maxLength: 40,
      },
    ),
    truncated: fc.tuple(fc.nat(3), fc.nat(31)).map(([one, bits]) => (one === 0 ? bits : 0)), // bit i: table i truncated (1 window in 4)
    seed: fc.nat(),
    batchSize: fc.integer({ min: 1, max: 8 }),
  })
  .map(({ n, refs, gaps, lastUnranked, ops, truncated, seed, batchSize }) => {
    const tables = Array.from({ length: n }, (_, i) =>
      tableInfo(
        100 + i,
        Array.from({ length: i + 1 }, (_, j) => j).flatMap((j) => (refs[i]! & (1 << j) ? [100 + j] : [])), // earlier tables, or itself (j = i)
      ),
    );
    const order = new Map<number, number>();
    let rank = 0;
    tables.forEach((t, i) => {
      rank += gaps[i]!;
      if (!(lastUnranked && i === n - 1 && n > 1)) order.set(t.oid, rank);
    });
    // Entry ids: a random permutation of 1..N dealt out to the writes and truncations, each list ascending.
    const total = ops.reduce((s, o) => s + o.entries, 0) + n;
    const ids = Array.from({ length: total }, (_, i) => i + 1);
    let x = seed;
    for (let i = ids.length - 1; i > 0; i--) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const j = x % (i + 1);
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    let next = 0;
    const deal = (count: number) => ids.slice(next, (next += count)).sort((a, b) => a - b);
    const img = (id: number) => new Map([["id", String(id)]]);
    const rows: RowOp[] = ops.map((o, i) => {
      const table = tables[o.table % n]!;
      const entryIds = deal(o.entries);
      const common = {
        table,
        entryIds,
        firstId: entryIds[0]!,
        lastId: entryIds[entryIds.length - 1]!,
        priority: o.priority,
      };
      if (o.kind === "delete") return { ...common, kind: "delete", key: img(i), base: img(i) };
      if (o.kind === "move")
        return { ...common, kind: "move", key: img(i), image: img(1000 + i), set: ["id"], base: img(i) };
      return { ...common, kind: "upsert", image: img(i), set: [], base: null, reinserted: false };
    });
    const truncates = tables
      .filter((_, i) => truncated & (1 << i))
      .map((table) => ({ table, entryIds: deal(1), priority: 0 }));
    return { tables, order, window: { rows, truncates }, batchSize };
  });

const rankOf = (s: Scenario, t: TableInfo) => s.order.get(t.oid) ?? Number.MAX_SAFE_INTEGER;
const selfRef = (t: TableInfo) => t.references.includes(t.oid);
const isWrite = (op: RowOp) => op.kind !== "delete";

function check(s: Scenario, batches: Batch[]): void {
  const { window, batchSize } = s;
  // Truncations: one batch, first, with all of their entries.
  const opBatches = window.truncates.length ? batches.slice(1) : batches;
  if (window.truncates.length) {
    deepStrictEqual(
      batches[0]!.truncates,
      window.truncates.map((t) => t.table),
      "truncated tables",
    );
    deepStrictEqual(batches[0]!.ops, [], "no writes with the truncations");
    deepStrictEqual(
      batches[0]!.entryIds,
      window.truncates.flatMap((t) => t.entryIds),
      "entries of the truncations",
    );
    strictEqual(batches[0]!.concurrentWithPrevious, false, "truncations: concurrentWithPrevious");
  }
  // Batch sizes: full batches, only the last one may be short.
  strictEqual(opBatches.length, Math.ceil(window.rows.length / batchSize), "number of batches");
  opBatches.forEach((b, i) => {
    deepStrictEqual(b.truncates, [], "truncations only in the first batch");
    if (i < opBatches.length - 1) strictEqual(b.ops.length, batchSize, `batch ${i} is full`);
    else ok(b.ops.length > 0 && b.ops.length <= batchSize, `last batch: ${b.ops.length} writes`);
    // A batch drains exactly the entries of its writes.
    deepStrictEqual(
      b.entryIds,
      b.ops.flatMap((op) => op.entryIds),
      `entries of batch ${i}`,
    );
  });

  // Every write exactly once, every entry exactly once.
  const ops = opBatches.flatMap((b) => b.ops);
  strictEqual(ops.length, window.rows.length, "number of writes");
  strictEqual(new Set(ops).size, ops.length, "a write planned twice");
  ok(
    window.rows.every((op) => ops.includes(op)),
    "a write left out",
  );
  const allIds = batches.flatMap((b) => b.entryIds).sort((a, b) => a - b);
  deepStrictEqual(
    allIds,
    [...window.rows.flatMap((op) => op.entryIds), ...window.truncates.flatMap((t) => t.entryIds)].sort((a, b) => a - b),
    "entries: once each",
  );

  // Inserts and updates first, then deletes.
  const firstDelete = ops.findIndex((op) => !isWrite(op));
  if (firstDelete >= 0)
    ok(
      ops.slice(firstDelete).every((op) => !isWrite(op)),
      "a write after a delete",
    );

  // Foreign keys: every write of a parent table before any write of a child, deletes the other way round.
  const at = new Map(ops.map((op, i) => [op, i]));
  for (const a of ops) {
    for (const b of ops) {
      if (a.table === b.table || !b.table.references.includes(a.table.oid)) continue;
      // a's table is referenced by b's table
      if (isWrite(a) && isWrite(b))
        ok(at.get(a)! < at.get(b)!, `write of ${a.table.name} before write of child ${b.table.name}`);
      if (!isWrite(a) && !isWrite(b))
        ok(at.get(b)! < at.get(a)!, `delete of child ${b.table.name} before delete of ${a.table.name}`);
    }
  }
  // And by rank: writes in ascending, deletes in descending dependency order.
  const writes = ops.filter(isWrite);
  const deletes = ops.filter((op) => !isWrite(op));
  for (let i = 1; i < writes.length; i++)
    ok(rankOf(s, writes[i - 1]!.table) <= rankOf(s, writes[i]!.table), "writes by ascending rank");
  for (let i = 1; i < deletes.length; i++)
    ok(rankOf(s, deletes[i - 1]!.table) >= rankOf(s, deletes[i]!.table), "deletes by descending rank");

  // Within a table: higher priority first, then log order (first entry for writes, the delete entry for
  // deletes); a table referencing itself keeps log order only.
  for (const list of [writes, deletes]) {
    const logPos = (op: RowOp) => (isWrite(op) ? op.firstId : op.lastId);
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1]!, list[i]!];
      if (a.table !== b.table) continue;
      if (!selfRef(a.table) && a.priority !== b.priority)
        ok(a.priority > b.priority, `priority ${a.priority} before ${b.priority}`);
      else ok(logPos(a) < logPos(b), `log order: ${logPos(a)} before ${logPos(b)}`);
    }
  }

  // May run at the same time as the batch before: both batches write one table and one kind (insert/update
  // or delete), the same for both, and the table does not reference itself.
  const kindsOf = (b: Batch) => new Set(b.ops.map((op) => `${op.table.oid}:${isWrite(op)}`));
  batches.forEach((b, i) => {
    const prev = batches[i - 1];
    const mine = kindsOf(b);
    const theirs = prev ? kindsOf(prev) : new Set<string>();
    const expected =
      prev !== undefined &&
      prev.truncates.length === 0 &&
      b.truncates.length === 0 &&
      mine.size === 1 &&
      theirs.size === 1 &&
      [...mine][0] === [...theirs][0] &&
      !selfRef(b.ops[0]!.table);
    strictEqual(b.concurrentWithPrevious, expected, `batch ${i} concurrentWithPrevious`);
  });
}

describe("planBatches", () => {
  it("cuts random windows into ordered batches (1000 windows)", () => {
    let concurrent = 0;
    let sequential = 0;
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const rowsBefore = [...s.window.rows];
        const batches = planBatches(s.window, s.order, s.batchSize);
        check(s, batches);
        ok(
          s.window.rows.every((op, i) => op === rowsBefore[i]),
          "the window is left as it was",
        );
        for (const b of batches)
          if (b.concurrentWithPrevious) concurrent++;
          else sequential++;
      }),
      { numRuns: 1000 },
    );
    expect(concurrent).toBeGreaterThan(0);
    expect(sequential).toBeGreaterThan(0);
  });

  it("an empty window has no batches", () => {
    expect(planBatches({ rows: [], truncates: [] }, new Map(), 10)).toEqual([]);
  });

  it("a parent and its child: parent inserts first, child deletes first, batches of one table run together", () => {
    const parent = tableInfo(1, []);
    const child = tableInfo(2, [1]);
    const img = (id: number) => new Map([["id", String(id)]]);
    let id = 0;
    const up = (table: TableInfo): RowOp => {
      const e = ++id;
      return {
        kind: "upsert",
        table,
        entryIds: [e],
        firstId: e,
        lastId: e,
        priority: 0,
        image: img(e),
        set: [],
        base: null,
        reinserted: false,
      };
    };
    const del = (table: TableInfo): RowOp => {
      const e = ++id;
      return { kind: "delete", table, entryIds: [e], firstId: e, lastId: e, priority: 0, key: img(e), base: img(e) };
    };
    const rows = [del(parent), up(child), up(child), del(child), up(parent), up(parent)];
    const batches = planBatches(
      { rows, truncates: [] },
      new Map([
        [1, 0],
        [2, 1],
      ]),
      2,
    );
    expect(
      batches.map((b) => b.ops.map((op) => `${op.kind === "delete" ? "D" : "W"}${op.table.oid}:${op.firstId}`)),
    ).toEqual([
      ["W1:5", "W1:6"],
      ["W2:2", "W2:3"],
      ["D2:4", "D1:1"],
    ]);
    expect(batches.map((b) => b.concurrentWithPrevious)).toEqual([false, false, false]);
    const more = planBatches({ rows: [up(parent), up(parent), up(parent)], truncates: [] }, new Map([[1, 0]]), 1);
    expect(more.map((b) => b.concurrentWithPrevious)).toEqual([false, true, true]);
  });
});
