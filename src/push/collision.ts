import { SyncError } from "../core/errors.js";
import type { Batch } from "./batches.js";
import type { RowOp } from "./coalesce.js";
import { PUSH_FAILED } from "./context.js";

/**
 * Refusals a push finds itself rather than PostgreSQL raising them: shaped like PostgreSQL's error (a SQLSTATE
 * in `code`), so the one SQLSTATE table (core/sqlstate.ts) sees them as row-level, the bisection traces them
 * to their row, and `onReject` stops at them or sets them aside like any other refused row.
 */
export class FoundRefusal extends Error {
  constructor(
    message: string,
    readonly code: string,
    /**
     * The remote row the change met (statements.ts: remoteText), for a row this role can see (the conflict
     * check's SELECT found it); never set for a row it cannot see.
     */
    readonly remote?: string,
  ) {
    super(message);
    this.name = "FoundRefusal";
  }
}

/**
 * A conflict that no strategy may settle: the change inserts a row (no before image, not a settled write) of
 * a table whose key a local sequence generates (TableInfo.keyFromSequence), and the remote holds a row with
 * that key, with other content (an equal row is no conflict), that this client never saw. Two clients (or a
 * client and the server) minted the same id for two different records: overwriting, merging or keeping the
 * remote one would lose one of them silently. An id the statement gave rather than the sequence counts alike:
 * nothing tells them apart once captured. Natural and UUID keys are not concerned: two devices inserting the
 * same natural key mean the same row.
 */
export function isSequenceKeyCollision(pushed: RowOp, remote: string | null): remote is string {
  return (
    remote !== null &&
    pushed.kind === "upsert" &&
    pushed.base === null &&
    pushed.expected === undefined &&
    pushed.table.keyFromSequence === true
  );
}

/** The refusal of a batch holding a sequence key collision (isSequenceKeyCollision); its remote row is kept. */
export function keyCollision(what: string, remote: string): SyncError {
  const cause = new FoundRefusal(
    "duplicate key: the key comes from a local sequence (SERIAL, identity) and the remote holds another row " +
      "with it (two records: neither is written over)",
    "23505",
    remote,
  );
  return new SyncError(PUSH_FAILED, `the remote holds another row with a key of the ${what}`, {
    cause,
    retryable: false,
  });
}

/**
 * The refusal of a batch holding a key change onto a key the remote holds for another row, where no strategy
 * may settle it (`why`: ConflictSettler.unsettledMove); the remote row is kept (recorded as "rejected").
 */
export function movedOntoTaken(what: string, remote: string, why: string): SyncError {
  const cause = new FoundRefusal(
    `duplicate key: a primary key was changed to a key the remote holds for another row, which is not settled ${why}`,
    "23505",
    remote,
  );
  return new SyncError(PUSH_FAILED, `the remote holds another row with the new key of a change of the ${what}`, {
    cause,
    retryable: false,
  });
}

/**
 * The changes of a batch whose statement failed its RACE check (statements.ts: a key it meant to insert was
 * taken while it ran), counted per change (its first log entry) in `races`, which lives as long as the client.
 * Whether trying the statement again is worth it: only at the first race of its changes (see afterRace).
 */
export function noteRace(races: Map<number, number>, batch: Batch): boolean {
  let first = true;
  for (const op of batch.ops) {
    const n = races.get(op.firstId) ?? 0;
    if (n > 0) first = false;
    races.set(op.firstId, n + 1);
  }
  return first;
}

/**
 * What a batch's failure means once its RACE check failed at every attempt (err: CONFLICT_RACE). Another
 * session's insert is seen by the next statement (the conflict check finds the row and settles it), so it
 * does not fail twice; a row this role cannot see or may not update (row-level security: the check's SELECT
 * ... FOR UPDATE skips it, and so does the upsert's DO UPDATE), or a remote trigger skipping the write, fails
 * every time. So: a batch of several changes is halved (a refusal of rows: the halves run again at once, the
 * bisection narrows it down); one change that failed so twice (attempts of this sync, its larger batch, or
 * the previous sync) is refused, as `onReject` says; one that failed once is the race it looks like
 * (retryable, as before). Nothing of the remote row is known, so nothing is recorded.
 */
export function afterRace(races: Map<number, number>, batch: Batch, err: unknown): unknown {
  if (!(err instanceof SyncError) || err.code !== "CONFLICT_RACE") return err;
  const [op, ...more] = batch.ops;
  if (op && more.length === 0 && (races.get(op.firstId) ?? 0) < 2) return err;
  if (op && more.length === 0) races.delete(op.firstId);
  const cause = new FoundRefusal(
    "duplicate key: the remote holds a row with this key that this role cannot see or may not update " +
      "(row-level security), or a remote trigger skipped the write",
    "23505",
  );
  return new SyncError(PUSH_FAILED, err.message, { cause, retryable: false });
}
