import type { Driver } from "../core/driver.js";
import { columnList, quoteIdent } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { actionAncestors } from "./pending.js";
import { CONFLICTS_TABLE, REJECTED_TABLE, REREAD_TABLE } from "./tables.js";

/**
 * Rows a pull must read again although the remote did not change them: where a push left the local row other
 * than the remote's without pushing anything. A change the remote refused and that was set aside
 * (`_ominipg_rejected`, `onReject: "skip"`), a conflict settled by a resolver's "skip" (push nothing, keep
 * the local row), and changes that cancelled out (`_ominipg_reread`: pushed as nothing, while a pull held the
 * remote's row back for them). And the rows of a table whose foreign key acts on delete or key update (CASCADE, SET NULL, SET
 * DEFAULT) where a conflict of a row it references was settled other than as the local change left it (a delete
 * or key change undone, or skipped), or such a change was refused and set aside: the action changed rows locally
 * that the remote's did not, and settling (without triggers) does not change them back; which ones is not known,
 * so the whole table.
 * A diff finds those rows by itself; a pull from the change feed, which reads only what changed
 * remotely, asks here (pull/feed.ts). Positions: the last rejected id, the time of the last settlement, the last
 * id of `_ominipg_reread`.
 */
export interface RereadPosition {
  rejected: string;
  settledAt: string;
  /** The last id in _ominipg_reread (changes pushed as nothing); absent in cursors saved before it existed. */
  noop?: string;
}

/**
 * Whether a table that table $5 references by a foreign key with an action (or one such a table references so,
 * and so on) had, since $4 / rejected id $3: a conflict settled where the local change deleted the row or
 * changed its key (local gone, or not at the recorded key) and the row did not end as the change left it
 * (restored, moved back, merged, or skipped); or a delete or update refused and set aside.
 */
const PARENT_UNDONE =
  `EXISTS (SELECT 1 FROM ${actionAncestors("$5::oid")} JOIN pg_class AS ominipg_pc ON ominipg_pc.oid = ominipg_up.oid ` +
  `JOIN pg_namespace AS ominipg_pn ON ominipg_pn.oid = ominipg_pc.relnamespace ` +
  `WHERE EXISTS (SELECT 1 FROM ${CONFLICTS_TABLE} AS ominipg_c WHERE ominipg_c.schema_name = ominipg_pn.nspname ` +
  `AND ominipg_c.table_name = ominipg_pc.relname AND ominipg_c.origin = 'push' AND ominipg_c.detected_at >= $4::text::timestamptz ` +
  `AND (ominipg_c.local IS NULL OR NOT ominipg_c.local @> ominipg_c.row_key) ` +
  `AND (ominipg_c.resolution = 'skip' OR ominipg_c.resolved IS DISTINCT FROM ominipg_c.local)) ` +
  `OR EXISTS (SELECT 1 FROM ${REJECTED_TABLE} AS ominipg_x WHERE ominipg_x.schema_name = ominipg_pn.nspname ` +
  `AND ominipg_x.table_name = ominipg_pc.relname AND ominipg_x.id > $3::text::int8 AND ominipg_x.op IN ('D', 'U')))`;

/**
 * Where the log is now: table `t`, pulled now, has nothing left to read again from before (its changes pushed as
 * nothing are forgotten, in the same statement).
 */
export async function rereadPosition(d: Driver, t: TableInfo): Promise<RereadPosition> {
  const { rows } = await d.query<{ rejected: string; at: string; noop: string }>(
    `WITH ominipg_n AS (SELECT coalesce(max(id), 0) AS n FROM ${REREAD_TABLE}), ` +
      `ominipg_gone AS (DELETE FROM ${REREAD_TABLE} WHERE schema_name = $1 AND table_name = $2 AND id <= (SELECT n FROM ominipg_n)) ` +
      `SELECT (SELECT coalesce(max(id), 0) FROM ${REJECTED_TABLE})::text AS rejected, now()::text AS at, ` +
      `(SELECT n FROM ominipg_n)::text AS noop`,
    [t.schema, t.name],
    { prepare: false },
  );
  return { rejected: rows[0]!.rejected, settledAt: rows[0]!.at, noop: rows[0]!.noop };
}

