import type { Driver } from "../core/driver.js";
import type { TableInfo } from "../core/table.js";

/** A SERIAL / identity sequence owned by a column of a synced table. */
export interface OwnedSequence {
  /** Quoted, schema-qualified sequence name. */
  seq: string;
  table: TableInfo;
  column: string;
  /** The last value handed out locally, or null if none yet (int8: exact past 2^53). */
  last: bigint | null;
  /** Its START value (the first it hands out). */
  start: bigint;
  /** Its INCREMENT: a leased block's ids are this far apart. */
  increment: bigint;
}

/** The local sequences owned by columns of `tables` (through SERIAL or an identity), with their last values. */
export async function ownedSequences(d: Driver, tables: readonly TableInfo[]): Promise<OwnedSequence[]> {
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  if (byOid.size === 0) return [];
  // From the tables' own dependencies (an index scan of pg_depend), not a join over all of it: ~0.3 ms instead
  // of ~8 ms on a new database, once per pull.
  const { rows } = await d.query<{
    oid: number;
    seq: string;
    col: string;
    last: string | null;
    start: string;
    increment: string;
  }>(
    `SELECT dep.refobjid::int8 AS oid, format('%I.%I', sn.nspname, s.relname) AS seq, a.attname AS col,
            pg_sequence_last_value(s.oid)::text AS last, ps.seqstart::text AS start,
            ps.seqincrement::text AS increment
       FROM pg_depend dep
       JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
       JOIN pg_namespace sn ON sn.oid = s.relnamespace
       JOIN pg_sequence ps ON ps.seqrelid = s.oid
       JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
      WHERE dep.refclassid = 'pg_class'::regclass AND dep.refobjid = ANY ($1::text::oid[])
        AND dep.classid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')`,
    [`{${[...byOid.keys()].join(",")}}`],
    { prepare: false },
  );
  return rows.flatMap((r) => {
    const table = byOid.get(Number(r.oid));
    if (!table) return [];
    const last = r.last === null ? null : BigInt(r.last);
    return [{ seq: r.seq, table, column: r.col, last, start: BigInt(r.start), increment: BigInt(r.increment) }];
  });
}
