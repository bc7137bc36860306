import type { TableInfo } from "../core/table.js";
import type { Driver } from "../core/driver.js";
import type postgres from "postgres";
import { quoteIdent } from "../core/sql.js";

/** A SERIAL / identity sequence owned by a column of a synced table. */
export interface OwnedSequence {
  /** Quoted, schema-qualified sequence name. */
  seq: string;
  table: TableInfo;
  column: string;
}

export async function ownedSequences(d: Driver, tables: TableInfo[]): Promise<OwnedSequence[]> {
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  const { rows } = await d.query<{ oid: number; seq: string; col: string }>(
    `SELECT t.oid::int8 AS oid, format('%I.%I', sn.nspname, s.relname) AS seq, a.attname AS col
       FROM pg_class s JOIN pg_namespace sn ON sn.oid = s.relnamespace
       JOIN pg_sequence ps ON ps.seqrelid = s.oid AND ps.seqincrement > 0
       JOIN pg_depend dep ON dep.objid = s.oid AND dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
       JOIN pg_class t ON t.oid = dep.refobjid
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = dep.refobjsubid
      WHERE s.relkind = 'S'`,
    [],
    { prepare: false },
  );
  return rows.filter((r) => byOid.has(Number(r.oid))).map((r) => ({ seq: r.seq, table: byOid.get(Number(r.oid))!, column: r.col }));
}

/**
 * The remote's last values of the same sequences (as text; null where the remote has none or will not say,
 * e.g. without USAGE/SELECT on the sequence). Runs in its own savepoint so a refusal does not end the snapshot.
 */
export type Tx = postgres.TransactionSql<{ int8: number | bigint }>;

export async function remoteSequenceValues(tx: Tx, owned: OwnedSequence[]): Promise<(string | null)[]> {
  if (owned.length === 0) return [];
  const list = JSON.stringify(owned.map((o) => ({ t: o.table.sql, c: o.column })));
  try {
    const rows = await tx.savepoint((sp) =>
      sp.unsafe<{ i: number; v: string | null }[]>(
        `SELECT u.i::int AS i, (SELECT pg_sequence_last_value(s)::text FROM (SELECT pg_get_serial_sequence(u.t, u.c)::regclass AS s) AS x WHERE s IS NOT NULL) AS v
           FROM jsonb_to_recordset($1::text::jsonb) WITH ORDINALITY AS u(t text, c text, i int8)`,
        [list],
      ),
    );
    const out: (string | null)[] = owned.map(() => null);
    for (const r of rows) out[Number(r.i) - 1] = r.v;
    return out;
  } catch {
    return owned.map(() => null);
  }
}

/**
 * Move local sequences up (never down) past the ids pulled rows use and the remote has handed out, so the
 * next local insert does not collide with a pulled row. Not for `sequences: "lease"`, whose sequences point
 * at leased id blocks. Returns how many moved.
 */
export async function catchUpSequences(d: Driver, owned: OwnedSequence[], remote: (string | null)[]): Promise<number> {
  let moved = 0;
  for (let i = 0; i < owned.length; i++) {
    const s = owned[i]!;
    const { rows } = await d.query<{ moved: boolean }>(
      `SELECT setval($1::regclass, v) IS NOT NULL AS moved FROM (
         SELECT greatest((SELECT max(${quoteIdent(s.column)})::int8 FROM ${s.table.sql}), $2::text::int8) AS v) AS x
        WHERE v IS NOT NULL AND v <= (SELECT seqmax FROM pg_sequence WHERE seqrelid = $1::regclass)
          AND v > coalesce(pg_sequence_last_value($1::regclass), (SELECT seqstart - 1 FROM pg_sequence WHERE seqrelid = $1::regclass))`,
      [s.seq, remote[i] ?? null],
      { prepare: false },
    );
    if (rows.length > 0) moved++;
  }
  return moved;
}
