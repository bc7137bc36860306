import type { Catalog } from "../capture/catalog.js";
import type { TableInfo } from "../core/table.js";
import type { Driver } from "../core/driver.js";
import type postgres from "postgres";
import { quoteIdent, quoteLiteral } from "../core/sql.js";
import { LEASE_TABLE } from "../log/tables.js";
import { columnSequenceSql, lastHandedOutSql, ownedSequences, type OwnedSequence } from "./owned.js";

/** A sequence a pull moves on: what of an OwnedSequence stays the same until a DDL statement (not its last value). */
export type PulledSequence = Pick<OwnedSequence, "seq" | "table" | "column" | "increment">;

/**
 * The sequences of each catalog's synced tables (ownedSequences), read once per catalog: a DDL statement makes a new
 * one (client.ts), and the query was ~4 ms of every pull, an idle one's largest local part.
 */
const ownedOf = new WeakMap<Catalog, Promise<PulledSequence[]>>();

/**
 * The sequences owned by synced columns: the ones a pull moves past the ids it brings. Not those
 * pointed at leased blocks (`sequences: "auto"`, seq/lease.ts): the remote's value is past every block, this
 * client's included, so moving there would leave the block for ids other clients may lease. `tables`: the
 * catalog's tables the pull reads (the same for the same catalog).
 */
export async function pulledSequences(d: Driver, catalog: Catalog, tables: TableInfo[]): Promise<PulledSequence[]> {
  let owned = ownedOf.get(catalog);
  if (!owned) {
    owned = ownedSequences(d, tables).then((all) =>
      all.map(({ seq, table, column, increment }) => ({ seq, table, column, increment })),
    );
    ownedOf.set(catalog, owned);
    owned.catch(() => ownedOf.delete(catalog)); // a failed read is not kept
  }
  const leased = new Set<string>();
  const { rows } = await d.query<{ found: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS found`, [LEASE_TABLE], {
    prepare: false,
  });
  if (rows[0]?.found) {
    const held = await d.query<{ seq: string }>(`SELECT DISTINCT seq FROM ${LEASE_TABLE}`, [], { prepare: false });
    for (const r of held.rows) leased.add(r.seq);
  }
  return (await owned).filter((s) => !leased.has(s.seq));
}

export type Tx = postgres.TransactionSql<{ int8: number | bigint }>;

/**
 * The remote's last values of the same sequences, as text: null where the remote has no such sequence, has
 * not handed out a value yet, or does not let this role read it (no SELECT or USAGE on it). One not called since a
 * `setval(.., false)` or a RESTART (the idiom after a restore) has no pg_sequence_last_value although it handed out
 * ids: read from the sequence itself then (SELECT on it), in a second statement. Any other failure is the pull's
 * failure: a silent null would let local ids collide with ids the remote handed out.
 */
export async function remoteSequenceValues(tx: Tx, owned: PulledSequence[]): Promise<(string | null)[]> {
  if (owned.length === 0) return [];
  const list = JSON.stringify(owned.map((o) => ({ t: o.table.sql, c: o.column })));
  const rows = await tx.unsafe<{ i: number; v: string | null; uncalled: string | null }[]>(
    `SELECT e.i::int AS i,
            CASE WHEN has_sequence_privilege(s.seq, 'SELECT, USAGE') THEN pg_sequence_last_value(s.seq)::text END AS v,
            CASE WHEN has_sequence_privilege(s.seq, 'SELECT') AND pg_sequence_last_value(s.seq) IS NULL
                 THEN s.seq::regclass::text END AS uncalled
       FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS e(j, i)
       CROSS JOIN LATERAL (SELECT ${columnSequenceSql("e.j->>'t'", "e.j->>'c'")} AS seq) AS s
      WHERE s.seq IS NOT NULL`,
    [list],
  );
  const out: (string | null)[] = owned.map(() => null);
  for (const r of rows) out[Number(r.i) - 1] = r.v;
  const uncalled = rows.filter((r) => r.uncalled !== null);
  if (uncalled.length > 0) {
    const reads = uncalled.map(
      (r) => `SELECT ${Number(r.i)} AS i, ${lastHandedOutSql(r.uncalled!, quoteLiteral(r.uncalled!))}::text AS v`,
    );
    for (const r of await tx.unsafe<{ i: number; v: string | null }[]>(reads.join(" UNION ALL ")))
      out[Number(r.i) - 1] = r.v;
  }
  return out;
}

/**
 * Move local sequences on (never back: up, or down for a descending one) past the ids pulled rows use and the
 * remote has handed out, so the next local insert does not collide with a pulled row. Not for `sequences:
 * "lease"`, whose sequences point at leased id blocks. Returns how many moved.
 */
export async function catchUpSequences(d: Driver, owned: PulledSequence[], remote: (string | null)[]): Promise<number> {
  let moved = 0;
  for (let i = 0; i < owned.length; i++) {
    const s = owned[i]!;
    const [farthest, past, limit] = s.increment > 0n ? ["greatest", ">", "v <= seqmax"] : ["least", "<", "v >= seqmin"];
    const { rows } = await d.query<{ moved: boolean }>(
      `SELECT setval($1::regclass, v) IS NOT NULL AS moved FROM (
         SELECT ${farthest}((SELECT ${s.increment > 0n ? "max" : "min"}(${quoteIdent(s.column)})::int8 FROM ${s.table.sql}), $2::text::int8) AS v) AS x
        WHERE v IS NOT NULL AND (SELECT ${limit} FROM pg_sequence WHERE seqrelid = $1::regclass)
          AND v ${past} ${lastHandedOutSql(s.seq, "$1")}`,
      [s.seq, remote[i] ?? null],
      { prepare: false },
    );
    if (rows.length > 0) moved++;
  }
  return moved;
}
