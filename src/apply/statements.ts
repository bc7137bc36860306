import type { TableInfo } from "../capture/catalog.js";
import { quoteIdent } from "../sql.js";
import { joinImage, type Image } from "./image.js";

/**
 * Set-based remote writes. Every statement takes the whole batch as ONE jsonb parameter (sent as text, so
 * postgres.js cannot double-encode it) and turns it into rows of the table's own row type with
 * jsonb_populate_record(set): a fixed parameter count at any batch size, and every column type converted
 * by PostgreSQL's own input functions.
 */

export function payload(images: Image[], columns?: string[]): string {
  return `[${images.map((img) => joinImage(img, columns)).join(",")}]`;
}

/** Insert full rows; on a key that exists, set only `set` (nothing if empty). */
export function upsertSql(table: TableInfo, columns: string[], set: string[]): string {
  const cols = columns.map(quoteIdent).join(", ");
  const overriding = table.columns.some((c) => c.identity === "a" && columns.includes(c.name)) ? " OVERRIDING SYSTEM VALUE" : "";
  const conflict = set.length
    ? `DO UPDATE SET ${set.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(", ")}`
    : "DO NOTHING";
  return (
    `INSERT INTO ${table.sql} (${cols})${overriding} SELECT ${cols} FROM jsonb_populate_recordset(NULL::${table.sql}, $1::text::jsonb) ` +
    `ON CONFLICT (${table.primaryKey.map(quoteIdent).join(", ")}) ${conflict}`
  );
}

/** Payload items {k: original key, r: new row}; returns the 1-based positions of the rows found and moved. */
export function moveSql(table: TableInfo, set: string[]): string {
  const assignments = set.map((c) => `${quoteIdent(c)} = (x.r).${quoteIdent(c)}`).join(", ");
  return (
    `UPDATE ${table.sql} AS ominipg_t SET ${assignments} FROM (SELECT e.i, jsonb_populate_record(NULL::${table.sql}, e.v->'k') AS k, ` +
    `jsonb_populate_record(NULL::${table.sql}, e.v->'r') AS r FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS e(v, i)) AS x ` +
    `WHERE ${keyMatch(table, "ominipg_t", "(x.k)")} RETURNING x.i`
  );
}

export function movePayload(items: { key: Image; image: Image }[], columns: string[]): string {
  return `[${items.map((m) => `{"k":${joinImage(m.key)},"r":${joinImage(m.image, columns)}}`).join(",")}]`;
}

export function deleteSql(table: TableInfo): string {
  return (
    `DELETE FROM ${table.sql} AS ominipg_t USING (SELECT jsonb_populate_record(NULL::${table.sql}, e) AS k ` +
    `FROM jsonb_array_elements($1::text::jsonb) AS e) AS x WHERE ${keyMatch(table, "ominipg_t", "(x.k)")}`
  );
}

export function truncateSql(tables: TableInfo[]): string {
  return `TRUNCATE ${tables.map((t) => t.sql).join(", ")}`;
}

function keyMatch(table: TableInfo, alias: string, key: string): string {
  return table.primaryKey.map((c) => `${alias}.${quoteIdent(c)} = ${key}.${quoteIdent(c)}`).join(" AND ");
}