/** The whole table was read (without the feed): its changes pushed as nothing need no reading again. */
export async function forgetReread(d: Driver, t: TableInfo): Promise<void> {
  await d.query(`DELETE FROM ${REREAD_TABLE} WHERE schema_name = $1 AND table_name = $2`, [t.schema, t.name], {
    prepare: false,
  });
}

/**
 * The keys (typed by the table's columns, as a JSON array of objects) of the table's rows to read again since
 * `after`, and why the whole table must be, if it must (see above).
 */
export async function keysToReread(
  d: Driver,
  t: TableInfo,
  after: RereadPosition,
): Promise<{ keys: string; whole: string | undefined; count: number }> {
  const pk = t.primaryKey.map((c) => `ominipg_p.${quoteIdent(c)}`).join(", ");
  const { rows } = await d.query<{ keys: string; truncated: boolean; parents: boolean; n: number }>(
    `WITH ominipg_r AS (SELECT op, old_row, new_row FROM ${REJECTED_TABLE} ` +
      `WHERE schema_name = $1 AND table_name = $2 AND id > $3::text::int8 UNION ALL SELECT 'N', old_row, new_row ` +
      `FROM ${REREAD_TABLE} WHERE schema_name = $1 AND table_name = $2 AND id > $6::text::int8), ` +
      `ominipg_k AS (SELECT DISTINCT ${columnList(t.primaryKey)} FROM (` +
      `SELECT ${pk} FROM ominipg_r CROSS JOIN LATERAL (VALUES (ominipg_r.old_row), (ominipg_r.new_row)) AS ominipg_v(img) ` +
      `CROSS JOIN LATERAL json_populate_record(NULL::${t.sql}, ominipg_v.img) AS ominipg_p WHERE ominipg_v.img IS NOT NULL ` +
      // A skipped key change left two keys other than the remote's: the row's before the change and after.
      `UNION ALL SELECT ${pk} FROM ${CONFLICTS_TABLE} AS ominipg_c ` +
      `CROSS JOIN LATERAL (VALUES (ominipg_c.base), (ominipg_c.local)) AS ominipg_w(img) ` +
      `CROSS JOIN LATERAL jsonb_populate_record(NULL::${t.sql}, ominipg_w.img) AS ominipg_p ` +
      `WHERE ominipg_c.schema_name = $1 AND ominipg_c.table_name = $2 AND ominipg_c.origin = 'push' ` +
      `AND ominipg_c.resolution = 'skip' AND ominipg_c.detected_at >= $4::text::timestamptz AND ominipg_w.img IS NOT NULL) AS ominipg_all) ` +
      `SELECT coalesce((SELECT jsonb_agg(to_jsonb(ominipg_k)) FROM ominipg_k), '[]')::text AS keys, ` +
      `EXISTS (SELECT 1 FROM ominipg_r WHERE op = 'T') AS truncated, ${PARENT_UNDONE} AS parents, ` +
      `(SELECT count(*) FROM ominipg_k)::int AS n`,
    [t.schema, t.name, after.rejected, after.settledAt, t.oid, after.noop ?? "0"],
    { prepare: false },
  );
  const r = rows[0]!;
  const whole = r.truncated
    ? "a local TRUNCATE of the table was refused by the remote and set aside"
    : r.parents
      ? "a delete or key change of a row it references by a foreign key with an ON DELETE or ON UPDATE action " +
        "was undone by a conflict's settling, skipped or refused: the rows the action changed locally are read again"
      : undefined;
  return { keys: r.keys, whole, count: Number(r.n) };
}
