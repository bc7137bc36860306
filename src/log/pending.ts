import { columnList, quoteIdent, quoteLiteral } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { QUEUE_TABLE } from "./tables.js";

/**
 * What the change log holds pending for one table, as SQL fragments that the pull embeds in its own statements
 * (joining them with its temp tables). Keys come typed: each queued image is read back through
 * json_populate_record of the table's row type, so they compare with the table's own key columns.
 * Parameters are passed as text (`$n::text::int8`), as the pull passes every queue id.
 */

const Q = "ominipg_q";

function ofTable(t: TableInfo): string {
  return `${Q}.schema_name = ${quoteLiteral(t.schema)} AND ${Q}.table_name = ${quoteLiteral(t.name)}`;
}

/**
 * The table's entries, one row per image (the old and the new one of each change): the entry as `ominipg_q`,
 * the image typed as `ominipg_p`, and whether it is the old one as `ominipg_v.is_old`. Ends in its WHERE
 * clause, which callers extend with AND.
 */
function touches(t: TableInfo): string {
  return (
    `${QUEUE_TABLE} AS ${Q} ` +
    `CROSS JOIN LATERAL (VALUES (${Q}.old_row, true), (${Q}.new_row, false)) AS ominipg_v(img, is_old) ` +
    `CROSS JOIN LATERAL json_populate_record(NULL::${t.sql}, ominipg_v.img) AS ominipg_p ` +
    `WHERE ${ofTable(t)} AND ominipg_v.img IS NOT NULL`
  );
}

/** The keys (old and new) of the table's changes queued after id `afterParam`, repeated as often as queued. */
export function keysQueuedAfter(t: TableInfo, afterParam: string): string {
  return `SELECT ${columnList(t.primaryKey, "ominipg_p")} FROM ${touches(t)} AND ${Q}.id > ${afterParam}::text::int8`;
}

/**
 * The keys (old and new) of the table's changes queued after id `afterParam`, once each, with the last id that
 * touched it as `ominipg_last`.
 */
export function lastTouchesAfter(t: TableInfo, afterParam: string): string {
  const key = columnList(t.primaryKey, "ominipg_p");
  return `SELECT ${key}, max(${Q}.id) AS ominipg_last FROM ${touches(t)} AND ${Q}.id > ${afterParam}::text::int8 GROUP BY ${key}`;
}

/** SQL: the foreign key (pg_constraint row `c`) acts on its rows when the row it references is deleted or re-keyed. */
const acts = (c: string) =>
  `${c}.contype = 'f' AND (${c}.confdeltype IN ('c', 'n', 'd') OR ${c}.confupdtype IN ('c', 'n', 'd'))`;

/**
 * SQL, a FROM item `ominipg_up(oid)`: the tables whose deletes and key changes reach table `oid`'s rows through
 * foreign key actions: those it references with an action, those they reference so, and so on (a grandparent's
 * key change cascades through the parent's key into the row).
 */
export function actionAncestors(oid: string): string {
  return (
    `(WITH RECURSIVE ominipg_up(oid) AS (SELECT ominipg_g.confrelid FROM pg_constraint AS ominipg_g ` +
    `WHERE ominipg_g.conrelid = ${oid} AND ${acts("ominipg_g")} ` +
    `UNION SELECT ominipg_f.confrelid FROM pg_constraint AS ominipg_f JOIN ominipg_up ON ominipg_f.conrelid = ominipg_up.oid ` +
    `WHERE ${acts("ominipg_f")}) SELECT oid FROM ominipg_up) AS ominipg_up`
  );
}

/**
 * The last id queued after id `afterParam` for a table whose changes reach `t`'s rows through foreign key actions
 * (actionAncestors), as `ominipg_last` (NULL: none). Such a change may have changed or removed `t`'s rows
 * locally, uncaptured (the remote runs the action itself when it is pushed).
 */
export function actionParentsLastAfter(t: TableInfo, afterParam: string): string {
  return (
    `SELECT max(${Q}.id) AS ominipg_last FROM ${actionAncestors(`${Number(t.oid)}::oid`)} ` +
    `JOIN pg_class AS ominipg_r ON ominipg_r.oid = ominipg_up.oid ${ENTRIES_OF_CLASS} AND ${Q}.id > ${afterParam}::text::int8`
  );
}

/** Joins the log's entries (`${Q}`) of the table a FROM item `ominipg_r` (pg_class) names. */
const ENTRIES_OF_CLASS =
  `JOIN pg_namespace AS ominipg_n ON ominipg_n.oid = ominipg_r.relnamespace ` +
  `JOIN ${QUEUE_TABLE} AS ${Q} ON ${Q}.schema_name = ominipg_n.nspname AND ${Q}.table_name = ominipg_r.relname`;

