/**
 * The SQL of the copy strategy (copy.ts): key-ordered ranges of a table as COPY text on the remote, COPY into
 * the local table, and the key-range conditions both sides share. Key values travel as text: the text the
 * remote's COPY gave for them, put back into SQL as untyped literals, which PostgreSQL reads as the key
 * column's own type (`"id" > '41'` compares bigints).
 */
import { columnList, quoteIdent, quoteLiteral } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { fetchSql, heldName } from "./sql.js";

/** The last key of a committed range: the text of each key column's value, in key order. */
export type Key = string[];

/** The columns a copy moves, key columns first (their text leads every COPY row): the writable ones. */
export function copyColumns(t: TableInfo): string[] {
  return [...t.primaryKey, ...t.writable.filter((c) => !t.primaryKey.includes(c))];
}

/** `(k1, k2) > ('a', 'b')`: the keys after `after` (on `alias`'s columns if given). */
function keyAfter(t: TableInfo, after: Key, alias?: string, op = ">"): string {
  const values = after.map(quoteLiteral).join(", ");
  return t.primaryKey.length === 1
    ? `${columnList(t.primaryKey, alias)} ${op} ${values}`
    : `(${columnList(t.primaryKey, alias)}) ${op} (${values})`;
}

/**
 * The next range of at most `limit` rows of `from` (the table as the remote reads it, remote/remote-target.ts)
 * after `after` (from the first key without it), in key order, as COPY text. An index range scan of the remote's
 * primary key, so each range costs its own rows, wherever it starts.
 */
export function copyOutSql(t: TableInfo, from: string, after: Key | undefined, limit: number): string {
  const where = after ? ` WHERE ${keyAfter(t, after)}` : "";
  return (
    `COPY (SELECT ${columnList(copyColumns(t))} FROM ${from}${where} ` +
    `ORDER BY ${columnList(t.primaryKey)} LIMIT ${Math.max(1, Math.floor(limit))}) TO STDOUT`
  );
}

/** The rows a copy from `after` reads, and the table's size on disk (with TOAST), to size chunks for wide rows. */
export function copyCountSql(t: TableInfo, from: string, after: Key | undefined): string {
  const where = after ? ` WHERE ${keyAfter(t, after)}` : "";
  return (
    `SELECT (SELECT count(*) FROM ${from}${where})::int8 AS n, ` +
    `pg_table_size(${quoteLiteral(t.sql)}::regclass)::int8 AS bytes`
  );
}

/** The remote rows of the range (after, upTo] as the other strategies read them (fetchSql), for row-by-row writes. */
export function rangeFetchSql(t: TableInfo, from: string, after: Key | undefined, upTo: Key): string {
  // fetchSql ends with its row source, aliased ominipg_r.
  const upper = keyAfter(t, upTo, "ominipg_r", "<=");
  return `${fetchSql(t, from)} WHERE ${after ? `${keyAfter(t, after, "ominipg_r")} AND ` : ""}${upper}`;
}

/** COPY of a range's text into the local table. */
export function copyInSql(t: TableInfo): string {
  return `COPY ${t.sql} (${columnList(copyColumns(t))}) FROM STDIN`;
}

/** Whether any key of the table is held (has pending local changes). */
export function anyHeldSql(t: TableInfo): string {
  return `SELECT EXISTS (SELECT 1 FROM ${heldName(t)}) AS held`;
}

/**
 * Whether any of the keys in $1 (a JSON array of keys, each an array of its columns' texts) is held. Compared
 * as the key columns' own types, as the primary key compares them.
 */
export function heldAmongSql(t: TableInfo): string {
  const e = "ominipg_e";
  const on = t.primaryKey
    .map((c, i) => {
      const type = t.columns.find((col) => col.name === c)!.type;
      return `ominipg_h.${quoteIdent(c)} = (${e}.value ->> ${i})::${type}`;
    })
    .join(" AND ");
  return (
    `SELECT EXISTS (SELECT 1 FROM json_array_elements($1::text::json) AS ${e} ` +
    `JOIN ${heldName(t)} AS ominipg_h ON ${on}) AS held`
  );
}
