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
 * own statement. A push checks the ledger's `min` as each sync starts and in each batch's claim (usableOrFailSql):
 * a sync running when a newer set-up commits writes no batch after it.
 */

/** The advisory lock every set-up holds, exclusively (see above): "omin" in ASCII, the same for every Ominipg. */
export const SETUP_LOCK = 0x6f6d696e;

/** The SQL that takes SETUP_LOCK shared, until the transaction ends: no set-up runs meanwhile. */
export const SETUP_SHARED = `pg_advisory_xact_lock_shared(${SETUP_LOCK})`;

/** One of Ominipg's remote objects (schema.ts: LEDGER_OBJECTS, FEED_OBJECTS), as its set-up version concerns it. */
export interface SetUpObjects {
  kind: "ledger" | "feed";
  /** The table whose comment records the version, schema-qualified. */
  table: string;
  /** This Ominipg's set-up version of them. */
  version: number;
  /** Their name in messages. */
  label: string;
  /** The code of this version's refusal to use them. */
  code: SyncErrorCode;
}

/**
 * The set-up version the comment records, as an SQL integer: compared as a number, so that a newer Ominipg's
 * objects (v10 > v9; any comment but this version's was "older" when compared as text) are told from older ones,
 * and left alone (set-up code that knows only older versions would undo the newer one's, and each flip makes every
 * reader diff). NULL without a comment, 0 for one that is not Ominipg's.
 */
export function versionSql(o: SetUpObjects): string {
  const comment = commentSql(o.table);
  return `(CASE WHEN ${comment} IS NOT NULL THEN coalesce(substring(${comment} FROM '^ominipg ${o.kind} v([0-9]{1,9})(?:[[:space:]].*)?$')::int, 0) END)`;
}

/** The comment's `min v<m>` (its first), as an SQL integer; NULL where it has none. */
export function usableFromSql(o: SetUpObjects): string {
  return `substring(${commentSql(o.table)} FROM '^ominipg ${o.kind} v[0-9]{1,9}[[:space:]](?:.*?[[:space:]])??min v([0-9]{1,9})(?:[[:space:]].*)?$')::int`;
}

/** SQL: whether this version may use the objects (their comment has no `min` above its version). */
export function usableSql(o: SetUpObjects): string {
  return `coalesce(${usableFromSql(o)} <= ${o.version}, true)`;
}

/**
 * The comment of `table`, read from pg_description by its index: obj_description() read ~115 catalog blocks more
 * per idle pull (measured, bench section 7b), which reads the feed's comment.
 */
function commentSql(table: string): string {
  return `(SELECT d.description FROM pg_description AS d WHERE d.objoid = to_regclass('${table}') AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0)`;
}

/** Why this version may not use objects a newer one set up for set-up versions from `usableFrom` on; undefined if it may. */
export function tooOld(o: SetUpObjects, usableFrom: number | null | undefined): string | undefined {
  if (usableFrom === null || usableFrom === undefined || usableFrom <= o.version) return undefined;
  return `${o.label} was set up by a newer Ominipg for its own set-up versions (${usableFrom} and later; this Ominipg's is ${o.version}), which older ones may not use: upgrade Ominipg`;
}

/** Throws tooOld's refusal (the objects' code, not retryable) where there is one. */
export function refuseTooOld(o: SetUpObjects, usableFrom: number | null | undefined): void {
  const why = tooOld(o, usableFrom);
  if (why) throw new SyncError(o.code, why, { retryable: false });
}

/** What a statement that found the objects too new for this version raises: `ominipg_too_old_<kind> <min>`. */
const tooOldMark = (o: SetUpObjects) => `ominipg_too_old_${o.kind} `;

/**
 * usableSql that fails the statement where a newer set-up forbids this version the objects (an integer cast of a
 * marked text: 22P02), for a write that must never take a refusal for "nothing to do" (a ledger claim for "already
 * applied"); remoteFailure turns that failure into tooOldRaised's error.
 */
export function usableOrFailSql(o: SetUpObjects): string {
  const from = usableFromSql(o);
  return `(CASE WHEN ${from} > ${o.version} THEN ('${tooOldMark(o)}' || ${from})::int > 0 ELSE true END)`;
}

/** The refusal a statement guarded by usableOrFailSql raised, as Ominipg's error; undefined for any other error. */
export function tooOldRaised(err: unknown, o: SetUpObjects): SyncError | undefined {
  if ((err as { code?: unknown })?.code !== "22P02") return undefined;
  const message = String((err as Error).message ?? "");
  const at = message.indexOf(tooOldMark(o));
  if (at < 0) return undefined;
  const from = Number.parseInt(message.slice(at + tooOldMark(o).length), 10);
  return new SyncError(o.code, tooOld(o, from) ?? o.label, { cause: err, retryable: false });
}

/** The error of `ominipg setup` on objects a newer Ominipg set up: only that version's set-up may change them. */
export function newerSetUp(o: SetUpObjects, found: number): SyncError {
  return new SyncError(
    "REMOTE_SETUP_FAILED",
    `Ominipg's remote objects (${o.table}: version ${found}) were set up by a newer Ominipg than this one (which knows version ${o.version}); this version leaves them as they are: run the newer version's \`ominipg setup\``,
    { retryable: false },
  );
}
