// Partial row images (issue 18): an update logs only the columns it assigned (log/capture.ts). The coalescer
// folds them into one write per row, whose base holds each column's value before the window, and the push
// sends just those columns, as an UPDATE (an INSERT of a partial row would be refused for the rest).
import { describe, expect, it } from "vitest";
import { Coalescer, type RowOp } from "../../src/push/coalesce.js";
import { groupOps, toGroupWrite } from "../../src/push/groups.js";
import { batchSql } from "../../src/push/statements.js";
import { isPartial } from "../../src/push/complete.js";
import type { LogEntry } from "../../src/log/queue.js";
import type { TableInfo } from "../../src/core/table.js";

const col = (name: string) => ({
  name,
  type: "text",
  typeId: "25:-1",
  generated: false,
  identity: "" as const,
  jsonValue: "text" as const,
});
const table: TableInfo = {
  oid: 1,
  schema: "public",
  name: "w",
  sql: `"public"."w"`,
  columns: ["id", "a", "b", "doc"].map(col),
  writable: ["id", "a", "b", "doc"],
  updatable: ["id", "a", "b", "doc"],
  primaryKey: ["id"],
  logged: ["id"],
  references: [],
};
const DOC = `{"big":"${"x".repeat(2000)}"}`;
let id = 0;
const entry = (op: LogEntry["op"], oldRow: string | null, newRow: string | null): LogEntry => ({
  id: ++id,
  schema: "public",
  table: "w",
  op,
  priority: 0,
  oldRow,
  newRow,
});

function coalesce(entries: LogEntry[]): RowOp[] {
  const c = new Coalescer();
  for (const e of entries) expect(c.add(e, table)).toBe(true);
  return c.result().rows;
}

describe("partial images", () => {
  it("two updates of other columns: one write of both columns, base from before the window", () => {
    const [op, ...rest] = coalesce([
      entry("U", `{"id":1,"a":"1"}`, `{"id":1,"a":"2"}`),
      entry("U", `{"id":1,"b":"x"}`, `{"id":1,"b":"y"}`),
      entry("U", `{"id":1,"a":"2"}`, `{"id":1,"a":"3"}`),
    ]);
    expect(rest).toEqual([]);
    expect(op!.kind).toBe("upsert");
    const up = op as Extract<RowOp, { kind: "upsert" }>;
    expect(Object.fromEntries(up.base!)).toEqual({ id: "1", a: '"1"', b: '"x"' });
    expect(Object.fromEntries(up.image)).toEqual({ id: "1", a: '"3"', b: '"y"' });
    expect([...up.set].sort()).toEqual(["a", "b"]);
    expect(isPartial(up)).toBe(true);
  });

  it("the push sends only the assigned columns, as an UPDATE checked against their old values", () => {
    const ops = coalesce([entry("U", `{"id":1,"a":"1"}`, `{"id":1,"a":"2"}`)]);
    const { text, params } = batchSql(groupOps(ops).map((g) => toGroupWrite(g, new Set())));
    expect(params).toEqual([`[{"id":1,"a":"2"}]`, `[{"id":1,"a":"1"}]`]);
    expect(text).toContain(`UPDATE ONLY "public"."w" AS ominipg_t SET "a" = (s.r)."a"`);
    expect(text).not.toContain(`INSERT INTO "public"."w"`);
  });

  it("an insert then partial updates: the whole row is inserted", () => {
    const [op] = coalesce([
      entry("I", null, `{"id":1,"a":"1","b":null,"doc":${DOC}}`),
      entry("U", `{"id":1,"a":"1"}`, `{"id":1,"a":"2"}`),
    ]);
    const up = op as Extract<RowOp, { kind: "upsert" }>;
    expect(up.base).toBeNull();
    expect(Object.fromEntries(up.image)).toEqual({ id: "1", a: '"2"', b: "null", doc: DOC });
    expect(isPartial(up)).toBe(false);
    const { text, params } = batchSql(groupOps([up]).map((g) => toGroupWrite(g, new Set())));
    expect(text).toContain(`INSERT INTO "public"."w" ("id", "a", "b", "doc")`);
    expect(params[0]).toContain(DOC);
  });

  it("a partial update then a delete: the delete's base is the whole row before the window", () => {
    const [op] = coalesce([
      entry("U", `{"id":1,"a":"1"}`, `{"id":1,"a":"2"}`),
      entry("D", `{"id":1,"a":"2","b":"x","doc":${DOC}}`, null),
    ]);
    expect(op!.kind).toBe("delete");
    expect(Object.fromEntries(op!.base!)).toEqual({ id: "1", a: '"1"', b: '"x"', doc: DOC });
  });
});
