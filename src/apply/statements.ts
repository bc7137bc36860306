import type { TableInfo } from "../capture/catalog.js";
import { quoteIdent, quoteLiteral } from "../sql.js";
import { claimSql } from "./ledger.js";
import { joinImage, type Image } from "./image.js";

/**
 * Set-based remote writes. Every write takes its rows as ONE jsonb parameter (sent as text, so postgres.js
 * cannot double-encode it) and turns them into rows of the table's own row type with
 * jsonb_populate_record(set): a fixed parameter count at any batch size, and every column type converted
 * by PostgreSQL's own input functions.
 *
 * A batch is ONE statement: the ledger claim and every write are data-modifying WITH queries of it, each
 * write gated on the claim, so the server applies all of it or nothing, and nothing twice, without a
 * client-side transaction. (postgres.js's transactions are not safe against a lost connection: sql.begin()
 * writes its ROLLBACK to the dead socket, an uncaught TypeError; sql.reserve() that fails to connect leaves
 * a stale request that later swallows a pool connection for good.) One statement means one snapshot: the
 * writes cannot see each other, which is fine because they touch different rows and Coalescer.add keeps
 * writes that depend on one another out of the same window; foreign key checks and actions run at the end
 * of the statement, when all of them are done.
 */

export function payload(images: Image[], columns?: string[]): string {
  return `[${images.map((img) => joinImage(img, columns)).join(",")}]`;
}

/** The condition every write of a batch statement carries: this batch's ledger claim went in just now. */
const CLAIMED = "EXISTS (SELECT FROM ominipg_claim)";

/** One write of a batch statement: the WITH queries it needs, given the parameter placeholder it gets. */
export type Write = { param: string; ctes: (p: string, name: string) => string[] };

/** The batch statement: $1..$3 claim the batch, $4.. are the writes' payloads. Returns `fresh`. */
export function batchSql(writes: Write[]): { text: string; payloads: string[] } {
  const ctes = [`ominipg_claim AS (${claimSql("$1", "$2", "$3")})`];
  writes.forEach((w, i) => {
    ctes.push(...w.ctes(`$${i + 4}`, `ominipg_w${i}`).map((body, j) => `ominipg_w${i}${j === 0 ? "" : `_${j}`} AS (${body})`));
  });
  return { text: `WITH ${ctes.join(",\n")}\nSELECT ${CLAIMED} AS fresh`, payloads: writes.map((w) => w.param) };
}

/** Insert full rows; on a key that exists, set only `set` (nothing if empty). */
export function upsertWrite(table: TableInfo, columns: string[], set: string[], rows: Image[]): Write {
  return {
    param: payload(rows, columns),
    ctes: (p) => [
      `INSERT INTO ${table.sql} (${list(columns)})${overriding(table, columns)} SELECT ${list(columns)} ` +
        `FROM jsonb_populate_recordset(NULL::${table.sql}, ${p}::text::jsonb) WHERE ${CLAIMED} ${onConflict(table, set)}`,
    ],
  };
}

/**
 * Key changes: update the row found by its original key `k` to `set` of the new row `r`. A row the remote
 * no longer has is inserted instead (the local state wins, as for any other upsert).
 */
export function moveWrite(table: TableInfo, columns: string[], set: string[], moves: { key: Image; image: Image }[]): Write {
  const rows = `(SELECT e.i, jsonb_populate_record(NULL::${table.sql}, e.v->'k') AS k, jsonb_populate_record(NULL::${table.sql}, e.v->'r') AS r ` +
    `FROM jsonb_array_elements(%P::text::jsonb) WITH ORDINALITY AS e(v, i))`;
  const missingSet = columns.filter((c) => !table.primaryKey.includes(c));
  return {
    param: `[${moves.map((m) => `{"k":${joinImage(m.key)},"r":${joinImage(m.image, columns)}}`).join(",")}]`,
    ctes: (p, name) => [
      `UPDATE ${table.sql} AS ominipg_t SET ${set.map((c) => `${quoteIdent(c)} = (x.r).${quoteIdent(c)}`).join(", ")} ` +
        `FROM ${rows.replace("%P", p)} AS x WHERE ${keyMatch(table, "ominipg_t", "(x.k)")} AND ${CLAIMED} RETURNING x.i`,
      `INSERT INTO ${table.sql} (${list(columns)})${overriding(table, columns)} SELECT ${columns.map((c) => `(x.r).${quoteIdent(c)}`).join(", ")} ` +
        `FROM ${rows.replace("%P", p)} AS x WHERE NOT EXISTS (SELECT FROM ${name} AS m WHERE m.i = x.i) AND ${CLAIMED} ${onConflict(table, missingSet)}`,
    ],
  };
}

export function deleteWrite(table: TableInfo, keys: Image[]): Write {
  return {
    param: payload(keys),
    ctes: (p) => [
      `DELETE FROM ${table.sql} AS ominipg_t USING (SELECT jsonb_populate_record(NULL::${table.sql}, e) AS k ` +
        `FROM jsonb_array_elements(${p}::text::jsonb) AS e) AS x WHERE ${keyMatch(table, "ominipg_t", "(x.k)")} AND ${CLAIMED}`,
    ],
  };
}

/**
 * A batch of truncations: TRUNCATE cannot be a WITH query, so the claim and the truncation are one DO block
 * (one statement again). Only literals go in: the client id (a uuid), numbers, and quoted table names.
 */
export function truncateBatchSql(tables: TableInfo[], clientId: string, batchId: number, ranges: number[]): string {
  const body =
    `BEGIN ${claimSql(quoteLiteral(clientId), String(batchId), quoteLiteral(`{${ranges.join(",")}}`), false)}; ` +
    `IF FOUND THEN TRUNCATE ${tables.map((t) => t.sql).join(", ")}; END IF; END`;
  let tag = "$ominipg$";
  for (let i = 0; body.includes(tag); i++) tag = `$ominipg${i}$`;
  return `DO ${tag} ${body} ${tag}`;
}

function list(columns: string[]): string {
  return columns.map(quoteIdent).join(", ");
}

function overriding(table: TableInfo, columns: string[]): string {
  return table.columns.some((c) => c.identity === "a" && columns.includes(c.name)) ? " OVERRIDING SYSTEM VALUE" : "";
}

function onConflict(table: TableInfo, columns: string[]): string {
  const target = `ON CONFLICT (${list(table.primaryKey)})`;
  // An identity ALWAYS column can only be set by an INSERT (OVERRIDING SYSTEM VALUE): an UPDATE may not
  // change it, so it never changes locally either.
  const set = columns.filter((c) => !table.columns.some((tc) => tc.name === c && tc.identity === "a"));
  return set.length ? `${target} DO UPDATE SET ${set.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(", ")}` : `${target} DO NOTHING`;
}

function keyMatch(table: TableInfo, alias: string, key: string): string {
  return table.primaryKey.map((c) => `${alias}.${quoteIdent(c)} = ${key}.${quoteIdent(c)}`).join(" AND ");
}
