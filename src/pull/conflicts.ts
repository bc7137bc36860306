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
import { readableKey } from "../core/key-text.js";
import { inReplicaTransaction } from "../local/transaction.js";
import type { TableRun } from "./apply.js";
import type { PullContext } from "./context.js";
import type { Driver } from "../core/driver.js";
import type { TableInfo } from "../core/table.js";
import { keyChangesSql } from "../log/pending.js";
import { movedImagesSql, pendingImagesSql, type BucketScope } from "./sql.js";
import type { ConflictRecord } from "../log/conflicts.js";
import type { PullConflict } from "./types.js";

interface KeyChange {
  id: string;
  old_key: string;
  new_key: string;
}

interface MovedImages {
  key: string;
  base: string | null;
  local: string | null;
}

interface PendingImages {
  key: string;
  queue_id: string;
  base: string | null;
  local: string | null;
  remote: string | null;
  fold: string | null;
}

/** The keys a feed pull fetched (pull/feed.ts): the check is limited to them, as a diff's to its buckets. */
export interface KeyScope {
  /** SQL: whether the key of the row aliased `alias` is one of them. */
  within: (alias: string) => string;
}

/**
 * Count the held rows the remote would have changed (`tally.skipped`) and report those in conflict; `scope`
 * limits the check to the buckets a diff fetched, or the keys a feed pull fetched (the others are equal on both
 * sides, or did not change remotely). Returns the conflicts.
 */
export async function checkPending(
  ctx: PullContext,
  run: TableRun,
  scope: BucketScope | KeyScope | undefined,
): Promise<number> {
  const { t, table, tally } = run;
  const buckets = scope && "buckets" in scope ? scope : undefined;
  const params = buckets ? [run.startId, buckets.hex] : [run.startId];
  const sql = pendingImagesSql(t, buckets?.buckets, scope && "within" in scope ? scope.within : undefined);
  const rows = await ctx.local((d) =>
    inReplicaTransaction(d, async () => {
      const found = (await d.query<PendingImages>(sql, params, { prepare: false })).rows;
      await readMoved(d, t, found);
      return found;
    }),
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

/**
 * A pending change whose row has changed key since (one key change or a chain of them) is compared where the row
 * is now, as its push's key update writes it: `rows` whose local row is gone get their base and local row read
 * there. The log's key changes are followed in JS: only when such rows exist, with one read of them.
 */
async function readMoved(d: Driver, t: TableInfo, rows: PendingImages[]): Promise<void> {
  const gone = rows.filter((r) => r.local === null && r.base !== null && r.remote !== null);
  if (gone.length === 0) return;
  const moves = new Map<string, { id: number; to: string }[]>();
  for (const m of (await d.query<KeyChange>(keyChangesSql(t), [], { prepare: false })).rows) {
    const list = moves.get(m.old_key) ?? [];
    list.push({ id: Number(m.id), to: m.new_key });
    moves.set(m.old_key, list);
  }
  const nextMove = (key: string, after: number) => moves.get(key)?.find((m) => m.id > after);
  const moved: string[] = [];
  for (const r of gone) {
    let [at, after] = [r.key, Number(r.queue_id) - 1];
    for (let next = nextMove(at, after); next; next = nextMove(at, after)) [at, after] = [next.to, next.id];
    if (at === r.key) continue;
    // The key as its text has it (not through JSON.parse: an int8's digits), with the fold's columns refusing NULL.
    const where = joinImage(readableKey(t, splitImage(at), r.fold === null ? null : splitImage(r.fold)));
    moved.push(`{"k":${JSON.stringify(r.key)},"at":${where},"fold":${JSON.stringify(r.fold)}}`);
  }
  if (moved.length === 0) return;
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const sql = movedImagesSql(t);
  for (const m of (await d.query<MovedImages>(sql, [`[${moved.join(",")}]`], { prepare: false })).rows) {
    Object.assign(byKey.get(m.key)!, { base: m.base, local: m.local });
  }
}

/** A pulled remote row that collides with a pending local change: the local change stays and is pushed later. */
export function pullRecord(c: PullConflict): ConflictRecord {
  const dot = c.table.indexOf(".");
  const { key, queueId, base, local, remote } = c;
  return {
    origin: "pull",
    schema: c.table.slice(0, dot),
    table: c.table.slice(dot + 1),
    key,
    queueId,
    base,
    local,
    remote,
    resolution: "local-pending",
    resolved: null,
  };
}
