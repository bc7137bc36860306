import { rowJsonb } from "../core/json-text.js";
import { columnList as cols, columnsEqual, qualified, quoteIdent } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { SLOT_NAME_SQL } from "../remote/feed.js";
import { FEED, FEED_CLIENTS, FEED_STATE } from "../remote/schema.js";
import { heldName, stageName } from "./sql.js";

/**
 * The SQL of the feed strategy (feed.ts). Remote statements run in the pull's snapshot, under the client's own
 * identity: the feed gives keys, the rows themselves are read from the tables, where row-level security applies.
 */

const R = "ominipg_r";

/** Whether this role can read the feed at all (its tables exist and are granted), this database's slot and its state. */
export const FEED_ACCESS_SQL = `SELECT coalesce(has_table_privilege(to_regclass('${FEED_STATE}'), 'SELECT'), false)
  AND coalesce(has_table_privilege(to_regclass('${FEED}'), 'SELECT'), false) AS readable,
  ${SLOT_NAME_SQL} AS slot, r.slot_name IS NOT NULL AS slot_found, r.wal_status::text AS wal_status
  FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots AS r ON r.slot_name = ${SLOT_NAME_SQL}`;

/** The slot's state row, as of the snapshot: its epoch, how far the feed is complete and trimmed, its age. */
export const FEED_STATE_SQL = `SELECT epoch::text AS epoch, drained_upto::text AS drained_upto, trimmed_upto::text AS trimmed_upto,
  floor(extract(epoch FROM now() - drained_at) * 1000)::int8 AS age_ms FROM ${FEED_STATE} WHERE slot_name = $1`;

/** The feed rows of one table ($1 schema, $2 name) after position $3 up to $4. */
const RANGE = `schema_name = $1 AND table_name = $2 AND lsn > $3::text::pg_lsn AND lsn <= $4::text::pg_lsn`;

/**
 * How many keys of the table changed in the range, whether the table must be read whole (a TRUNCATE...), and
 * whether the feed is blind to rows leaving this role's sight: row-level security applies to it, and without
 * REPLICA IDENTITY FULL the server does not log the rows' images an UPDATE or DELETE started from.
 */
export const FEED_COUNT_SQL = `SELECT count(*)::int8 AS n, coalesce(bool_or(key IS NULL), false) AS whole,
  coalesce((SELECT row_security_active(c.oid) AND c.relreplident <> 'f' FROM pg_class AS c
    WHERE c.oid = to_regclass(format('%I.%I', $1::text, $2::text))), false) AS blind
  FROM ${FEED} WHERE ${RANGE}`;

/**
 * Each distinct changed key of the range, and of the JSON array $5 (keys to read again: log/reread.ts), typed by
 * the table's own columns (jsonb_populate_record: each value's text through its type's input function), with
 * the row the table holds for it now (`rowJsonb` text), or null when it holds none (deleted, or not visible to
 * this role). `k` is the typed key as jsonb text.
 */
export function feedFetchSql(t: TableInfo): string {
  const p = "ominipg_p";
  const first = `${R}.${quoteIdent(t.primaryKey[0]!)}`;
  return (
    `WITH ominipg_k AS (SELECT DISTINCT ${cols(t.primaryKey, p)} FROM (SELECT key FROM ${FEED} WHERE ${RANGE} AND key IS NOT NULL ` +
    `UNION ALL SELECT value FROM jsonb_array_elements($5::text::jsonb)) AS ominipg_f ` +
    `CROSS JOIN LATERAL jsonb_populate_record(NULL::${t.sql}, ominipg_f.key) AS ${p}) ` +
    `SELECT to_jsonb(ominipg_k)::text AS k, CASE WHEN ${first} IS NULL THEN NULL ELSE ${rowJsonb(t, R)}::text END AS j ` +
    `FROM ominipg_k LEFT JOIN (SELECT ${cols(t.columns.map((c) => c.name))} FROM ${t.sql}) AS ${R} ` +
    `ON ${columnsEqual(t.primaryKey, R, "ominipg_k")}`
  );
}

/** This client's position in the feed ($1 client id, $2 epoch, $3 position), as its own identity's row. */
export const REGISTER_SQL = `INSERT INTO ${FEED_CLIENTS} (client_id, epoch, lsn) VALUES ($1::uuid, $2::uuid, $3::text::pg_lsn)
  ON CONFLICT (owner, client_id) DO UPDATE SET epoch = EXCLUDED.epoch, lsn = EXCLUDED.lsn, seen_at = now()`;

/** Forget this client's position (unregister()). */
export const UNREGISTER_SQL = `DELETE FROM ${FEED_CLIENTS} WHERE client_id = $1::uuid AND owner = public._ominipg_identity()`;

/** The local temp table of the keys the remote no longer has a row for (deleted, or out of this role's sight). */
export function goneName(t: TableInfo): string {
  return qualified("pg_temp", `ominipg_gone_${t.oid}`);
}

export function createGoneSql(t: TableInfo): string {
  return (
    `DROP TABLE IF EXISTS ${goneName(t)}; CREATE TEMP TABLE ${goneName(t)} AS SELECT ${cols(t.primaryKey)} FROM ${t.sql} WITH NO DATA; ` +
    `ALTER TABLE ${goneName(t)} ADD PRIMARY KEY (${cols(t.primaryKey)})`
  );
}

export function dropGoneSql(t: TableInfo): string {
  return `DROP TABLE IF EXISTS ${goneName(t)}`;
}

/** Add keys ($1: a JSON array of typed keys as `feedFetchSql` returns them) to the gone keys. */
export function goneInsertSql(t: TableInfo): string {
  return `INSERT INTO ${goneName(t)} SELECT ${cols(t.primaryKey)} FROM jsonb_populate_recordset(NULL::${goneName(t)}, $1::text::jsonb) ON CONFLICT DO NOTHING`;
}

/** Delete the local rows of the gone keys, unless held (pending local changes). */
export function deleteGoneSql(t: TableInfo): string {
  return (
    `WITH ominipg_d AS (DELETE FROM ${t.sql} AS ominipg_x USING ${goneName(t)} AS ominipg_g WHERE ${columnsEqual(t.primaryKey, "ominipg_x", "ominipg_g")} ` +
    `AND NOT EXISTS (SELECT 1 FROM ${heldName(t)} AS ominipg_k WHERE ${columnsEqual(t.primaryKey, "ominipg_k", "ominipg_x")}) RETURNING 1) ` +
    `SELECT count(*)::int AS deleted FROM ominipg_d`
  );
}

/** The pending-change check's scope (conflicts.ts): keys the feed fetched, with a row (the stage) or without (gone). */
export function fetchedKey(t: TableInfo, alias: string): string {
  const eq = (other: string) =>
    `EXISTS (SELECT 1 FROM ${other} AS ominipg_e WHERE ${columnsEqual(t.primaryKey, "ominipg_e", alias)})`;
  return `(${eq(stageName(t))} OR ${eq(goneName(t))})`;
}
