import type { OminipgError, SyncError } from "./core/errors.js";
import type { ConflictEvent } from "./core/conflicts.js";
import type { FeedMode } from "./core/feed.js";
import type { OminipgWarning } from "./core/warnings.js";
import type { PullProgress, PullResult } from "./pull/types.js";
import type { SyncResult } from "./push/types.js";

export interface OminipgEvents {
  "pull:start": () => void;
  "pull:progress": (progress: PullProgress) => void;
  /**
   * A local change met a remote change of the same row: settled by a push (origin "push"), or found by a pull
   * while the local change waits to be pushed (origin "pull", resolution "local-pending"). Recorded in
   * `_ominipg_conflicts` before the event.
   */
  conflict: (conflict: ConflictEvent) => void;
  "pull:end": (result: PullResult) => void;
  "sync:start": () => void;
  "sync:progress": (progress: { done: number; total: number }) => void;
  "sync:end": (result: SyncResult) => void;
  error: (error: OminipgError | SyncError) => void;
  /**
   * Something that works now but can go wrong later (core/warnings.ts), each once per client: a
   * configuration under which SERIAL / identity ids can collide, a lease that failed, ids past the leased
   * blocks. Emitted at the sync that finds it (connect() returns before anyone listens, and never waits on
   * the network).
   */
  warning: (warning: OminipgWarning) => void;
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
  /**
   * The remote (password redacted) and whether it answered now; null without syncUrl. `ledgerRows`: the only
   * state this client keeps on the server, its rows in `public._ominipg_ledger` (batches applied remotely
   * whose local clean-up is not confirmed yet: 0 after every successful sync); `unregister()` removes them.
   */
  remote: { url: string; reachable: boolean; error?: string; ledgerRows?: number } | null;
  /** The remote change feed (docs/SYNC.md, "The change feed"); null without syncUrl. */
  feed?: FeedStatus | null;
}

/** The remote change feed as a client sees it (status()). */
export interface FeedStatus {
  /** `sync.feed`'s mode. */
  mode: FeedMode;
  /** This database's slot name (null when not asked: mode "off"). */
  slot: string | null;
  /** The server's wal_level ("logical" is needed). */
  walLevel?: string;
  /** The slot's wal_status (reserved, extended, unreserved, lost); null when there is no slot. */
  walStatus: string | null;
  /** WAL the slot holds back on the server (pg_current_wal_lsn() - restart_lsn), bytes; null without a slot. */
  retainedBytes: number | null;
  /** How long ago a drainer last ran, ms; null when the feed is not set up or not readable by this role. */
  drainedAgoMs: number | null;
  /** This client's role drains the feed itself (superuser or REPLICATION, wal_level=logical). */
  drainer?: boolean;
  /** The feed position this client's last pull reached (null: that pull found no usable feed). */
  pulledTo?: string | null;
  /** Why the feed could not be asked about. */
  error?: string;
}
