import { SyncError } from "../core/errors.js";
import type { Sql } from "../remote/connection.js";
import { PUSH_FAILED } from "./context.js";
import { IDENTITY, LEDGER_OBJECTS, LEDGER_TABLE, OWN_LEDGER_ROWS } from "../remote/schema.js";
import { refuseTooOld, usableFromSql, usableOrFailSql } from "../remote/versions.js";

/**
 * The claim of a batch, part of the batch's own remote statement (see statements.ts): inserts the ledger
 * row (if `when` holds) and returns a row, or returns nothing if this client already applied the batch.
 * Arguments are SQL expressions (parameters or literals) for the client id, the batch id and the entry
 * ranges as int8[] text. It fails the statement where a newer set-up forbids this version the ledger (versions.ts):
 * a sync that was running when that set-up committed writes no batch after it.
 */
export function claimSql(clientId: string, batchId: string, ranges: string, when: string, returning = true): string {
  return (
    `INSERT INTO public.${LEDGER_TABLE} (client_id, batch_id, entry_ranges) SELECT ${clientId}::uuid, ${batchId}::int8, ${ranges}::text::int8[] ` +
    `WHERE ${USABLE} AND ${when} ON CONFLICT DO NOTHING${returning ? " RETURNING 1" : ""}`
  );
}

const USABLE = usableOrFailSql(LEDGER_OBJECTS);

/**
 * This client's batches the ledger holds, and their entry ranges; with the text of `also` (an SQL expression the
 * caller reads in the same statement: one round trip, one connection). Every sync starts with it: a ledger a newer
 * Ominipg set up for its own versions only (versions.ts) is refused here, before anything is pushed, even where that
 * version's set-up ran while this client was running.
 */
export async function appliedRanges(
  sql: Sql,
  clientId: string,
  also = "NULL",
): Promise<{ batchIds: number[]; ranges: number[]; also: string | null }> {
  const [row] = await sql.unsafe<{ applied: string | null; also: string | null; usable_from: number | null }[]>(
    `SELECT (SELECT json_agg(json_build_array(batch_id::text, entry_ranges::text)) FROM public.${LEDGER_TABLE} ` +
      `WHERE client_id = $1 AND ${OWN_LEDGER_ROWS})::text AS applied, (${also})::text AS also, ` +
      `${usableFromSql(LEDGER_OBJECTS)} AS usable_from`,
    [clientId],
  );
  refuseTooOld(LEDGER_OBJECTS, row?.usable_from);
  const applied = JSON.parse(row?.applied ?? "[]") as [string, string][];
  const ranges: number[] = [];
  for (const [, r] of applied) ranges.push(...parseIntArray(r));
  return { batchIds: applied.map(([id]) => Number(id)), ranges, also: row?.also ?? null };
}

export async function forgetBatches(sql: Sql, clientId: string, batchIds: number[]): Promise<void> {
  if (batchIds.length === 0) return;
  await sql.unsafe(
    `DELETE FROM public.${LEDGER_TABLE} WHERE client_id = $1 AND batch_id = ANY($2::text::int8[]) AND ${OWN_LEDGER_ROWS}`,
    [clientId, `{${batchIds.join(",")}}`],
  );
}

/** The entry ranges of a batch this client's ledger has (a claim that found its batch id taken: otherClaim). */
export async function claimedRanges(sql: Sql, clientId: string, batchId: number): Promise<number[]> {
  const [row] = await sql.unsafe<{ entry_ranges: string }[]>(
    `SELECT entry_ranges::text AS entry_ranges FROM public.${LEDGER_TABLE} WHERE client_id = $1 AND batch_id = $2 AND ${OWN_LEDGER_ROWS}`,
    [clientId, batchId],
  );
  return row ? parseIntArray(row.entry_ranges) : [];
}

/**
 * A claim found its batch id taken by a row not of this batch (claimedRanges: not the batch's ranges, which an
 * earlier attempt whose COMMIT reply was lost would have left): another statement's of this client, one that ran on
 * after the client gave up on it (its connection ended while it waited for a lock: close(), a killed app) and
 * committed after this sync read the ledger. Nothing is dropped: the next sync's reconciliation drops what that row
 * lists, and pushes the rest.
 */
export function otherClaim(batchId: number): SyncError {
  return new SyncError(
    PUSH_FAILED,
    `the ledger holds another statement's claim of batch id ${batchId} (one this client gave up on, which committed ` +
      `since): the next sync drops the changes it applied and pushes the rest`,
    { retryable: true },
  );
}

/** A claimed batch that applies fewer entries than it claimed: its ledger row gets the ranges it does apply. */
export async function narrowClaim(sql: Sql, clientId: string, batchId: number, ranges: number[]): Promise<void> {
  await sql.unsafe(
    `UPDATE public.${LEDGER_TABLE} SET entry_ranges = $3::text::int8[] WHERE client_id = $1 AND batch_id = $2 AND owner = ${IDENTITY}`,
    [clientId, batchId, `{${ranges.join(",")}}`],
  );
}

/** This client's ledger rows: the only state Ominipg keeps on the server for a client. */
export async function ledgerCount(sql: Sql, clientId: string): Promise<number> {
  const [ledger] = await sql.unsafe<{ found: boolean }[]>(
    `SELECT to_regclass('public.${LEDGER_TABLE}') IS NOT NULL AS found`,
  );
  if (!ledger?.found) return 0;
  const [row] = await sql.unsafe<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM public.${LEDGER_TABLE} WHERE client_id = $1::uuid AND ${OWN_LEDGER_ROWS}`,
    [clientId],
  );
  return Number(row?.n ?? 0);
}

export async function dropLedger(sql: Sql, clientId: string): Promise<number> {
  const rows = await sql.unsafe(
    `DELETE FROM public.${LEDGER_TABLE} WHERE client_id = $1::uuid AND ${OWN_LEDGER_ROWS} RETURNING 1`,
    [clientId],
  );
  return rows.length;
}

function parseIntArray(text: string): number[] {
  const inner = text.replace(/^\{|\}$/g, "");
  return inner ? inner.split(",").map(Number) : [];
}
