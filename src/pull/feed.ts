/**
 * The feed strategy: a table pulled by the keys the remote change feed (remote/feed-drain.ts) lists as changed
 * since this client's cursor, not by comparing the whole table. Cost: O(changes), whatever the table's size.
 *
 * The view. In the pull's snapshot, the slot's state row says how far the feed is complete (`drained_upto`:
 * every change committed at or before it is in; a reader's snapshot sees a drained transaction's keys all or
 * not at all, they commit together), its epoch (a new slot makes positions of the old one meaningless), and
 * how far it was trimmed. The feed is usable when the slot exists and is not lost, and a drainer ran within
 * `staleMs`; otherwise a table diffs (diff.ts) and its cursor still moves to `drained_upto`: every change up
 * to there was committed before the snapshot, so the diff saw it.
 *
 * Per table, with a cursor of this epoch not older than what is trimmed: the changed keys after the cursor up to
 * `drained_upto` are read with the rows the table holds for them NOW, in the snapshot, under the client's own
 * role (so row-level security decides: a row it may not see counts as gone), by one remote COPY streamed in
 * pieces, each parted by row (found or not) into local COPY FROM of the stage (rows) and of a temp table (keys
 * without a row); then ONE local transaction deletes the gone keys, upserts the rows (rows equal to the local one
 * are not written: the client's own pushed changes come back without effect) and moves the cursor. Held keys
 * (pending local changes) are neither overwritten nor deleted, and are checked for conflicts like in any pull
 * (conflicts.ts), limited to the fetched keys. When the local table refuses a row (or the change is large), the
 * rows are applied in chunks with the shared bisection (apply.ts) and the cursor moves after them (unless a row
 * was refused: then it stays, and the next pull reads the same keys): applying again what a crash cut short is
 * harmless, rows are read from a snapshot.
 *
 * Every change up to the cursor is applied; the rows are read as the snapshot has them, which may already show
 * later changes not drained yet: their keys come again and are read again. A TRUNCATE (or a change the drainer
 * could not read the key of) in the range makes the table diff, as does a key the server no longer reads
 * (FeedUnreadable). A table with no cursor (added later, never pulled, or pulled before the feed existed) is
 * copied or diffed first; so is one whose remote table is not the one its cursor was of (made again, its
 * partitions, its row security set-up or its key's types changed), or was read under another remote identity, or
 * has a partition this role may not read by name (feed-view.ts: the view and the cursors).
 */
import type { Readable } from "node:stream";
import type { TableInfo } from "../core/table.js";
import type { Driver } from "../core/driver.js";
import { truncateQueuedAfter } from "../log/pending.js";
import { keysToReread } from "../log/reread.js";
import { allColumns, applySql, analyzeSql, remoteEstimateSql } from "./sql.js";
import { halves, isolateRefused } from "../core/bisect.js";
import { refusal, rejectRow, write, type TableRun } from "./apply.js";
import { checkPending, type KeyScope } from "./conflicts.js";
import { Carried, type PullContext } from "./context.js";
import { copyUnfinished } from "./copy.js";
import { applyStaged } from "./diff.js";
import {
  createGoneSql,
  deleteGoneSql,
  dropGoneSql,
  feedCountSql,
  feedCopySql,
  fetchedInSql,
  fetchedKey,
} from "./feed-sql.js";
import { partByFlag, rowImage, rowsOf, type CopyRows } from "./copy-text.js";
import { copyOutStream, copyPieces, sendQueued } from "./stream.js";
import { rangeOf, saveCursor, tableKey, type FeedCursor, type FeedView } from "./feed-view.js";
import { isRowLevel, isUnresolved } from "../core/sqlstate.js";

/**
 * The server refused the table's feed read (a PostgreSQL error, not one that may pass). For a value (isRowLevel): a
 * key in the range, or a key to read again, that the table's key no longer takes (a domain given a CHECK, an enum
 * label the remote lacks, a narrower type). Else most likely the table's own policies, which the feed's read policy
 * runs for the role (remote/schema.ts, `_ominipg_feed_visible`) with search_path pg_catalog: a function they call
 * that names another one without its schema fails there, not in the role's own queries. Every later read of the
 * range would fail alike: the pull diffs the table instead (puller.ts), in a new snapshot, which moves its cursor
 * past the range, rather than failing for every table until the feed is trimmed.
 */
export class FeedUnreadable {
  readonly reason: string;
  /** Every pull that finds the table's changes meets it again (a policy's function), unlike a key's value. */
  readonly lasting: boolean;

