import type { FeedAgent } from "../remote/feed-agent.js";

export interface PullProgress {
  /** "schema.table" */
  table: string;
  /** Remote rows read so far for this table. */
  done: number;
  /** Remote rows this table's pull reads (all of them for a copy, those of differing buckets for a diff). */
  total: number;
}

export interface PullConflict {
  table: string;
  /** The primary key as a JSON object, e.g. `{"id":5}`. */
  key: string;
  /** The row before the first pending local change (jsonb text), null if that change inserted it. */
  base: string | null;
  /** The local row now, null if deleted locally. */
  local: string | null;
  /** The remote row in the pulled snapshot, null if the remote has none. */
  remote: string | null;
  /** The first queued entry of the pending local change. */
  queueId: number;
}

export interface PullRejection {
  table: string;
  key: string;
  /** The remote row the local table refused (`rowJsonb` text: json, jsonb, float and array columns as strings of their text). */
  remote: string;
  error: Error;
}

export interface PullHooks {
  progress?(p: PullProgress): void;
  conflict?(c: PullConflict): void;
  rejected?(r: PullRejection): void;
}

export interface TablePull {
  /**
   * copy: streamed all remote rows; feed: fetched the keys the remote change feed lists as changed since the
   * last pull; diff: compared bucket hashes (no usable feed, or the feed asked for the whole table: a TRUNCATE);
   * held: skipped (a local TRUNCATE is pending).
   */
  strategy: "copy" | "feed" | "diff" | "held";
  /**
   * Why a table was copied or diffed although the change feed was usable (no position in it yet, a TRUNCATE in
   * it, a feed blind to rows leaving the role's sight...); why the feed as a whole was not is `PullResult.feed`.
   */
  reason?: string;
  /** Local rows inserted or changed. */
  upserted: number;
  /** Local rows deleted because the remote no longer has them. */
  deleted: number;
  /** Remote changes not applied because the row has pending local changes. */
  skipped: number;
  /** Remote rows the local table refused. */
  rejected: number;
}

export interface PullResult {
  tables: Record<string, TablePull>;
  conflicts: number;
  rejected: number;
  /** Local sequences moved up past pulled ids. */
  sequences: number;
  durationMs: number;
  /**
   * The remote change feed as this pull found it (absent when the feed is off): the position every table pulled
   * is now at (`position`: the feed's commit LSN, null without a feed), and why tables could not be pulled
   * from it, if so.
   */
  feed?: { position: string | null; unusable?: string };
}

export interface PullerOptions {
  /** The remote change feed's upkeep (remote/feed-agent.ts): pull from the feed where it is usable. Default: none (diff). */
  feed?: FeedAgent;
  /** Rows per remote fetch and per local write. Default 2000 (100,000 per COPY of an initial copy). */
  chunkRows?: number;
  /** Move local SERIAL/identity sequences up past pulled ids. Default true; false with `sequences: "lease"`. */
  sequences?: boolean;
  /** Target rows per hash bucket in a diff. Default 32. */
  rowsPerBucket?: number;
  /** Fewer rows per chunk for wide rows: about this many bytes of table on disk per chunk. Default 8 MiB. */
  chunkBytes?: number;
}
