import type { Driver } from "../core/driver.js";
import type { TableInfo } from "../core/table.js";

/** A SERIAL / identity sequence owned by a column of a synced table. */
export interface OwnedSequence {
  /** Quoted, schema-qualified sequence name. */
  seq: string;
  table: TableInfo;
  column: string;
  /** The last value handed out locally, or null if none yet. */
  last: number | null;
  /** It counts up (a positive increment). */
  ascending: boolean;
}

/** The local sequences owned by columns of `tables` (through SERIAL or an identity), with their last values. */
export async function ownedSequences(d: Driver, tables: readonly TableInfo[]): Promise<OwnedSequence[]> {
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  const { rows } = await d.query<{ oid: number; seq: string; col: string; last: number | null; ascending: boolean }>(
    `SELECT t.oid::int8 AS oid, format('%I.%I', sn.nspname, s.relname) AS seq, a.attname AS col,
            pg_sequence_last_value(s.oid)::int8 AS last, ps.seqincrement > 0 AS ascending
       FROM pg_class s JOIN pg_namespace sn ON sn.oid = s.relnamespace
       JOIN pg_sequence ps ON ps.seqrelid = s.oid
       JOIN pg_depend dep ON dep.objid = s.oid AND dep.classid = 'pg_class'::regclass
                         AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
       JOIN pg_class t ON t.oid = dep.refobjid
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = dep.refobjsubid
      WHERE s.relkind = 'S'`,
    [],
    { prepare: false },
  );
  return rows.flatMap((r) => {
    const table = byOid.get(Number(r.oid));
    if (!table) return [];
    return [
      { seq: r.seq, table, column: r.col, last: r.last === null ? null : Number(r.last), ascending: r.ascending },
    ];
  });
}
