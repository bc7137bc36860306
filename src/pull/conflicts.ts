/**
 * Conflicts of pending local changes with the pulled snapshot. For every key that was pending when its
 * table's pull started, the remote row is compared with the pending change's base (the row before the first
 * pending change): if the remote matches neither in the columns the local change touched (core/conflict-rule.ts,
 * the push's own rule), that is a conflict, reported to `hooks.conflict` (images as jsonb text, null where
 * there is no row). It is reported at every pull while the change stays pending: records are kept by (table,
 * key, the change's first queue entry), and the push that settles the conflict updates the same record.
 */
import { isConflict } from "../core/conflict-rule.js";
import { joinImage, splitImage } from "../core/image.js";
import { inReplicaTransaction } from "../local/transaction.js";
import type { TableRun } from "./apply.js";
import type { PullContext } from "./context.js";
import { pendingImagesSql, type BucketScope } from "./sql.js";

interface PendingImages {
  key: string;
  queue_id: string;
  base: string | null;
  local: string | null;
  remote: string | null;
}

/**
 * Count the held rows the remote would have changed (`tally.skipped`) and report those in conflict; `scope`
 * limits the check to the buckets a diff fetched (the others are equal on both sides). Returns the conflicts.
 */
export async function checkPending(ctx: PullContext, run: TableRun, scope: BucketScope | undefined): Promise<number> {
  const { t, table, tally } = run;
  const params = scope ? [run.startId, scope.hex] : [run.startId];
  const rows = await ctx.local((d) =>
    inReplicaTransaction(
      d,
      async () => (await d.query<PendingImages>(pendingImagesSql(t, scope?.buckets), params, { prepare: false })).rows,
    ),
  );
  let conflicts = 0;
  for (const r of rows) {
    if (r.remote === r.local) continue; // nothing to hold back: the remote already has what the local row is
    tally.skipped++;
    if (!isConflict(r.base, r.local, r.remote)) continue; // the remote did not change what the local change touched
    conflicts++;
    const key = joinImage(splitImage(r.key));
    ctx.hook((h) =>
      h.conflict?.({ table, key, base: r.base, local: r.local, remote: r.remote, queueId: Number(r.queue_id) }),
    );
  }
  return conflicts;
}
