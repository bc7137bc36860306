/**
 * A row as the conflict API shows it: a JSON object of its columns as `to_jsonb` renders them (timestamps as
 * ISO text in UTC, json/jsonb as values, arrays as arrays). Numbers a JS number cannot hold exactly (big int8,
 * numeric with many digits) are strings, so nothing is rounded.
 */
export type Row = Record<string, unknown>;

/** A change pushed from this client that found the remote row changed since the change was made. */
export interface Conflict {
  /** "schema.table" */
  table: string;
  /** The primary key of the remote row in question. */
  key: Row;
  /** The row before the local change; null if the local change inserted it. */
  base: Row | null;
  /** The row after the local change; null if the local change deleted it. */
  local: Row | null;
  /** The remote row now; null if the remote has none. */
  remote: Row | null;
}

/** What a resolver decides: the row both sides end with, or keep one side's version, or push nothing. */
export type Resolution = Row | "local" | "remote" | "skip";

export type ConflictResolver = (conflict: Conflict) => Resolution | Promise<Resolution>;

/**
 * - "overwrite": the local change is written over the remote row: the columns it changed take the local
 *   values, the others keep the remote's (the last write to reach the server wins);
 * - "remote-wins": the remote row stays, and the local row is set to it;
 * - "merge": three-way, per column: a column only one side changed takes that side's value; a column both
 *   sides changed takes the remote's value (the tiebreak: the remote change reached the server first). A row
 *   one side deleted while the other changed it follows the same tiebreak: the remote's version;
 * - a function: your resolver decides.
 */
export type ConflictStrategy = "overwrite" | "remote-wins" | "merge" | ConflictResolver;

/** `sync.conflicts`: one strategy for every table, or a default and strategies per table ("name" or "schema.name"). */
export type ConflictOptions =
  ConflictStrategy | { default?: ConflictStrategy; tables?: Record<string, ConflictStrategy> };

/**
 * How a conflict was settled: "local" (the local version was written), "remote" (the remote version kept, the
 * local row set to it), "merge", "custom" (a resolver's row), "skip" (nothing pushed, the local row left as it
 * is), "local-pending" (a pull found it; the local change waits for the next push), "rejected" (not settled
 * by any strategy: an insert whose key a local sequence generated met a remote row this client never saw, two
 * different records; neither is written over, and the change is refused as `onReject` says).
 */
export type ConflictResolutionKind = "local" | "remote" | "merge" | "custom" | "skip" | "local-pending" | "rejected";

/** The `conflict` event, and a row of `_ominipg_conflicts`. */
export interface ConflictEvent extends Conflict {
  /** "push": found by sync() and settled; "pull": found by pull() while the local change is still pending. */
  origin: "push" | "pull";
  resolution: ConflictResolutionKind;
  /** The row both sides end with (null: no row); for "skip", "local-pending" and "rejected", null. */
  resolved: Row | null;
}
