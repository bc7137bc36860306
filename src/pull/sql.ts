import { overridingClause, type TableInfo } from "../core/table.js";
import { firstChangesCte, keyJson, keysQueuedAfter, LAST_QUEUE_ID, truncateQueuedAfter } from "../log/pending.js";
import { columnList as cols, columnsEqual, onConflict, qualified, quoteIdent, quoteLiteral } from "../core/sql.js";
import { carriedColumns, fields, jsonColumns, jsonText, rowJsonb } from "../core/json-text.js";

/**
 * The SQL the puller runs. Remote and local statements that must agree (row texts, hashes, buckets) are built
 * by the same functions and run under the same session settings, set with SET LOCAL on both sides
 * (CANONICAL_SETTINGS, core/settings.ts): every value's text - timestamptz, dates inside ranges, intervals,
 * floats, bytea, money - is then the same on both sides, and neither the user's local SETs nor the remote's
 * defaults leak in. Rows travel as `rowJsonb` text (core/json-text.ts): to_jsonb, but json, jsonb, float and
 * array columns as strings of their exact text, so that nothing is lost on the way; they are hashed as `rowText`.
 * What the change log holds pending comes from log/pending.ts.
 * Every alias is prefixed `ominipg_` so that no user column name can capture a whole-row reference.
 */

const R = "ominipg_r";

/** Every column of the table, generated ones included, in table order. */
export function allColumns(t: TableInfo): string[] {
  return t.columns.map((c) => c.name);
}

function keyEquals(t: TableInfo, a: string, b: string): string {
  return columnsEqual(t.primaryKey, a, b);
}

/** The rows of parameter $1 (a JSON array of `rowJsonb(t, row, true)` texts) as rows of the table, decoded. */
function recordset(t: TableInfo): string {
  const p = "ominipg_p";
  const from = `json_populate_recordset(NULL::${t.sql}, $1::text::json) AS ${p}`;
  const plain = jsonColumns(t).length === 0 && carriedColumns(t).length === 0;
  return plain ? `SELECT * FROM ${from}` : `SELECT ${fields(t, p, true)} FROM ${from}`;
}

/**
 * The synced columns of a table as a row source aliased `ominipg_r` (extra remote columns are ignored); `from`:
 * the table as the remote reads it (remote/remote-target.ts).
 */
function rows(t: TableInfo, from = t.sql): string {
  return `(SELECT ${cols(allColumns(t))} FROM ${from}) AS ${R}`;
}

/** Bucket of a row by its primary key: md5 of the key's jsonb text, so it is the same on any server and platform. */
function bucketOf(t: TableInfo, alias: string, buckets: number): string {
  return `(('x' || substr(md5(jsonb_build_array(${cols(t.primaryKey, alias)})::text), 1, 7))::bit(28)::int % ${buckets})`;
}

/** Whether a row's bucket is set in the bitmap parameter (bytea, bit n = bucket n). */
function inBuckets(t: TableInfo, alias: string, buckets: number, param: string): string {
  return `get_bit(${param}::text::bytea, ${bucketOf(t, alias, buckets)}) = 1`;
}

/**
 * A row's text to hash: its synced columns as a record's text (each value as its type's output function prints it
 * under CANONICAL_SETTINGS: a json value's exact text, -0, an array's bounds), the same on both sides for equal
 * rows; cheaper than a JSON form of the row. JSON null in a json or jsonb column counts as SQL NULL, as in the
 * push's row images, which cannot tell them apart (core/json-text.ts).
 */
export function rowText(t: TableInfo, alias: string): string {
  const values = t.columns.map((c) => {
    const value = `${alias}.${quoteIdent(c.name)}`;
    return c.type === "json" || c.type === "jsonb" ? jsonText(value, c.type) : value;
  });
  return `ROW(${values.join(", ")})::text`;
}

/**
 * Per bucket: row count and the sum of 60-bit row hashes (md5 of the row's `rowText`). A sum does not
 * depend on row order, so the two sides need not sort keys the same way (collations differ).
 */
export function summarySql(t: TableInfo, buckets: number, from = t.sql): string {
  return (
    `SELECT ominipg_b AS b, count(*)::int AS n, sum(ominipg_h)::text AS s FROM (SELECT ${bucketOf(t, R, buckets)} AS ominipg_b, ` +
    `('x' || substr(md5(${rowText(t, R)}), 1, 15))::bit(60)::int8 AS ominipg_h FROM ${rows(t, from)}) AS ominipg_s GROUP BY 1`
  );
}

