import type { Driver } from "../core/driver.js";
import { columnList, quoteIdent } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { CONFLICTS_TABLE, REJECTED_TABLE } from "./tables.js";

/**
 * Rows a pull must read again although the remote did not change them: where a push left the local row other
 * than the remote's without pushing anything. A change the remote refused and that was set aside
 * (`_ominipg_rejected`, `onReject: "skip"`), and a conflict settled by a resolver's "skip" (push nothing, keep
 * the local row). A diff finds those rows by itself; a pull from the change feed, which reads only what changed
 * remotely, asks here (pull/feed.ts). Positions: the last rejected id, and the time of the last settlement.
 */
export interface RereadPosition {
  rejected: string;
  settledAt: string;
}

/** Where the log is now: a table pulled now has nothing left to read again from before. */
export async function rereadPosition(d: Driver): Promise<RereadPosition> {
  const { rows } = await d.query<{ rejected: string; at: string }>(
    `SELECT (SELECT coalesce(max(id), 0) FROM ${REJECTED_TABLE})::text AS rejected, now()::text AS at`,
    [],
    { prepare: false },
  );
  return { rejected: rows[0]!.rejected, settledAt: rows[0]!.at };
}

/**
 * The keys (typed by the table's columns, as a JSON array of objects) of the table's rows to read again since
 * `after`, and whether the whole table must be (a TRUNCATE was set aside).
 */
export async function keysToReread(
  d: Driver,
  t: TableInfo,
  after: RereadPosition,
): Promise<{ keys: string; whole: boolean; count: number }> {
  const pk = t.primaryKey.map((c) => `ominipg_p.${quoteIdent(c)}`).join(", ");
  const { rows } = await d.query<{ keys: string; whole: boolean; n: number }>(
    `WITH ominipg_r AS (SELECT op, old_row, new_row FROM ${REJECTED_TABLE} ` +
      `WHERE schema_name = $1 AND table_name = $2 AND id > $3::text::int8), ` +
      `ominipg_k AS (SELECT DISTINCT ${columnList(t.primaryKey)} FROM (` +
      `SELECT ${pk} FROM ominipg_r CROSS JOIN LATERAL (VALUES (ominipg_r.old_row), (ominipg_r.new_row)) AS ominipg_v(img) ` +
      `CROSS JOIN LATERAL json_populate_record(NULL::${t.sql}, ominipg_v.img) AS ominipg_p WHERE ominipg_v.img IS NOT NULL ` +
      `UNION ALL SELECT ${pk} FROM ${CONFLICTS_TABLE} AS ominipg_c ` +
      `CROSS JOIN LATERAL jsonb_populate_record(NULL::${t.sql}, ominipg_c.row_key) AS ominipg_p ` +
      `WHERE ominipg_c.schema_name = $1 AND ominipg_c.table_name = $2 AND ominipg_c.origin = 'push' ` +
      `AND ominipg_c.resolution = 'skip' AND ominipg_c.detected_at >= $4::text::timestamptz) AS ominipg_all) ` +
      `SELECT coalesce((SELECT jsonb_agg(to_jsonb(ominipg_k)) FROM ominipg_k), '[]')::text AS keys, ` +
      `EXISTS (SELECT 1 FROM ominipg_r WHERE op = 'T') AS whole, (SELECT count(*) FROM ominipg_k)::int AS n`,
    [t.schema, t.name, after.rejected, after.settledAt],
    { prepare: false },
  );
  const r = rows[0]!;
  return { keys: r.keys, whole: r.whole, count: Number(r.n) };
}
