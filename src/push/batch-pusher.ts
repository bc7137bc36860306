import { halves, isolateRefused } from "../core/bisect.js";
import { SyncError } from "../core/errors.js";
import { toRanges } from "../core/ranges.js";
import { isPolicyRefusal, isRowLevel } from "../core/sqlstate.js";
import { deleteEntries } from "../log/queue.js";
import type { Batch } from "./batches.js";
import type { RowOp } from "./coalesce.js";
import { PUSH_FAILED, type PushContext } from "./context.js";
import { groupOps, newRows, toGroupWrite } from "./groups.js";
import {
  afterRace,
  FoundRefusal,
  isSequenceKeyCollision,
  keyCollision,
  movedOntoTaken,
  noteRace,
} from "./collision.js";
import { claimedRanges, otherClaim } from "./ledger.js";
import { describeBatch, describeError, keepRejected } from "./rejection.js";
import { scheduler } from "./scheduler.js";
import type { FoundConflict } from "./settle.js";
import { batchSql, isRace, parseConflicts, parseHidden, truncateBatchSql } from "./statements.js";

/** Rounds of settling conflicts for one batch before giving up for this sync (the rows keep changing). */
const CONFLICT_ROUNDS = 5;

/**
 * Push a window's batches through the scheduler: a batch runs alongside the one before it only where
 * planBatches allows (same table, same kind of write); the first failure stops the rest of the window.
 */
export async function pushBatches(ctx: PushContext, batches: Batch[]): Promise<void> {
  const queue = scheduler(ctx.options);
  let failure: unknown;
  for (const batch of batches) {
    if (!batch.concurrentWithPrevious) await queue.onIdle();
    if (failure) break;
    void queue.add(() =>
      pushBatch(ctx, batch).catch((err: unknown) => {
        failure ??= err;
      }),
    );
  }
  await queue.onIdle();
  if (failure) throw failure;
}

/** Push a batch; if the remote refuses it for good, find the refused rows by halving (core/bisect.ts) and apply the rest. */
function pushBatch(ctx: PushContext, batch: Batch): Promise<void> {
  return isolateRefused(
    batch,
    (b) =>
      applyAndDrop(ctx, b).catch((err: unknown) => {
        throw afterRace(ctx.settler.races, b, err);
      }),
    (b, err) => {
      const parts = isRefusal(err) && isRowLevel(err.cause ?? err) ? halves(b.ops) : undefined;
      return parts?.map((ops) => ({
        truncates: [],
        ops,
        entryIds: ops.flatMap((o) => o.entryIds),
        concurrentWithPrevious: false,
      }));
    },
    (b, err) => reject(ctx, b, err),
  );
}

/** Only the remote's refusal of the batch is isolated or set aside; anything else ends the sync. */
function isRefusal(err: unknown): err is SyncError {
  return err instanceof SyncError && err.code === PUSH_FAILED && !err.retryable;
}

async function applyAndDrop(ctx: PushContext, batch: Batch): Promise<void> {
  const outcome = await applyRemotely(ctx, batch);
  if (ctx.settler.races.size > 0) for (const op of batch.ops) ctx.settler.races.delete(op.firstId);
  // Applied now, or by an earlier attempt whose COMMIT reply was lost: either way, drop it locally. (A local
  // failure here is neither retried nor a rejection: the ledger row makes the next sync finish the clean-up.)
  try {
    // Read again by the next pull: deletes the remote did not carry out, and rows whose key changed (a pull may
    // have held back a key they passed through, which no write of the batch brings back through the feed).
    const reread = [...(outcome.reread ?? []), ...batch.ops.flatMap((o) => (o.rekeyed ? o.entryIds : []))];
    await ctx.local.run((d) => deleteEntries(d, toRanges(batch.entryIds), reread));
  } catch (err) {
    throw new LocalCleanupFailed(err);
  }
  ctx.tally.appliedBatchIds.push(batchIdOf(batch));
  if (outcome.fresh) {
    ctx.tally.applied += outcome.writes;
    ctx.tally.batches++;
  }
  ctx.tally.count(batch.entryIds.length);
}

