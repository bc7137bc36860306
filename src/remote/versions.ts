import { SyncError, type SyncErrorCode } from "../core/errors.js";

/**
 * The set-up versions of Ominipg's remote objects (the ledger's, the change feed tables'), which each table's
 * comment records (`ominipg ledger v2`, `ominipg feed v6`), read in SQL and judged here.
 *
 * The comment's format, for every version to come: `ominipg <kind> v<n>`, then optionally fields separated by
 * whitespace, which versions that do not know them skip. One field is known: `min v<m>`, the oldest set-up
 * version that may still use the objects (`ominipg feed v9 min v9`: older ones would misread its rows). A version
 * below it leaves the objects alone and does not use them: clients pull by the diff, drainers do not drain,
 * pushes are refused. This version writes no field (the versions before it read a comment with one as not
 * Ominipg's).
 *
 * Every set-up (this version's, and any to come) holds SETUP_LOCK for its whole transaction. This version's
 * transactions that write the feed's tables or its slot take it shared in their first statement and read `min` in
 * a later one (a snapshot taken after a set-up in progress committed); a reader's (un)registration reads it in its
 * own statement. A push checks the ledger's `min` as each sync starts and in each batch's claim (ledgerUsableSql):
 * a sync running when a newer set-up commits writes no batch after it.
 */

/** The advisory lock every set-up holds, exclusively (see above). */
export const SETUP_LOCK = 0x6f6d696e;

/** The SQL that takes SETUP_LOCK shared, until the transaction ends: no set-up runs meanwhile. */
export const SETUP_SHARED = `pg_advisory_xact_lock_shared(${SETUP_LOCK})`;

/**
 * The set-up version a table's comment records, as an SQL integer: compared as a number, so that a newer
 * Ominipg's objects (v10 > v9; any comment but this version's was "older" when compared as text) are told from
 * older ones, and left alone (set-up code that knows only older versions would undo the newer one's, and each
 * flip makes every reader diff). NULL without a comment, 0 for one that is not Ominipg's.
 */
export function versionSql(kind: "ledger" | "feed", table: string): string {
  const comment = commentSql(table);
  return `(CASE WHEN ${comment} IS NOT NULL THEN coalesce(substring(${comment} FROM '^ominipg ${kind} v([0-9]{1,9})(?:[[:space:]].*)?$')::int, 0) END)`;
}

/** The comment's `min v<m>` (its first), as an SQL integer; NULL where it has none. */
export function usableFromSql(kind: "ledger" | "feed", table: string): string {
  return `substring(${commentSql(table)} FROM '^ominipg ${kind} v[0-9]{1,9}[[:space:]](?:.*?[[:space:]])??min v([0-9]{1,9})(?:[[:space:]].*)?$')::int`;
}

/**
 * The comment of `table`, read from pg_description by its index: obj_description() read ~115 catalog blocks more
 * per idle pull (measured, bench section 7b), which reads the feed's comment.
 */
function commentSql(table: string): string {
  return `(SELECT d.description FROM pg_description AS d WHERE d.objoid = to_regclass('${table}') AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0)`;
}

/**
 * Why this version (whose set-up version of the objects is `known`) may not use objects a newer one set up for
 * set-up versions from `usableFrom` on; undefined if it may.
 */
export function tooOld(what: string, usableFrom: number | null | undefined, known: number): string | undefined {
  if (usableFrom === null || usableFrom === undefined || usableFrom <= known) return undefined;
  return `${what} was set up by a newer Ominipg for its own set-up versions (${usableFrom} and later; this Ominipg's is ${known}), which older ones may not use: upgrade Ominipg`;
}

/** What a statement that found a ledger too new for this version raises: `ominipg_too_old_ledger <min>`. */
const TOO_OLD_LEDGER = "ominipg_too_old_ledger ";

/**
 * An SQL condition that is true where this version may write the ledger `table`, and fails the statement where a
 * newer set-up forbids it (an integer cast of a marked text: 22P02), so that a claim never takes a refusal for
 * "already applied"; remoteFailure turns that failure into tooLedgerRefusal's error.
 */
export function ledgerUsableSql(table: string, known: number): string {
  const from = usableFromSql("ledger", table);
  return `(CASE WHEN ${from} > ${known} THEN ('${TOO_OLD_LEDGER}' || ${from})::int > 0 ELSE true END)`;
}

/** The refusal a statement guarded by ledgerUsableSql raised, as Ominipg's error; undefined for any other error. */
export function tooOldLedgerRaised(err: unknown, what: string, known: number): SyncError | undefined {
  if ((err as { code?: unknown })?.code !== "22P02") return undefined;
  const at = String((err as Error).message ?? "").indexOf(TOO_OLD_LEDGER);
  if (at < 0) return undefined;
  const from = Number.parseInt(String((err as Error).message).slice(at + TOO_OLD_LEDGER.length), 10);
  return new SyncError("REMOTE_SETUP_FAILED", tooOld(what, from, known) ?? what, { cause: err, retryable: false });
}

/** Throws tooOld's refusal, not retryable, where there is one. */
export function refuseTooOld(
  code: SyncErrorCode,
  what: string,
  usableFrom: number | null | undefined,
  known: number,
): void {
  const why = tooOld(what, usableFrom, known);
  if (why) throw new SyncError(code, why, { retryable: false });
}

/** The error of `ominipg setup` on objects a newer Ominipg set up: only that version's set-up may change them. */
export function newerSetUp(table: string, found: number, known: number): SyncError {
  return new SyncError(
    "REMOTE_SETUP_FAILED",
    `Ominipg's remote objects (${table}: version ${found}) were set up by a newer Ominipg than this one (which knows version ${known}); this version leaves them as they are: run the newer version's \`ominipg setup\``,
    { retryable: false },
  );
}