/** The buckets a diff fetched: their number B, and the bitmap of those that differ (bytea text, bit n = bucket n). */
export interface BucketScope {
  buckets: number;
  hex: string;
}

/** Remote rows of `from` as `rowJsonb` text; with `buckets`, only those whose bucket is set in the bitmap $1. */
export function fetchSql(t: TableInfo, from: string, buckets?: number): string {
  const where = buckets === undefined ? "" : ` WHERE ${inBuckets(t, R, buckets, "$1")}`;
  return `SELECT ${rowJsonb(t, R, true)}::text AS j FROM ${rows(t, from)}${where}`;
}

/** Exact row count (the local side of a diff's sizing). */
export function countSql(t: TableInfo): string {
  return `SELECT count(*)::int8 AS n FROM ${t.sql}`;
}

/** Exact row count, and the table's size on disk (with TOAST), to size chunks for wide rows. */
export function remoteCountSql(t: TableInfo, from: string): string {
  return `SELECT (SELECT count(*) FROM ${from})::int8 AS n, pg_table_size(${quoteLiteral(t.sql)}::regclass)::int8 AS bytes`;
}

/** The planner's row estimate (no scan; 0 when the table was never analyzed), and the size on disk. */
export function remoteEstimateSql(t: TableInfo): string {
  return `SELECT greatest(reltuples, 0)::int8 AS n, pg_table_size(oid)::int8 AS bytes FROM pg_class WHERE oid = ${quoteLiteral(t.sql)}::regclass`;
}

/** The temp table a table's pulled rows are staged in: its columns (generated ones as plain columns) and key. */
export function stageName(t: TableInfo): string {
  return qualified("pg_temp", `ominipg_pull_${t.oid}`);
}

/** The temp table of the table's keys with pending local changes, kept up to date chunk by chunk. */
export function heldName(t: TableInfo): string {
  return qualified("pg_temp", heldTable(t));
}

/** heldName's table name alone (as an error's table field names it). */
export function heldTable(t: TableInfo): string {
  return `ominipg_held_${t.oid}`;
}

export function createStageSql(t: TableInfo): string {
  return (
    `${dropStageSql(t)}; CREATE TEMP TABLE ${stageName(t)} (LIKE ${t.sql}, PRIMARY KEY (${cols(t.primaryKey)})); ` +
    `CREATE TEMP TABLE ${heldName(t)} AS SELECT ${cols(t.primaryKey)} FROM ${t.sql} WITH NO DATA; ` +
    `ALTER TABLE ${heldName(t)} ADD PRIMARY KEY (${cols(t.primaryKey)})`
  );
}

export function dropStageSql(t: TableInfo): string {
  return `DROP TABLE IF EXISTS ${stageName(t)}; DROP TABLE IF EXISTS ${heldName(t)}`;
}

export function stageInsertSql(t: TableInfo): string {
  return `INSERT INTO ${stageName(t)} ${recordset(t)}`;
}

/**
 * Hold the key of a remote row the local table refused ($1, its image): a diff then neither deletes the local row
 * under that key (not staged, it would look gone from the remote) nor writes it.
 */
export function holdKeySql(t: TableInfo): string {
  return `INSERT INTO ${heldName(t)} SELECT * FROM json_populate_record(NULL::${heldName(t)}, $1::text::json) ON CONFLICT DO NOTHING`;
}

/** Blocks of the stage table, for reading it back in block ranges (a TID range scan each). */
export function stageBlocksSql(t: TableInfo): string {
  return `SELECT (pg_relation_size(${quoteLiteral(stageName(t))}::regclass) / current_setting('block_size')::int)::int AS blocks`;
}

export function stagePageSql(t: TableInfo): string {
  return `SELECT ${rowJsonb(t, "ominipg_s", true)}::text AS j FROM ${stageName(t)} AS ominipg_s WHERE ctid >= format('(%s,0)', $1::int)::tid AND ctid < format('(%s,0)', $2::int)::tid`;
}