  constructor(
    readonly table: string,
    cause: unknown,
  ) {
    const message = (cause as Error).message;
    this.lasting = !isRowLevel(cause);
    this.reason = !this.lasting
      ? `the feed holds a key the remote table no longer reads (${message})`
      : `the server refused the table's read of the feed (${message}): it runs the table's policies with ` +
        "search_path pg_catalog, so a function they call must name what it uses by schema (or SET its search_path)";
  }

  /**
   * `err` as FeedUnreadable where it is the server's refusal of the read (above): a value, or what a policy's
   * function meets when it names things the pg_catalog search_path does not find (a function, a table, a column)
   * or may not use; else as it is (an outage, a bug of the read: the pull fails).
   */
  static of(table: string, err: unknown): unknown {
    return isRowLevel(err) || isUnresolved(err) ? new Carried(new FeedUnreadable(table, err)) : err;
  }
}

/** Why a table the feed covers is read whole instead; `blind`: the feed cannot serve this role the table at all. */
export interface FeedMiss {
  reason: string;
  blind: boolean;
}

/**
 * Why the feed cannot serve a table (FeedProbe.blind): an UNLOGGED table's changes are never decoded; else row-level
 * security applies to the role and the feed cannot tell which rows entered or left its sight.
 */
const BLIND = {
  unlogged: () =>
    "the remote table (or a partition of it) is UNLOGGED: it writes no WAL, so logical decoding never lists its changes",
  policy: () =>
    "row-level security applies to this role through a policy that reads another table: rows enter or leave the " +
    "role's sight with no change of their own, which the feed cannot list",
  virtual: () =>
    "row-level security applies to this role and the table has a virtual generated column, which the row images the " +
    "feed judges visibility on do not hold: the feed cannot tell which rows left the role's sight",
  partitioned: () =>
    "row-level security applies to this role and the table is partitioned: the feed cannot tell which rows left the " +
    "role's sight",
  identity: (t: TableInfo) =>
    "row-level security applies to this role and the table's replica identity is not FULL: the feed cannot tell " +
    `which rows left the role's sight (ALTER TABLE ${t.sql} REPLICA IDENTITY FULL)`,
};

/** What the feed lists for a table since its cursor, and what the log says to read again. */
export interface FeedProbe {
  /** Changed keys in the range. */
  changed: number;
  /** A TRUNCATE, or a change of unknown key, in the range. */
  whole: boolean;
  /** Why the feed cannot serve the table, if it cannot (feedCountSql; BLIND says what each means). */
  blind: keyof typeof BLIND | null;
  again: { keys: string; whole: string | undefined; count: number };
}

/** The table's range of the feed in the pull's snapshot, read before its pull starts (settleQuiet, feedTable). */
export async function probeFeed(
  ctx: PullContext,
  t: TableInfo,
  view: FeedView,
  cursor: FeedCursor,
): Promise<FeedProbe> {
  // Rows a push left other than the remote's (a refused change set aside, a "skip"): read again too.
  const again = cursor.reread
    ? await ctx.local((d) => keysToReread(d, t, cursor.reread!))
    : { keys: "[]", whole: undefined, count: 0 };
  const [count] = await ctx.tx
    .unsafe<{ n: number; whole: boolean; blind: FeedProbe["blind"] }[]>(feedCountSql(rangeOf(t, view, cursor)))
    .catch((err: unknown) => {
      throw FeedUnreadable.of(tableKey(t), err);
    });
  const unlogged = view.remote.get(tableKey(t))?.unlogged;
  return { changed: Number(count!.n), whole: count!.whole, blind: unlogged ? "unlogged" : count!.blind, again };
}

/**
 * A table the feed lists nothing for, with nothing to do locally either (no key to read again, no TRUNCATE
 * pending, no copy broken off): its cursor moves, and that is all. An idle pull then costs a few statements per
 * table instead of its temp tables and their statistics (~5-10 ms a table). False: the table needs its pull.
 */
export async function settleQuiet(ctx: PullContext, t: TableInfo, view: FeedView, probe: FeedProbe): Promise<boolean> {
  if (probe.changed > 0 || probe.whole || probe.blind || probe.again.count > 0 || probe.again.whole) return false;
  const settled = await ctx.local(async (d) => {
    const { rows } = await d.query<{ truncated: boolean }>(`SELECT ${truncateQueuedAfter(t, "$1")} AS truncated`, [
      "0",
    ]);
    if (rows[0]!.truncated || (await copyUnfinished(d, t))) return false;
    await saveCursor(d, t, view);
    return true;
  });
  if (settled) ctx.progress({ table: `${t.schema}.${t.name}`, done: 0, total: 0 });
  return settled;
}

