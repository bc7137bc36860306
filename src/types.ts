import type { OminipgError, SyncError } from "./errors.js";
import type { PullConflict, PullProgress, PullResult } from "./pull/puller.js";

export interface SyncResult {
  /** Log entries drained: captured row changes now applied remotely (or recorded as rejected). */
  pushed: number;
  /** Remote row writes after coalescing. */
  applied: number;
  /** Remote transactions. */
  batches: number;
  durationMs: number;
  /** Log entries drained per table ("schema.table"). */
  tables: Record<string, number>;
  /** Changes the remote refused for good and that were kept in `_ominipg_rejected` (`onReject: "skip"`). */
  rejected: number;
}

export interface OminipgEvents {
  "pull:start": () => void;
  "pull:progress": (progress: PullProgress) => void;
  /** A remote row differs from a row with pending local changes: the local change is kept and recorded in `_ominipg_conflicts`. */
  "pull:conflict": (conflict: PullConflict) => void;
  "pull:end": (result: PullResult) => void;
  "sync:start": () => void;
  "sync:progress": (progress: { done: number; total: number }) => void;
  "sync:end": (result: SyncResult) => void;
  error: (error: OminipgError | SyncError) => void;
}

export interface Status {
  /** This local database's client id (persisted with it; names its remote ledger rows). */
  clientId: string | null;
  /** "memory", "directory" or "direct". */
  mode: "memory" | "directory" | "direct";
  /** Captured changes waiting for sync, per table and priority. */
  pending: { table: string; priority: number; count: number }[];
  /** The last successful sync, if any. */
  lastSync: (SyncResult & { at: string }) | null;
  /** The last successful pull, if any. */
  lastPull: (PullResult & { at: string }) | null;
  /** The remote (password redacted) and whether it answered now; null without syncUrl. */
  remote: { url: string; reachable: boolean; error?: string } | null;
}