/** A batch the remote refused for good, that halving cannot split further: stop, or set it aside (`onReject`). */
async function reject(ctx: PushContext, batch: Batch, err: unknown): Promise<void> {
  if (err instanceof LocalCleanupFailed) throw err.cause;
  if (!isRefusal(err)) throw err;
  const cause = err.cause ?? err;
  const message = ctx.remote.redact(`the remote rejected the ${describeBatch(batch)}: ${describeError(cause)}`);
  // Only a refusal of these very rows may be set aside; an error about the statement or the table itself
  // (permissions, a missing column...) would refuse every row alike: stop even with onReject "skip".
  const skippable = isRowLevel(cause) || batch.ops.length === 0;
  // A sequence key collision: both rows are recorded (the remote one is a row this role can see).
  if (cause instanceof FoundRefusal && cause.remote !== undefined && batch.ops.length === 1)
    await ctx.settler.recordRejected(batch.ops[0]!, cause.remote);
  if (ctx.options.onReject === "stop" || !skippable)
    throw new SyncError("REMOTE_REJECTED", message, { cause, retryable: false });
  await ctx.local.run((d) => keepRejected(d, batch, cause));
  ctx.tally.rejected += batch.entryIds.length;
  ctx.tally.count(batch.entryIds.length);
}

/** A local failure after the batch was applied: not the remote's refusal, so never halved nor set aside. */
class LocalCleanupFailed {
  constructor(readonly cause: unknown) {}
}

/**
 * The batch as one remote statement (atomic without a client-side transaction): check the remote rows,
 * claim it in the ledger, write it. If rows conflict, nothing is written: they are settled (recorded, and
 * their local rows set) and the batch goes again with what settling decided, expecting the remote rows it
 * was decided against. fresh: false if an earlier attempt had applied it already.
 */
async function applyRemotely(
  ctx: PushContext,
  batch: Batch,
): Promise<{ fresh: boolean; writes: number; reread?: number[] }> {
  const { remote, clientId, testHooks } = ctx;
  const batchId = batchIdOf(batch);
  const ranges = toRanges(batch.entryIds);
  if (batch.truncates.length > 0) {
    // A DO block cannot say whether the claim was new: counted as applied either way, once the ledger shows this
    // batch's claim. (planBatches gives truncations a batch of their own.)
    await remote.retrying(PUSH_FAILED, "pushing a batch", async () => {
      await remote.session((sql) => sql.unsafe(truncateBatchSql(batch.truncates, clientId, batchId, ranges)));
      await testHooks.afterRemoteCommit?.();
    });
    await ownClaim(ctx, batchId, ranges);
    return { fresh: true, writes: batch.truncates.length };
  }
  let ops = batch.ops;
  /** Writes decided by settling a conflict -> the change as captured. */
  const captured = new Map<RowOp, RowOp>();
  /** Writes decided for a key change onto a taken key: two rows' worth, not settled again in this sync. */
  const moved = new Set<RowOp>();
  for (let round = 1; ; round++) {
    const groups = groupOps(ops, ctx.references);
    const send = (plain: ReadonlySet<number>) => {
      const { text, params } = batchSql(groups.map((g) => toGroupWrite(g, ctx.partitioned, plain)));
      return remote.retrying(PUSH_FAILED, "pushing a batch", async () => {
        const [row] = await remote
          .session((sql) =>
            sql.unsafe<{ fresh: boolean; conflicts: string | null; hidden?: string | null }[]>(text, [
              clientId,
              batchId,
              `{${ranges.join(",")}}`,
              ...params,
            ]),
          )
          .catch((err: unknown) => {
            if (!isRace(err)) throw err;
            throw new SyncError(
              "CONFLICT_RACE",
              `another session inserted a row of the ${describeBatch(batch)} while it was pushed`,
              {
                cause: err,
                retryable: noteRace(ctx.settler.races, batch),
              },
            );
          });
        const conflicts = parseConflicts(row?.conflicts ?? null);
        if (conflicts.length === 0) await testHooks.afterRemoteCommit?.();
        return { row, conflicts };
      });
    };
    // As this statement has them: batches in flight at once share ctx.writeOnly.
    const plain = new Set(ctx.writeOnly);
    const { row, conflicts } = await send(plain).catch(async (err: unknown) => {
      // Refused for want of a SELECT policy's consent: ON CONFLICT needs the new rows to be readable. The same
      // rows by a plain INSERT, for the rest of this sync where that is accepted (a write-only table).
      const tables = [...new Set(groups.filter(newRows).map((g) => g.table.oid))].filter((t) => !plain.has(t));
      if (!(isRefusal(err) && isPolicyRefusal(err.cause) && tables.length > 0)) throw err;
      const added = tables.filter((t) => !ctx.writeOnly.has(t));
      for (const t of added) ctx.writeOnly.add(t);
      return send(new Set([...plain, ...tables])).catch((again: unknown) => {
        for (const t of added) ctx.writeOnly.delete(t);
        throw again;
      });
    });
    if (conflicts.length === 0) {
      if (row?.fresh !== true) await ownClaim(ctx, batchId, ranges);
      // Deletes the remote did not carry out (statements.ts: hidden): their rows are read again by the next pull.
      const hidden = parseHidden(row?.hidden).map(([g, i]) => groups[g]!.ops[i - 1]!);
      const reread = hidden.flatMap((pushed) => (captured.get(pushed) ?? pushed).entryIds);
      return { fresh: row?.fresh === true, writes: ops.length - hidden.length, reread };
    }
    if (round === CONFLICT_ROUNDS) throw churn(batch, `during each of ${round} attempts to settle their conflicts`);
    const found = conflicts.map((c) => {
      const pushed = groups[c.group]!.ops[c.row - 1]!;
      return {
        pushed,
        op: captured.get(pushed) ?? pushed,
        remote: c.remote,
        taken: c.taken,
        settled: captured.has(pushed) ? pushed : undefined,
      };
    });
    // Never settled by a strategy: two records with one key, refused as onReject says (collision.ts).
    for (const f of found) {
      if (moved.has(f.pushed)) throw churn(batch, "while a key change onto a taken key was settled");
      if (isSequenceKeyCollision(f.pushed, f.remote)) throw keyCollision(describeBatch(batch), f.remote);
      const why = f.taken === null ? undefined : await ctx.settler.unsettledMove(f.op, f.remote);
      if (why) throw movedOntoTaken(describeBatch(batch), f.taken!, why);
    }
    const decided = await settleOnce(ctx, found);
    const instead = new Map(found.map((f, i) => [f.pushed, decided[i]!]));
    found.forEach((f, i) => f.taken !== null && decided[i]!.forEach((w) => moved.add(w)));
    ops = ops.flatMap((op) => {
      const next = instead.get(op);
      if (!next) return [op];
      for (const write of next) captured.set(write, captured.get(op) ?? op);
      return next;
    });
    // Every write settled away (skipped): nothing left to push, the batch's entries are done.
    if (ops.length === 0) return { fresh: true, writes: 0 };
  }
}