/**
 * The table's rows of the feed (feedCopySql) and its size estimate, asked for as soon as the probe says the feed
 * serves the table, before the table's local set-up (startTable, ~15-20 ms for a table of 2,000 changed rows):
 * the server produces the rows meanwhile. Until they are read, the snapshot's connection serves nothing else: the
 * caller asks for them only when nothing before feedTable uses it, and drops them (`drop`) when they go unread.
 */
export class FeedRows {
  readonly estimate: Promise<{ n: number; bytes: number } | undefined>;
  readonly #stream: Promise<Readable>;
  readonly #table: string;
  #taken = false;

  constructor(ctx: PullContext, t: TableInfo, view: FeedView, cursor: FeedCursor, again: string) {
    const range = rangeOf(t, view, cursor);
    this.#table = tableKey(t);
    this.estimate = ctx.tx.unsafe<{ n: number; bytes: number }[]>(remoteEstimateSql(t)).then(([e]) => e);
    this.#stream = copyOutStream(ctx.tx.unsafe(feedCopySql(t, ctx.from(t), { ...range, again })));
    // Awaited later: a failure meanwhile is thrown to the reader then, not reported as unhandled now.
    this.estimate.catch(() => {});
    this.#stream.catch(() => {});
  }

  /** Asks for them when the probe says the feed serves the table and there is something to read. */
  static async wanted(ctx: PullContext, t: TableInfo, view: FeedView, cursor: FeedCursor, probe: FeedProbe) {
    const { again } = probe;
    if (probe.blind || probe.whole || again.whole || probe.changed + again.count === 0) return undefined;
    const rows = new FeedRows(ctx, t, view, cursor, again.keys);
    await sendQueued();
    return rows;
  }

  take(): this {
    this.#taken = true;
    return this;
  }