/** Whether a TRUNCATE of the table was queued after id `afterParam`: a pending TRUNCATE holds the whole table. */
export function truncateQueuedAfter(t: TableInfo, afterParam: string): string {
  const after = `${Q}.id > ${afterParam}::text::int8`;
  return `EXISTS (SELECT 1 FROM ${QUEUE_TABLE} AS ${Q} WHERE ${ofTable(t)} AND ${Q}.op = 'T' AND ${after})`;
}

/** The key columns of the row aliased `alias` as the text of a jsonb object (the form conflict records keep). */
export function keyJson(t: TableInfo, alias: string): string {
  const key = t.primaryKey.map((c) => `${alias}.${quoteIdent(c)} AS ${quoteIdent(c)}`).join(", ");
  return `(SELECT to_jsonb(ominipg_j)::text FROM (SELECT ${key}) AS ominipg_j)`;
}

/** The table's queued key changes, in log order: `id`, and the keys before and after (`old_key`, `new_key`, keyJson). */
export function keyChangesSql(t: TableInfo): string {
  const differ = t.primaryKey.map((c) => `ominipg_o.${quoteIdent(c)} IS DISTINCT FROM ominipg_n.${quoteIdent(c)}`);
  return (
    `SELECT ${Q}.id::text AS id, ${keyJson(t, "ominipg_o")} AS old_key, ${keyJson(t, "ominipg_n")} AS new_key ` +
    `FROM ${QUEUE_TABLE} AS ${Q} CROSS JOIN LATERAL json_populate_record(NULL::${t.sql}, ${Q}.old_row) AS ominipg_o ` +
    `CROSS JOIN LATERAL json_populate_record(NULL::${t.sql}, ${Q}.new_row) AS ominipg_n ` +
    `WHERE ${ofTable(t)} AND ${Q}.old_row IS NOT NULL AND ${Q}.new_row IS NOT NULL AND (${differ.join(" OR ")}) ` +
    `ORDER BY ${Q}.id`
  );
}

/** The updates of the table of oid `$1` queued after id `$2`, in log order: their images (json text). */
export const LATER_UPDATES_SQL =
  `SELECT ${Q}.old_row::text AS old_row, ${Q}.new_row::text AS new_row FROM pg_class AS ominipg_r ${ENTRIES_OF_CLASS} ` +
  `WHERE ominipg_r.oid = $1::text::oid AND ${Q}.op = 'U' AND ${Q}.id > $2::text::int8 ORDER BY ${Q}.id`;

/** The last id in the log (0 when it is empty). */
export const LAST_QUEUE_ID = `(SELECT coalesce(max(id), 0) FROM ${QUEUE_TABLE})`;

/**
 * A CTE `name`: for every key the table's queued changes touch, its first change: the key's columns,
 * `ominipg_id` (that entry's id) and `ominipg_base` (the row before it, as json; null if that change created
 * the row). An update's images may hold only the columns it assigned (log/capture.ts), so the base is each
 * column's old value in the first entry under that key that has it; a column no entry has is the local row's,
 * which callers take with json_populate_record(<the local row>, ominipg_base). Set-based (one pass over the
 * log, no lookup per key): linear in the number of pending changes.
 */
export function firstChangesCte(t: TableInfo, name: string): string {
  const pk = columnList(t.primaryKey);
  return (
    `ominipg_touch AS (SELECT ${columnList(t.primaryKey, "ominipg_p")}, ${Q}.id AS ominipg_id, ` +
    `ominipg_v.is_old AS ominipg_is_old, ${Q}.old_row AS ominipg_old FROM ${touches(t)}), ` +
    `ominipg_olds AS (SELECT DISTINCT ON (${pk}, ominipg_e.ominipg_c) ${pk}, ominipg_e.ominipg_c, ominipg_e.ominipg_ev ` +
    `FROM ominipg_touch CROSS JOIN LATERAL json_each(ominipg_old) AS ominipg_e(ominipg_c, ominipg_ev) ` +
    `WHERE ominipg_is_old ORDER BY ${pk}, ominipg_e.ominipg_c, ominipg_id), ` +
    `ominipg_fold AS (SELECT ${pk}, json_object_agg(ominipg_c, ominipg_ev) AS ominipg_old FROM ominipg_olds GROUP BY ${pk}), ` +
    // For an update that keeps the key, its old image comes first: the base is the row before the update.
    `${name} AS (SELECT DISTINCT ON (${pk}) ${pk}, ominipg_id, ` +
    `CASE WHEN ominipg_is_old THEN ominipg_fold.ominipg_old END AS ominipg_base ` +
    `FROM ominipg_touch LEFT JOIN ominipg_fold USING (${pk}) ORDER BY ${pk}, ominipg_id, ominipg_is_old DESC)`
  );
}
