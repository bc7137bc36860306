import { describe, expect, it } from "vitest";
import { parseDecoded, TOAST } from "../../src/core/decoding.js";

// Lines as PostgreSQL 18's test_decoding printed them (the integration tests feed the real plugin's output).
describe("test_decoding lines", () => {
  it("reads an INSERT: quoted names, quotes in values, types with spaces and brackets, nulls", () => {
    const c = parseDecoded(
      `table public."My Tab": INSERT: "Ke y"[text]:'x y'']z' n[integer]:1 "We:ird"[character varying(10)[]]:'{a,b}' ts[timestamp with time zone]:'2026-12-04 06:03:32.424075+00' j[jsonb]:null b[boolean]:true bits[bit(4)]:B'0101' f[double precision]:-Infinity`,
    );
    expect(c).toEqual({
      kind: "row",
      op: "INSERT",
      table: { schema: "public", name: "My Tab" },
      old: undefined,
      new: new Map<string, unknown>([
        ["Ke y", "x y']z"],
        ["n", "1"],
        ["We:ird", "{a,b}"],
        ["ts", "2026-12-04 06:03:32.424075+00"],
        ["j", null],
        ["b", "true"],
        ["bits", "0101"],
        ["f", "-Infinity"],
      ]),
    });
  });

  it("reads doubled quotes in names and values, empty values, and a quoted type name holding `]:`", () => {
    const c = parseDecoded(
      `table "we""ird"."t""": INSERT: "a""b"[text]:'' q[text]:'''' r[text]:'x''''y''' s["my]:type"]:'v' "]:"[integer]:7`,
    );
    expect(c).toEqual({
      kind: "row",
      op: "INSERT",
      table: { schema: 'we"ird', name: 't"' },
      old: undefined,
      new: new Map<string, unknown>([
        ['a"b', ""],
        ["q", "'"],
        ["r", "x''y'"],
        ["s", "v"],
        ["]:", "7"],
      ]),
    });
  });

  it("reads an UPDATE with its old key, even when a value holds the marker text", () => {
    const c = parseDecoded(
      `table public.items: UPDATE: old-key: id[text]:'a new-tuple: b' new-tuple: id[text]:'c' name[text]:' new-tuple: x[int]:1'`,
    );
    expect(c).toMatchObject({ kind: "row", op: "UPDATE" });
    if (c.kind !== "row") throw new Error("not a row");
    expect([...c.old!]).toEqual([["id", "a new-tuple: b"]]);
    expect([...c.new!]).toEqual([
      ["id", "c"],
      ["name", " new-tuple: x[int]:1"],
    ]);
  });

  it("reads an UPDATE without old key, an unchanged TOASTed value, a DELETE and a DELETE without identity", () => {
    const u = parseDecoded(`table s.t: UPDATE: id[bigint]:5 big[text]:unchanged-toast-datum`);
    expect(u).toMatchObject({ kind: "row", op: "UPDATE", old: undefined });
    if (u.kind === "row") expect(u.new!.get("big")).toBe(TOAST);
    const d = parseDecoded(`table s.t: DELETE: id[bigint]:5`);
    expect(d).toEqual({
      kind: "row",
      op: "DELETE",
      table: { schema: "s", name: "t" },
      old: new Map([["id", "5"]]),
      new: undefined,
    });
    const n = parseDecoded(`table s.t: DELETE: (no-tuple-data)`);
    expect(n).toEqual({ kind: "row", op: "DELETE", table: { schema: "s", name: "t" }, old: new Map(), new: undefined });
  });

  it("reads a TRUNCATE of several tables, names with commas and colons", () => {
    expect(parseDecoded(`table public.items, "a, b"."c: d": TRUNCATE: restart_seqs cascade`)).toEqual({
      kind: "truncate",
      tables: [
        { schema: "public", name: "items" },
        { schema: "a, b", name: "c: d" },
      ],
    });
  });

  it("gives BEGIN, COMMIT and messages as other, and what it cannot read as unreadable for the table", () => {
    expect(parseDecoded("BEGIN 755")).toEqual({ kind: "other" });
    expect(parseDecoded("COMMIT 755")).toEqual({ kind: "other" });
    expect(parseDecoded("message: transactional: 1 prefix: p, sz: 1 content:x")).toEqual({ kind: "other" });
    for (const tail of [`id[integer]:'open`, `id[integer:1`, `old-key: id[integer]:1`, ` id[integer]:`]) {
      expect(parseDecoded(`table public.t: UPDATE: ${tail}`)).toEqual({
        kind: "unreadable",
        table: { schema: "public", name: "t" },
      });
    }
    expect(() => parseDecoded(`table public: INSERT: id[integer]:1`)).toThrow(/unreadable/);
  });
});
