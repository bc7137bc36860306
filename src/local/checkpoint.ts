import type { LocalAccess } from "./access.js";

/**
 * Checkpoints for a directory database while it is open. PGlite runs PostgreSQL in single-user mode: there
 * is no checkpointer, and max_wal_size never triggers one, so without this a database checkpoints only when
 * it is closed. Its WAL grows with every write since it was opened (disk use), and a reopen after a crash
 * (SIGKILL, power loss) replays all of it: ~7 ms per MB, 12 s and more for a day of writes. A checkpoint
 * bounds the replay to what was written since.
 */
export interface CheckpointTuning {
  /** How often the WAL written since the last checkpoint is looked at. */
  everyMs: number;
  /** A checkpoint once this much WAL was written since the last one (~0.2 s of replay). */
  maxWalBytes: number;
  /** ... or once the database is quiet (no WAL written since the last look) with at least this much. */
  quietWalBytes: number;
}

export const CHECKPOINTS: CheckpointTuning = { everyMs: 1000, maxWalBytes: 32 << 20, quietWalBytes: 64 << 10 };

const WAL_SINCE_CHECKPOINT = `SELECT pg_current_wal_insert_lsn()::text AS at,
  pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::float8 AS since FROM pg_control_checkpoint()`;

/** Start checkpointing through `access` (never inside a user's transaction); returns the function that stops it. */
export function startCheckpoints(access: LocalAccess, tuning: CheckpointTuning = CHECKPOINTS): () => void {
  let running = false;
  let lastAt: unknown;
  const tick = () => {
    if (running) return; // still waiting for a long transaction to end
    running = true;
    access
      .run(async (driver) => {
        const [result] = await driver.exec(WAL_SINCE_CHECKPOINT);
        const row = result?.rows[0] as { at: string; since: number } | undefined;
        if (!row) return;
        const quiet = row.at === lastAt;
        lastAt = row.at;
        if (row.since >= tuning.maxWalBytes || (quiet && row.since >= tuning.quietWalBytes)) {
          await driver.exec("CHECKPOINT");
        }
      })
      // Closed meanwhile, or a role without the right to checkpoint (SET ROLE): nothing to do about it here.
      .catch(() => {})
      .finally(() => {
        running = false;
      });
  };
  const timer = setInterval(tick, tuning.everyMs).unref();
  return () => clearInterval(timer);
}