/**
 * Settle the conflicts found, each once per sync: a batch halved after settling (a row refused later in it) meets
 * the same changes and remote rows again, which keep what was decided (no second record, event or resolver call;
 * the local row was set already).
 */
async function settleOnce(ctx: PushContext, found: FoundConflict[]): Promise<RowOp[][]> {
  const again = found.map((f) => {
    const earlier = f.settled ? undefined : ctx.settled.get(f.op);
    return earlier && earlier.remote === f.remote && earlier.taken === (f.taken ?? null) ? earlier.writes : undefined;
  });
  const fresh = found.filter((_, i) => !again[i]);
  const decided = fresh.length > 0 ? await ctx.settler.settle(fresh) : [];
  fresh.forEach((f, i) => ctx.settled.set(f.op, { remote: f.remote, taken: f.taken ?? null, writes: decided[i]! }));
  ctx.tally.conflicts += fresh.length;
  let next = 0;
  return again.map((writes) => writes ?? decided[next++]!);
}

/**
 * Rows of the batch changed on the remote again while their conflicts were being settled: given up for this sync
 * (the next one settles them again from the changes as captured, nothing of this one was written).
 */
function churn(batch: Batch, when: string): SyncError {
  return new SyncError("CONFLICT_CHURN", `rows of ${describeBatch(batch)} changed on the remote ${when}`, {
    retryable: true,
  });
}

/** The ledger's claim of `batchId` is this batch's (`ranges`), not another statement's (ledger.ts: otherClaim). */
async function ownClaim(ctx: PushContext, batchId: number, ranges: number[]): Promise<void> {
  const claimed = await ctx.remote.retrying(PUSH_FAILED, "reading the remote ledger", () =>
    ctx.remote.session((sql) => claimedRanges(sql, ctx.clientId, batchId)),
  );
  if (claimed.length !== ranges.length || claimed.some((v, i) => v !== ranges[i])) throw otherClaim(batchId);
}

/** A batch's id in the ledger: its smallest entry id (entry sets of batches never overlap). */
function batchIdOf(batch: Batch): number {
  let min = Infinity;
  for (const id of batch.entryIds) if (id < min) min = id;
  return min;
}
