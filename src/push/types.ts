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
  /** Pushed changes whose remote row had changed too: settled by the table's strategy and recorded in `_ominipg_conflicts`. */
  conflicts: number;
}
