/**
 * Writing remote rows locally.
 *
 * Pulled rows are written through the internal driver (PullContext.local), which capture never sees: they are
 * never recorded in `_sync_queue` (no echo: a push after a pull pushes nothing new; a pull after a push finds
 * equal hashes and writes nothing). Each chunk is its own short local transaction with
 * `session_replication_role = replica` (FK checks, cascades and user triggers do not fire: the rows come from a
 * snapshot the remote already checked, and the remote's cascaded deletes arrive as deletes), so user queries
 * interleave between chunks and see tables filled progressively.
 *
 * Pending local changes win: a row whose key has entries in `_sync_queue` (old or new key) is neither
 * overwritten nor deleted. The held keys are read from the log (log/pending.ts) into a temp table and topped up
 * right before each local write, in the same session turn, so changes captured during the pull are respected
 * too. A pending TRUNCATE holds the whole table: nothing more is written to it.
 *
 * A remote row the local table refuses (a UNIQUE or CHECK constraint the remote does not have, or one a
 * pending local row holds) is isolated by halving its chunk (core/bisect.ts) and tried again after the chunk's other
 * rows (one may free the value it takes); still refused, it is skipped and reported to `hooks.rejected`; the rest
 * of the pull goes on, and the next pull tries the row again.
 */
import { halves, isolateRefused } from "../core/bisect.js";
import type { Driver } from "../core/driver.js";
import { joinImage, splitImage } from "../core/image.js";
import { isRowLevel, sqlstateOf } from "../core/sqlstate.js";
import type { TableInfo } from "../core/table.js";
import { inReplicaTransaction } from "../local/transaction.js";
import { Carried, type PullContext } from "./context.js";
import {
  analyzeSql,
  applySql,
  createStageSql,
  dropStageSql,
  hasSettledRowsSql,
  heldTable,
  refreshHeldSql,
} from "./sql.js";
import type { TablePull } from "./types.js";

/** One table's pull: its tally, and how far its held keys are known. */
export interface TableRun {
  t: TableInfo;
  /** "schema.table" */
  table: string;
  tally: TablePull;
  /** The last queue id when the table's pull started: the keys pending then are checked for conflicts. */
  startId: string;
  /** The queue id up to which the held keys are known. */
  heldUpTo: string;
  /** A TRUNCATE of the table is queued: write nothing more to it. */
  truncated: boolean;
}

/**
 * Start a table's pull in one session turn: its temp tables (the stage, the held keys), every key pending now,
 * and whether the table holds rows without pending changes (`settled`: then the pull must also find the rows
 * the remote deleted).
 */
export async function startTable(ctx: PullContext, t: TableInfo): Promise<{ run: TableRun; settled: boolean }> {
  const tally: TablePull = { strategy: "copy", upserted: 0, deleted: 0, skipped: 0, rejected: 0 };
  const run: TableRun = { t, table: `${t.schema}.${t.name}`, tally, startId: "0", heldUpTo: "0", truncated: false };
  const settled = await ctx.local(async (d) => {
    await d.exec(createStageSql(t));
    await refreshHeld(d, run);
    run.startId = run.heldUpTo;
    if (run.truncated) return false;
    await d.exec(analyzeSql(t, "held"));
    return (await d.query<{ settled: boolean }>(hasSettledRowsSql(t), [], { prepare: false })).rows[0]!.settled;
  });
  return { run, settled };
}

/** Drop the table's temp tables (also after a failure, so it never fails itself). */
export async function endTable(ctx: PullContext, t: TableInfo): Promise<void> {
  await ctx.local((d) => d.exec(dropStageSql(t))).catch(() => {});
}

/**
 * A local write of the table's pull, in one session turn with the refresh of its held keys (so a change
 * captured a moment ago is held too). Skipped (undefined) once a TRUNCATE of the table is queued.
 */
export async function write<T>(ctx: PullContext, run: TableRun, fn: (d: Driver) => Promise<T>): Promise<T | undefined> {
  return ctx.local((d) =>
    inReplicaTransaction(d, async () => {
      await refreshHeld(d, run);
      return run.truncated ? undefined : fn(d);
    }),
  );
}

async function refreshHeld(d: Driver, run: TableRun): Promise<void> {
  const { rows } = await d
    .query<{ max_id: string; truncated: boolean }>(refreshHeldSql(run.t), [run.heldUpTo], { prepare: false })
    .catch((err: unknown) => {
      // A held key with a NULL column: an image without it, captured before the table's primary key changed (not
      // another NOT NULL refusal, a domain's).
      if (sqlstateOf(err) !== "23502" || (err as { table?: unknown }).table !== heldTable(run.t)) throw err;
      throw new Error(
        `queued changes of ${run.table} lack columns of its primary key (${run.t.primaryKey.join(", ")}): captured ` +
          `before the key changed, their rows cannot be told apart. sync() refuses them (COLUMN_NOT_SYNCED; with ` +
          `onReject "skip" they are kept in _ominipg_rejected); pull after that`,
        { cause: err },
      );
    });
  run.heldUpTo = rows[0]!.max_id;
  if (rows[0]!.truncated) run.truncated = true;
}

/**
 * Apply remote rows (jsonb texts) in one write. When the local table refuses particular rows (a row-level
 * SQLSTATE, core/sqlstate.ts), the rows are halved until the refused ones are found; those are tried again while
 * a pass writes any row (a row may take a UNIQUE value another one of these rows gives up, written after it), and
 * what is still refused is reported and skipped. Any other failure ends the pull.
 */
export async function applyRows(
  ctx: PullContext,
  run: TableRun,
  images: string[],
  mode: "copy" | "diff",
): Promise<void> {
  const { t, tally } = run;
  let rows = images;
  for (;;) {
    const refused: { remote: string; error: Error }[] = [];
    let written = 0;
    await isolateRefused(
      rows,
      async (part) => {
        const r = await write(ctx, run, async (d) => {
          const { rows } = await d.query<{ upserted: number }>(applySql(t, mode), [payload(part)], { prepare: false });
          return rows[0]!;
        });
        tally.upserted += Number(r?.upserted ?? 0);
        written += part.length;
      },
      (part, err) => (refusal(err) ? halves(part) : undefined),
      async (part, err) => {
        const error = refusal(err);
        if (!error) throw err;
        refused.push({ remote: part[0]!, error });
      },
    );
    if (refused.length > 0 && written > 0) {
      rows = refused.map((r) => r.remote);
      continue;
    }
    for (const { remote, error } of refused) rejectRow(ctx, run, remote, error);
    return;
  }
}

/** A remote row (its image as JSON text) that the local table refused: counted, and reported to `hooks.rejected`. */
export function rejectRow(ctx: PullContext, run: TableRun, remote: string, error: Error): void {
  run.tally.rejected++;
  ctx.hook((h) =>
    h.rejected?.({ table: run.table, key: joinImage(splitImage(remote), run.t.primaryKey), remote, error }),
  );
}

/**
 * The PostgreSQL error of a failed local write, if it refuses particular rows. A local failure arrives
 * carried, as an OminipgError whose cause is PostgreSQL's error (PullContext.local).
 */
export function refusal(err: unknown): Error | undefined {
  const local = err instanceof Carried ? err.error : err;
  const pg = (local as { cause?: unknown } | null | undefined)?.cause;
  return isRowLevel(pg) ? (pg as Error) : undefined;
}

/** Rows as the one JSON array parameter of a local statement. */
export function payload(images: string[]): string {
  return `[${images.join(",")}]`;
}
