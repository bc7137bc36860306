import type { TableInfo } from "../core/table.js";
import type { Driver } from "../core/driver.js";
import type { TransactionSql } from "postgres";
import type { Sql } from "../remote/connection.js";
import { columnSequenceSql, lastHandedOutSql, ownedSequences, type OwnedSequence } from "./owned.js";

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
 * inserts do not collide with pushed ids. Not those this role may not UPDATE: their tables are returned
 * (`denied`), for a warning. Not past a remote sequence's MAXVALUE (setval would fail, and every sync with it). Not descending ones, which this would move backwards. Returns how many
 * were moved. A sequence not used since it was made or RESTARTed has no last value (pg_sequence_last_value is
 * null): its next value is read from the sequence itself, so that one restarted above the local value stays (a
 * role that may not read it, only UPDATE it, moves it as if it were at its start).
 */
export async function advanceRemoteSequences(
  sql: Sql,
  values: SequenceValue[],
): Promise<{ moved: number; denied: string[] }> {
  if (values.length === 0) return { moved: 0, denied: [] };
  const [r] = await sql.unsafe<
    { moved: number; unused: { seq: string; v: string }[] | null; denied: string[] | null }[]
  >(
    `WITH s AS (
       SELECT ${columnSequenceSql("u.t", "u.c")} AS seq, u.t, u.v
         FROM jsonb_to_recordset($1::text::jsonb) AS u(t text, c text, v int8)),
     p AS (SELECT s.seq, s.t, least(s.v, q.seqmax) AS v, has_sequence_privilege(s.seq, 'UPDATE') AS movable
             FROM s JOIN pg_sequence AS q ON q.seqrelid = s.seq WHERE q.seqincrement > 0),
     a AS (SELECT p.seq, p.v, CASE WHEN has_sequence_privilege(p.seq, 'SELECT, USAGE') THEN pg_sequence_last_value(p.seq) END AS last,
                  has_sequence_privilege(p.seq, 'SELECT') AS readable
             FROM p WHERE p.movable),
     moved AS (SELECT setval(a.seq, a.v) FROM a WHERE a.v > coalesce(a.last, CASE WHEN NOT a.readable THEN 0 END))
     SELECT (SELECT count(*) FROM moved)::int AS moved,
            (SELECT json_agg(json_build_object('seq', format('%I.%I', n.nspname, c.relname), 'v', a.v::text))
               FROM a JOIN pg_class AS c ON c.oid = a.seq JOIN pg_namespace AS n ON n.oid = c.relnamespace
              WHERE a.last IS NULL AND a.readable) AS unused,
            (SELECT json_agg(DISTINCT p.t) FROM p WHERE NOT p.movable) AS denied`,
    [JSON.stringify(values.map((v) => ({ t: v.table, c: v.column, v: v.last })))],
  );
  let moved = r!.moved;
  for (const u of r!.unused ?? []) {
    // Its next value is last_value (is_called false): moved only when the local value reaches it.
    const rows = await sql.unsafe(
      `SELECT setval($1::regclass, $2::text::int8) FROM ${u.seq} AS q
        WHERE $2::text::int8 > q.last_value OR ($2::text::int8 = q.last_value AND NOT q.is_called)`,
      [u.seq, u.v],
    );
    moved += rows.length;
  }
  return { moved, denied: r!.denied ?? [] };
}

/**
 * Take up to `n` ids of the remote sequence of `s`'s column (nextval(), which no other session is handed again):
 * no more than it has left before its MAXVALUE, so a lease near the end does not fail part-way, having burnt
 * every id left. In one row: postgres.js 3.4 does not reset its row count after an error that follows some
 * DataRows, so the next query on the connection would get that many null rows in front of its own.
 */