/**
 * Add the keys of changes queued after id $1 to the held keys; returns the last queue id and whether a TRUNCATE
 * of the table was queued. Run right before each write, in the same session turn: no user statement runs in
 * between, and every queued change is committed (the session is idle), so ids at or below the returned one
 * are all seen. Keys stay held even if a push removes their entries meanwhile.
 */
export function refreshHeldSql(t: TableInfo): string {
  return (
    `WITH ominipg_new AS (${keysQueuedAfter(t, "$1")}), ` +
    `ominipg_ins AS (INSERT INTO ${heldName(t)} SELECT DISTINCT * FROM ominipg_new ON CONFLICT DO NOTHING) ` +
    `SELECT ${LAST_QUEUE_ID}::text AS max_id, ${truncateQueuedAfter(t, "$1")} AS truncated`
  );
}

/** The held keys as the CTE `ominipg_pend`, which isPending() reads. */
const HELD_CTE = (t: TableInfo) => `ominipg_pend AS (SELECT * FROM ${heldName(t)})`;

function isPending(t: TableInfo, alias: string): string {
  return `EXISTS (SELECT 1 FROM ominipg_pend AS ominipg_k WHERE ${keyEquals(t, "ominipg_k", alias)})`;
}

/**
 * Statistics for a temp table (PGlite never auto-analyzes): without them the planner guesses a handful of rows
 * and may rescan a big table once per row of another. Of the key only: every join on a temp table is on the key,
 * and the other columns' statistics (a jsonb document, long text) were two thirds of the cost.
 */
export function analyzeSql(t: TableInfo, which: "stage" | "held"): string {
  return `ANALYZE ${which === "stage" ? stageName(t) : heldName(t)} (${cols(t.primaryKey)})`;
}

/** Whether the table has rows without pending changes (then a pull must also find rows the remote deleted). */
export function hasSettledRowsSql(t: TableInfo): string {
  return `WITH ${HELD_CTE(t)} SELECT EXISTS (SELECT 1 FROM ${t.sql} AS ominipg_x WHERE NOT ${isPending(t, "ominipg_x")}) AS settled`;
}

/**
 * Apply a chunk of remote rows ($1, a JSON array of `rowJsonb` texts; or, `from` "stage", the whole stage, when it
 * holds just the rows to apply): rows whose keys are held (pending local
 * changes) are left alone; the others are inserted, or update the local row. In a copy, held rows are staged for
 * the conflict check (in a diff the stage already holds every fetched row); in a diff, rows equal to the local
 * row (json text included) are not written at all (in a copy the local table has no such rows: it held only
 * pending ones). Equal means the same binary image (`*=`, column by column, TOAST undone), hence the same text,
 * at under half the cost of comparing the rows' jsonb texts; a value of the same text but another image would
 * merely be written again. The comparison is the upsert's own condition on the row it found (ON CONFLICT ... DO
 * UPDATE ... WHERE), not a lookup of the key before it: 2,000 changed rows into 200,000 ~13.5 ms instead of ~17.
 * Identity ALWAYS columns are inserted with OVERRIDING SYSTEM VALUE but never updated (PostgreSQL forbids it).
 */
export function applySql(t: TableInfo, mode: "copy" | "diff", from: "rows" | "stage" = "rows"): string {
  const stageHeld = mode === "copy";
  const skipIdentical = mode === "diff";
  const w = t.writable;
  // The key too: a key equal to the local one in another form (numeric 1.0 and 1.000, float -0 and 0) takes the
  // remote's; where it is the same to the byte, the row stays a HOT update candidate.
  const set = t.updatable;
  const overriding = overridingClause(t, w);
  return (
    `WITH ominipg_src AS MATERIALIZED (${from === "rows" ? recordset(t) : `SELECT * FROM ${stageName(t)}`}), ${HELD_CTE(t)}, ` +
    `ominipg_held AS MATERIALIZED (SELECT * FROM ominipg_src AS ominipg_s WHERE ${isPending(t, "ominipg_s")}), ` +
    (stageHeld
      ? `ominipg_staged AS (INSERT INTO ${stageName(t)} SELECT * FROM ominipg_held ON CONFLICT DO NOTHING), `
      : "") +
    `ominipg_up AS (INSERT INTO ${t.sql} AS ominipg_x (${cols(w)})${overriding} SELECT ${cols(w, "ominipg_s")} FROM ominipg_src AS ominipg_s ` +
    `WHERE NOT EXISTS (SELECT 1 FROM ominipg_held AS ominipg_h WHERE ${keyEquals(t, "ominipg_h", "ominipg_s")}) ` +
    `${onConflict(t.primaryKey, set, skipIdentical ? "NOT (ominipg_x *= EXCLUDED)" : undefined)} RETURNING 1) ` +
    `SELECT (SELECT count(*) FROM ominipg_up)::int AS upserted, (SELECT count(*) FROM ominipg_held)::int AS held`
  );
}

