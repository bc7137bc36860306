import type { TableInfo } from "../core/table.js";
import type { Driver } from "../core/driver.js";
import type { Sql } from "../remote/connection.js";
import { ownedSequences } from "./owned.js";

export interface SequenceValue {
  /** The owning table, quoted and schema-qualified. */
  table: string;
  column: string;
  /** The last value handed out locally, as text (int8: exact past 2^53). */
  last: string;
}

/** Last local values of the sequences owned by synced tables' columns (SERIAL and identity), where used. */
export async function localSequenceValues(driver: Driver, tables: TableInfo[]): Promise<SequenceValue[]> {
  const owned = await ownedSequences(driver, tables);
  return owned.flatMap((s) =>
    s.last === null ? [] : [{ table: s.table.sql, column: s.column, last: String(s.last) }],
  );
}

/**
 * Move remote sequences up to at least the local values, never backwards, so that the remote's own
 * inserts do not collide with pushed ids. Returns how many were moved.
 */
export async function advanceRemoteSequences(sql: Sql, values: SequenceValue[]): Promise<number> {
  if (values.length === 0) return 0;
  const rows = await sql.unsafe(
    `SELECT setval(s.seq, s.v) FROM (
       SELECT pg_get_serial_sequence(u.t, u.c)::regclass AS seq, u.v
         FROM jsonb_to_recordset($1::text::jsonb) AS u(t text, c text, v int8)) AS s
      WHERE s.seq IS NOT NULL AND s.v > coalesce(pg_sequence_last_value(s.seq), 0)`,
    [JSON.stringify(values.map((v) => ({ t: v.table, c: v.column, v: v.last })))],
  );
  return rows.length;
}
