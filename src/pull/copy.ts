/**
 * The copy strategy, for a table that holds no rows other than ones with pending local changes (e.g. at the
 * first pull), and the resumption of a copy that broke off.
 *
 * The remote table is read in ranges of its primary key, in key order: `COPY (SELECT ... WHERE key > last
 * ORDER BY key LIMIT n) TO STDOUT`, each an index range scan in the pull's one snapshot. Each range is loaded
 * locally by ONE `COPY ... FROM STDIN` of the same text into the table itself (PGlite's fastest load path:
 * no per-row statement, no JSON), in one short local transaction that also records the range's last key in
 * `_ominipg_meta` (the resume point). The next range is read from the remote while the local database loads
 * the current one (its query sent first: stream.ts sendQueued); memory holds two ranges (`chunkRows` rows, fewer
 * for wide rows: `chunkBytes`).
 *
 * Both sides speak COPY text under the same session settings (CANONICAL_SETTINGS on the remote transaction,
 * LOCAL_SETTINGS in the local one), so every value's text reads back as the value it was. Columns are listed
 * explicitly on both sides, key columns first (their text leads every row, so the range's last key is read
 * off its last row); generated columns are left out (the local database computes them), identity ALWAYS
 * columns are written as they are (COPY sets them).
 *
 * Held keys win: a range is COPYed only when none of its keys is held (a pending local change: an insert, an
 * update, a delete, or either key of a key change), checked in the same session turn as the write, right
 * after the held keys are topped up (apply.ts). Otherwise - and when the local table refuses the COPY (a
 * row-level SQLSTATE: a key the table already has, a constraint the remote does not have) - that range is
 * read again as row images and written row by row by applyRows (apply.ts): held rows are left alone and
 * staged for the conflict check, refused rows isolated and reported, as in every other pull.
 *
 * Resuming. A copy cut short (a kill, an outage, a failed hook) leaves its committed ranges and the resume
 * point. The next pull (or the retry of this one) finds the table holding rows, so it diffs it, but first
 * continues the copy from the resume point: only the keys after it are read. The remote may have changed in
 * between, on both sides of the point: keys after it are read from the new snapshot, and the diff that
 * follows (which the next pull would do anyway) brings the rows before it up to date and deletes what the
 * remote lost. A range that meets rows already there (written by the broken attempt after its last recorded
 * point) is refused by the key and written row by row, which upserts. A point whose key columns no longer
 * match the table's is ignored; a finished copy, and a fresh one, forget the point.
 */
import type { Driver } from "../core/driver.js";
import type { TableInfo } from "../core/table.js";
import { deleteMeta, getMeta, setMeta } from "../log/tables.js";
import { applyRows, refusal, write, type TableRun } from "./apply.js";
import type { PullContext } from "./context.js";
import { anyHeldSql, copyCountSql, copyInSql, copyOutSql, heldAmongSql, rangeFetchSql, type Key } from "./copy-sql.js";
import { lastRowFields, leadingColumns, rowCount } from "./copy-text.js";
import { deferIndexes, recordedIndexes, restoreIndexes } from "./indexes.js";
import { fetchSql, remoteCountSql, stageName } from "./sql.js";
import { copyOutStream, resumeAfterEnd, sendQueued, streamChunks } from "./stream.js";

/** One range of remote rows as COPY text. */
interface Range {
  data: Uint8Array;
  rows: number;
  /** Whether it holds as many rows as it asked for: more may follow. */
  full: boolean;
  /** The key of its last row (undefined when empty). */
  last: Key | undefined;
}

/**
 * The first range's rows at most. Nothing is loaded locally until it has arrived, so it is small; each next one is
 * up to 4 times larger, up to the chunk size: the remote reads a range several times faster than PGlite loads
 * one, so each is read while the one before it loads.
 */
const FIRST_RANGE = 1024;

/** Copy the table's remote rows (those after `after` when resuming), range by range. */
export async function copyTable(ctx: PullContext, run: TableRun, after?: Key): Promise<void> {
  const { t, table } = run;
  if (!copyable(t)) return legacyCopy(ctx, run);
  const resuming = after !== undefined;
  const [count] = await ctx.tx.unsafe<{ n: number; bytes: number }[]>(copyCountSql(t, ctx.from(t), after));
  const total = Number(count!.n);
  let done = 0;
  ctx.progress({ table, done, total });
  const limit = ctx.chunkSize(total, Number(count!.bytes), "copy");
  if (total > limit) await ctx.local((d) => deferIndexes(d, t)); // built again at the end (indexes.ts)
  let size = Math.min(limit, Math.max(FIRST_RANGE, Math.ceil(limit / 32)));
  let next: Promise<Range> | undefined = readRange(ctx, t, after, size);
  try {
    while (next) {
      const range: Range = await next;
      next = undefined;
      if (range.rows === 0) break;
      // The next range is read while this one is written.
      size = Math.min(limit, size * 4);
      if (range.full) next = readRange(ctx, t, range.last, size);
      next?.catch(() => {}); // awaited below, or when this range is written row by row
      if (next) await sendQueued(); // the server writes the next range into the socket while this one loads
      await writeRange(ctx, run, range, after, () => next);
      if (run.truncated) break;
      after = range.last;
      done += range.rows;
      ctx.progress({ table, done, total: Math.max(total, done) });
    }
  } catch (err) {
    await next?.catch(() => {}); // the connection is idle again before the transaction ends
    throw err;
  }
  await ctx.local(async (d) => {
    await restoreIndexes(d, t);
    await deleteMeta(d, pointKey(t));
    // A resumed copy is followed by a diff, which stages the rows it fetches itself (held ones included).
    if (resuming) await d.exec(`TRUNCATE ${stageName(t)}`);
  });
}