/** Delete local rows of the buckets in bitmap $1 that the remote no longer has (not staged), unless held. */
export function deleteMissingSql(t: TableInfo, buckets: number): string {
  return (
    `WITH ${HELD_CTE(t)}, ominipg_gone AS (DELETE FROM ${t.sql} AS ominipg_x WHERE ${inBuckets(t, "ominipg_x", buckets, "$1")} ` +
    `AND NOT EXISTS (SELECT 1 FROM ${stageName(t)} AS ominipg_s WHERE ${keyEquals(t, "ominipg_s", "ominipg_x")}) ` +
    `AND NOT ${isPending(t, "ominipg_x")} RETURNING 1) SELECT count(*)::int AS deleted FROM ominipg_gone`
  );
}

/**
 * SQL: a pending change's base as jsonb text (null if the change created the row): `fold` (json) holds the columns
 * the log has of it, the local row `ominipg_x` the others (firstChangesCte).
 */
const baseImage = (fold: string) =>
  `CASE WHEN ${fold} IS NOT NULL THEN to_jsonb(json_populate_record(ominipg_x, ${fold}))::text END`;

/**
 * For rows whose key changed since their first pending change, `$1` a JSON array of {k: the key (keyJson), at:
 * the key the row has now, fold: pendingImagesSql's fold}: the key, and the base and local row as pendingImagesSql
 * renders them, with the local row read where the row is now.
 */
export function movedImagesSql(t: TableInfo): string {
  return (
    `SELECT ominipg_m.k AS key, ${baseImage("ominipg_m.fold::json")} AS base, to_jsonb(ominipg_x)::text AS local ` +
    `FROM json_to_recordset($1::text::json) AS ominipg_m(k text, at json, fold text) ` +
    `CROSS JOIN LATERAL json_populate_record(NULL::${t.sql}, ominipg_m.at) AS ominipg_a ` +
    `LEFT JOIN ${t.sql} AS ominipg_x ON ${keyEquals(t, "ominipg_x", "ominipg_a")}`
  );
}

/**
 * For every key pending since before queue id $1 (and, with `buckets`, in the buckets of bitmap $2; with `within`,
 * where that condition on the alias holds: the keys a feed pull fetched): the key,
 * its base (the row before the first pending change of that key, null if that change created it), the local
 * row and the remote row (from the stage; null if the remote has none). All as jsonb text of the table's row
 * type, rendered locally (to_jsonb: a conflict compares values, as the push's check does, json ones included).
 * Where the local row is gone, also `fold`: the base's columns as the log has them (for movedImagesSql).
 * Keys first queued later were not pending when their remote rows were applied.
 */
export function pendingImagesSql(t: TableInfo, buckets?: number, within?: (alias: string) => string): string {
  const f = "ominipg_f";
  const scope =
    (buckets === undefined ? "" : ` AND ${inBuckets(t, f, buckets, "$2")}`) + (within ? ` AND ${within(f)}` : "");
  return (
    `WITH ${firstChangesCte(t, f)} ` +
    `SELECT ${keyJson(t, f)} AS key, ${f}.ominipg_id::text AS queue_id, ` +
    `${baseImage(`${f}.ominipg_base`)} AS base, ` +
    `to_jsonb(ominipg_x)::text AS local, to_jsonb(ominipg_s)::text AS remote, ` +
    `CASE WHEN ominipg_x.${quoteIdent(t.primaryKey[0]!)} IS NULL THEN ${f}.ominipg_base::text END AS fold ` +
    `FROM ${f} LEFT JOIN ${t.sql} AS ominipg_x ON ${keyEquals(t, "ominipg_x", f)} ` +
    `LEFT JOIN ${stageName(t)} AS ominipg_s ON ${keyEquals(t, "ominipg_s", f)} ` +
    `WHERE ${f}.ominipg_id <= $1::text::int8${scope}`
  );
}