export async function takeIds(sql: Sql, s: OwnedSequence, n: number): Promise<bigint[]> {
  await holdInserts(sql, s.table);
  const last = await lastHandedOut(sql, s);
  const [row] = await sql.unsafe<{ found: boolean; increment: string | null; ids: string | null }[]>(
    `SELECT p.seqrelid IS NOT NULL AS found, p.seqincrement::text AS increment,
            CASE WHEN p.seqincrement = $4::text::int8 THEN (SELECT string_agg(nextval(p.seqrelid::regclass)::text, ',' ORDER BY g)
               FROM generate_series(1, least($3::int8, floor((p.seqmax::numeric - coalesce($5::text::numeric,
                      CASE WHEN has_sequence_privilege(p.seqrelid, 'SELECT, USAGE')
                           THEN pg_sequence_last_value(p.seqrelid::regclass) END,
                      p.seqstart::numeric - p.seqincrement)) / p.seqincrement)::int8)) AS g) END AS ids
       FROM (SELECT ${columnSequenceSql("$1::text", "$2::text")} AS seq) AS x
       LEFT JOIN pg_sequence p ON p.seqrelid = x.seq`,
    [s.table.sql, s.column, n, String(s.increment), last],
  );
  const where = `the remote column ${s.column} of ${s.table.sql}`;
  if (!row?.found) throw new Error(`${where} has no sequence`);
  // Other steps than the local sequence's: it would not mint the leased ids, but ids between them.
  if (row.increment !== String(s.increment))
    throw new Error(`the remote sequence of ${where} counts by ${row.increment}, the local one by ${s.increment}`);
  if (row.ids === null) throw new Error(`${where} has no ids left: its sequence reached its MAXVALUE`);
  return row.ids.split(",").map(BigInt);
}

/**
 * The last id the remote sequence handed out, which its count of ids left starts from, where this role may read
 * it (lastHandedOutSql: after RESTART WITH 95 of a sequence ending at 100, counted from its START a lease asked
 * for 20 ids and failed part-way, having burnt the 6 left). Null where it cannot be read: from the START then.
 */
async function lastHandedOut(sql: Sql, s: OwnedSequence): Promise<string | null> {
  const [seq] = await sql.unsafe<{ name: string | null }[]>(
    `SELECT CASE WHEN has_sequence_privilege(x.seq, 'SELECT') THEN x.seq::text END AS name
       FROM (SELECT ${columnSequenceSql("$1::text", "$2::text")} AS seq) AS x WHERE x.seq IS NOT NULL`,
    [s.table.sql, s.column],
  );
  if (!seq?.name) return null;
  const [row] = await sql.unsafe<{ last: string }[]>(`SELECT ${lastHandedOutSql(seq.name, "$1")}::text AS last`, [
    seq.name,
  ]);
  return row?.last ?? null;
}

/** How long a lease waits for the table's running writes before it takes its ids without holding inserts off. */
const HOLD_WAIT_MS = 100;

/**
 * In the caller's transaction, keep other sessions' inserts into the table out while the ids are taken: their
 * defaults' nextval() would take ids between ours (the server inserting meanwhile left a lease of 40,000 ids in
 * thousands of pieces, of which a client can follow only the last: lease.ts followRun), so a lease is one run.
 * EXCLUSIVE mode lets reads through. A role that may not lock the table (it needs UPDATE, DELETE or TRUNCATE), or
 * writes that hold it longer than HOLD_WAIT_MS (the inserts queued behind the lock wait that long at most), and
 * the ids are taken without: in pieces if inserts run meanwhile, as before.
 */
async function holdInserts(sql: Sql, table: TableInfo): Promise<void> {
  // In a savepoint of its own: postgres.js fails a transaction any of whose statements failed, even one caught.
  const tx = sql as unknown as TransactionSql;
  await tx
    .savepoint(async (sp) => {
      await sp.unsafe(`SET LOCAL lock_timeout = ${HOLD_WAIT_MS}`);
      await sp.unsafe(`LOCK TABLE ${table.sql} IN EXCLUSIVE MODE`);
      await sp.unsafe(`SET LOCAL lock_timeout TO DEFAULT`);
    })
    .catch(() => {});
}