/**
 * Before a table holding rows is diffed: continue its copy if one broke off (see above), else build the indexes
 * a broken copy may have left deferred.
 */
export async function resumeCopy(ctx: PullContext, run: TableRun): Promise<void> {
  const { t } = run;
  const value = copyable(t) ? await ctx.local((d) => getMeta(d, pointKey(t))) : undefined;
  const point = value === undefined ? undefined : (JSON.parse(value) as { key: string[]; after: Key });
  if (point && JSON.stringify(point.key) === JSON.stringify(t.primaryKey)) return copyTable(ctx, run, point.after);
  await ctx.local(async (d) => {
    if (point) await deleteMeta(d, pointKey(t)); // a point of another key (the table changed since): the diff does all
    await restoreIndexes(d, t);
  });
}

/** Whether a copy of the table broke off, or left indexes deferred: resumeCopy has work to do. */
export async function copyUnfinished(d: Driver, t: TableInfo): Promise<boolean> {
  return (await getMeta(d, pointKey(t))) !== undefined || (await recordedIndexes(d, t)).length > 0;
}

/** Every key column must be among the columns a row write sets (not generated): the copy reads keys off rows. */
function copyable(t: TableInfo): boolean {
  return t.primaryKey.every((c) => t.writable.includes(c));
}

function pointKey(t: TableInfo): string {
  return `pull_copy:${JSON.stringify([t.schema, t.name])}`;
}

async function readRange(ctx: PullContext, t: TableInfo, after: Key | undefined, limit: number): Promise<Range> {
  const stream = await copyOutStream(ctx.tx.unsafe(copyOutSql(t, ctx.from(t), after, limit)));
  const data = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on("data", (part: Buffer) => parts.push(part));
    stream.once("error", reject);
    stream.once("end", () => {
      resumeAfterEnd(stream);
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    });
  });
  const rows = rowCount(data);
  return {
    data,
    rows,
    full: rows >= limit,
    last: rows > 0 ? (lastRowFields(data, t.primaryKey.length) as Key) : undefined,
  };
}

/**
 * Write one range: by COPY, with its last key as the resume point, in one local transaction; row by row when
 * one of its keys is held or the table refuses the COPY. `pending` is the read of the next range, which must
 * end before this transaction's connection reads anything else.
 */
async function writeRange(
  ctx: PullContext,
  run: TableRun,
  range: Range,
  after: Key | undefined,
  pending: () => Promise<unknown> | undefined,
): Promise<void> {
  const { t } = run;
  const point = JSON.stringify({ key: t.primaryKey, after: range.last });
  try {
    const copied = await write(ctx, run, async (d) => {
      if (!d.copyFrom || (await holdsAny(d, t, range.data))) return undefined;
      const rows = await d.copyFrom(copyInSql(t), range.data);
      await setMeta(d, pointKey(t), point);
      return rows;
    });
    if (copied !== undefined || run.truncated) {
      run.tally.upserted += copied ?? 0;
      return;
    }
  } catch (err) {
    if (!refusal(err)) throw err;
  }
  await pending()?.catch(() => {});
  const fetch = rangeFetchSql(t, ctx.from(t), after, range.last!);
  const images = (await ctx.tx.unsafe<{ j: string }[]>(fetch)).map((r) => r.j);
  await applyRows(ctx, run, images, "copy");
  if (!run.truncated) await ctx.local((d) => setMeta(d, pointKey(t), point));
}

/** Whether any key of the range's rows is held (only parsed out of the text when some key is held at all). */
async function holdsAny(d: Driver, t: TableInfo, data: Uint8Array): Promise<boolean> {
  if (!(await d.query<{ held: boolean }>(anyHeldSql(t), [], { prepare: false })).rows[0]!.held) return false;
  const columns = leadingColumns(data, t.primaryKey.length);
  const keys = columns[0]!.map((_, r) => columns.map((c) => c[r]));
  const { rows } = await d.query<{ held: boolean }>(heldAmongSql(t), [JSON.stringify(keys)], { prepare: false });
  return rows[0]!.held;
}

/**
 * Where COPY cannot be used: every remote row streamed as a row image with a postgres.js cursor, each chunk
 * upserted by one statement (applyRows).
 */
async function legacyCopy(ctx: PullContext, run: TableRun): Promise<void> {
  const { t, table } = run;
  const from = ctx.from(t);
  const [count] = await ctx.tx.unsafe<{ n: number; bytes: number }[]>(remoteCountSql(t, from));
  const total = Number(count!.n);
  let done = 0;
  ctx.progress({ table, done, total });
  const cursor = ctx.tx.unsafe<{ j: string }[]>(fetchSql(t, from)).cursor(ctx.chunkSize(total, Number(count!.bytes)));
  await streamChunks(cursor, async (rows) => {
    await applyRows(
      ctx,
      run,
      rows.map((r) => r.j),
      "copy",
    );
    done += rows.length;
    ctx.progress({ table, done, total: Math.max(total, done) });
  });
}
