/** Section 8's wide table: 30 columns, a ~2 KB jsonb document and a ~1 KB text (issue 18). */
import { createHash } from "node:crypto";
import type { BenchTable } from "./schema.js";

const ints = ["i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8"];
const bigints = ["b1", "b2", "b3"];
const texts = ["t1", "t2", "t3", "t4", "t5", "t6"];
const stamps = ["ts1", "ts2", "ts3", "ts4"];
const numerics = ["n1", "n2", "n3", "n4"];

/** Every column an INSERT writes (all but updated_at), in order: $1 is id. */
export const WIDE_COLUMNS = ["id", ...ints, ...bigints, ...texts, ...stamps, ...numerics, "flag", "doc", "body"];

export const WIDE_DDL = `CREATE TABLE IF NOT EXISTS wide (
  id bigint PRIMARY KEY,
${[
  ...ints.map((c) => `  ${c} integer NOT NULL`),
  ...bigints.map((c) => `  ${c} bigint NOT NULL`),
  ...texts.map((c) => `  ${c} text NOT NULL`),
  ...stamps.map((c) => `  ${c} timestamptz NOT NULL`),
  ...numerics.map((c) => `  ${c} numeric(14,2) NOT NULL`),
  "  flag boolean NOT NULL",
  "  doc jsonb NOT NULL",
  "  body text NOT NULL",
  "  updated_at timestamptz NOT NULL DEFAULT now()",
].join(",\n")}
)`;

export const WIDE: BenchTable = { name: "wide", ddl: WIDE_DDL };

/** The kinds of single-row statements measured, by key. */
export const WIDE_OPS = ["insert", "update1", "updateDoc", "delete"] as const;
export type WideOp = (typeof WIDE_OPS)[number];

export const WIDE_OP_LABELS: Record<WideOp, string> = {
  insert: "INSERT of a whole row",
  update1: "UPDATE of one int column",
  updateDoc: "UPDATE of the jsonb document",
  delete: "DELETE by key",
};

export const WIDE_SINGLE: Record<WideOp, string> = {
  insert: `INSERT INTO wide (${WIDE_COLUMNS.join(", ")}) VALUES (${WIDE_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
  update1: `UPDATE wide SET i1 = i1 + $2 WHERE id = $1`,
  updateDoc: `UPDATE wide SET doc = $2 WHERE id = $1`,
  delete: `DELETE FROM wide WHERE id = $1`,
};

/** Key + the values each kind assigns, as compact JSON of the row after the statement (the log-bytes baseline). */
export const WIDE_ASSIGNED: Record<WideOp, string> = {
  insert: "to_json(w)",
  update1: "to_json((SELECT r FROM (SELECT w.id, w.i1) AS r))",
  updateDoc: "to_json((SELECT r FROM (SELECT w.id, w.doc) AS r))",
  delete: "to_json((SELECT r FROM (SELECT w.id) AS r))",
};

const hex = (s: string) => createHash("md5").update(s).digest("hex");

/** The ~2 KB document of row `id` (`version` changes its content, not its size), as JSON text. */
export function wideDoc(id: number, version: number): string {
  const items = Array.from({ length: 40 }, (_, i) => ({ k: i, v: hex(`${id}:${i}:${version}`) }));
  return JSON.stringify({ id, v: version, title: `document ${id}`, tags: ["a", "b", "c"], items });
}

/** The parameters of WIDE_SINGLE.insert for row `id`. */
export function wideParams(id: number): unknown[] {
  const at = new Date(Date.UTC(2026, 0, 1) + id * 1000).toISOString();
  return [
    id,
    ...ints.map((_, i) => (id * (i + 1)) % 100_000),
    ...bigints.map((_, i) => id * 1_000_003 + i),
    ...texts.map((c) => `${c} of row ${id}`),
    ...stamps.map(() => at),
    ...numerics.map((_, i) => ((id * (i + 7)) % 100_000) / 100),
    id % 2 === 0,
    wideDoc(id, 0),
    Array.from({ length: 32 }, (_, i) => hex(`${id}/${i}`)).join(""),
  ];
}

/** Rows lo..hi of the same shape in one INSERT ... SELECT (the memory child's set-up). */
export function wideInsertSelect(lo: number, hi: number): string {
  const values = [
    "g",
    ...ints.map((_, i) => `(g * ${i + 1}) % 100000`),
    ...bigints.map((_, i) => `g::bigint * 1000003 + ${i}`),
    ...texts.map((c) => `'${c} of row ' || g`),
    ...stamps.map(() => `timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'`),
    ...numerics.map((_, i) => `((g * ${i + 7}) % 100000) / 100.0`),
    "g % 2 = 0",
    `(SELECT jsonb_build_object('id', g, 'v', 0, 'title', 'document ' || g, 'tags', jsonb_build_array('a', 'b', 'c'),
       'items', jsonb_agg(jsonb_build_object('k', i, 'v', md5(g || ':' || i)))) FROM generate_series(0, 39) AS i)`,
    `(SELECT string_agg(md5(g || '/' || i), '') FROM generate_series(0, 31) AS i)`,
  ];
  return `INSERT INTO wide (${WIDE_COLUMNS.join(", ")}) SELECT ${values.join(", ")} FROM generate_series(${lo}, ${hi}) AS g`;
}