  /** Read them in pieces (stream.ts copyPieces); a read the server refused for a value is FeedUnreadable. */
  async read(bytes: number, fn: (data: Buffer) => Promise<void>): Promise<void> {
    try {
      await copyPieces(await this.#stream, bytes, fn);
    } catch (err) {
      throw FeedUnreadable.of(this.#table, err);
    }
  }

  /**
   * Read and drop them if nobody took them (the table was held after all, or its set-up failed). A failure is
   * thrown as itself: it aborted the snapshot's transaction (swallowed, the pull went on working in it, and a
   * failed estimate showed here only as "current transaction is aborted"). A value the server refused is
   * FeedUnreadable: the pull starts again, the table diffed (or held) without its feed. A caller with an error of
   * its own on its way out must not let this one mask it (the first error wins: dropAfter).
   */
  async drop(): Promise<void> {
    if (this.#taken) return;
    this.#taken = true;
    // The estimate was sent first: its failure aborted the transaction, and so failed the read too.
    await this.estimate;
    await this.read(1 << 20, async () => {});
  }

  /** drop() while `err` is on its way out, which is thrown whatever drop() meets (likely caused by it). */
  async dropAfter(err: unknown): Promise<never> {
    await this.drop().catch(() => {});
    throw err;
  }
}

/**
 * Pull the table from the feed (see above), and check the held keys among those fetched for conflicts. Returns
 * why not when the table must be read whole (the caller diffs it): a TRUNCATE or a change of unknown key in the
 * range, or a feed blind to rows leaving the role's sight; else the number of conflicts found. `asked`: the
 * table's rows, when the caller asked for them already (FeedRows.wanted).
 */
export async function feedTable(
  ctx: PullContext,
  run: TableRun,
  view: FeedView,
  cursor: FeedCursor,
  probe: FeedProbe,
  asked?: FeedRows,
): Promise<FeedMiss | number> {
  const { t, table, tally } = run;
  const { again } = probe;
  if (probe.blind) return { reason: BLIND[probe.blind](t), blind: true };
  if (probe.whole)
    return { reason: "the feed holds a TRUNCATE of the table, or a change it could not read the key of", blind: false };
  if (again.whole) return { reason: again.whole, blind: false };
  const total = probe.changed + again.count;
  ctx.progress({ table, done: 0, total });
  const fetched = asked ?? (await FeedRows.wanted(ctx, t, view, cursor, probe));
  if (!fetched) {
    await write(ctx, run, (d) => saveCursor(d, t, view));
    return 0;
  }
  let staged = 0;
  let done = 0;
  try {
    await ctx.local((d) => d.exec(createGoneSql(t)));
    const estimate = await fetched.estimate;
    const chunk = ctx.chunkSize(Number(estimate?.n ?? 0), Number(estimate?.bytes ?? 0));
    const small = total <= chunk;
    // COPY text both ways (not rows as JSON): 2,000 changed rows of 200,000 fetched and staged in ~20 ms instead of ~50.
    const rejected = tally.rejected;
    await fetched.take().read(ctx.sizes.chunkBytes, async (data) => {
      const { yes, no } = partByFlag(data);
      staged += await stageRows(ctx, run, true, yes);
      await stageRows(ctx, run, false, no);
      done += yes.rows + no.rows;
      ctx.progress({ table, done, total: Math.max(total, done) });
    });
    // A refused row keeps the cursor where it was: the next pull reads the same keys, that row's again with them.
    if (!(small && tally.rejected === rejected && (await applyAtOnce(ctx, run, view, staged)))) {
      // Large, or a row the local table refuses: in chunks, each row refused found by halving.
      const deleted = await write(ctx, run, async (d) => {
        const { rows } = await d.query<{ deleted: number }>(deleteGoneSql(t), [], { prepare: false });
        return rows[0]!.deleted;
      });
      tally.deleted += Number(deleted ?? 0);
      await ctx.local((d) => d.exec(analyzeSql(t, "stage")));
      await applyStaged(ctx, run, chunk, staged);
      if (!run.truncated && tally.rejected === rejected) await write(ctx, run, (d) => saveCursor(d, t, view));
    }
    if (run.truncated) return 0;
    const scope: KeyScope = { within: (alias) => fetchedKey(t, alias) };
    return await checkPending(ctx, run, scope);
  } catch (err) {
    return await fetched.dropAfter(err);
  } finally {
    await ctx.local((d) => d.exec(dropGoneSql(t))).catch(() => {});
    await fetched.drop(); // taken by then, unless the catch above dropped them
  }
}

/**
 * Deletes, upserts and the cursor in one local transaction. False when the local table refused a row (nothing
 * was written: the caller goes the chunked way).
 */
async function applyAtOnce(ctx: PullContext, run: TableRun, view: FeedView, staged: number): Promise<boolean> {
  const { t, tally } = run;
  try {
    const r = await write(ctx, run, async (d) => {
      const del = await d.query<{ deleted: number }>(deleteGoneSql(t), [], { prepare: false });
      let upserted = 0;
      if (staged > 0) {
        // From the stage the rows were streamed into: not parsed a second time. Its statistics first, or the
        // planner guesses its size and compares every local row with it (450 ms instead of 35 for 2,000 rows
        // against 200,000).
        await d.exec(analyzeSql(t, "stage"));
        const up = await d.query<{ upserted: number }>(applySql(t, "diff", "stage"), [], { prepare: false });
        upserted = Number(up.rows[0]!.upserted);
      }
      await saveCursor(d, t, view);
      return { deleted: Number(del.rows[0]!.deleted), upserted };
    });
    tally.deleted += r?.deleted ?? 0;
    tally.upserted += r?.upserted ?? 0;
    return true;
  } catch (err) {
    if (refusal(err)) return false;
    throw err;
  }
}

/**
 * Stage fetched rows (`found`: rows, else keys the remote has no row for) by COPY; a row the local table refuses
 * even there (a value its column type does not take: a longer varchar, an enum label it lacks) is found by
 * halving (core/bisect.ts) and reported. Returns how many were staged.
 */
async function stageRows(ctx: PullContext, run: TableRun, found: boolean, rows: CopyRows): Promise<number> {
  const { t } = run;
  let staged = 0;
  if (rows.rows === 0) return 0;
  // The whole piece first (one unit of all its rows); split into its rows only when refused.
  await isolateRefused(
    [rows.data],
    async (part) => {
      const data = part.length === 1 ? part[0]! : Buffer.concat(part);
      staged += await ctx.local((d) => copyFrom(d)(fetchedInSql(t, found), data));
    },
    (part, err) => (refusal(err) ? halves(part.length === 1 ? rowsOf(part[0]!) : part) : undefined),
    async ([row], err) => {
      const error = refusal(err);
      if (!error) throw err;
      rejectRow(ctx, run, rowImage(row!, allColumns(t)), error);
    },
  );
  return staged;
}

/** The local database's COPY FROM (the pull's local side always offers it: core/driver.ts). */
function copyFrom(d: Driver): NonNullable<Driver["copyFrom"]> {
  if (!d.copyFrom) throw new TypeError("the local database offers no COPY FROM");
  return d.copyFrom.bind(d);
}
