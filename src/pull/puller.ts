/**
 * Pull: remote -> local.
 *
 * ## Design: one remote snapshot; per table a copy, the change feed, or a hash diff
 *
 * Every pull reads ONE remote snapshot: a `REPEATABLE READ, READ ONLY` transaction in which every synced table
 * is read, parents before children, under the same session settings as the local side (CANONICAL_SETTINGS).
 * A client whose role may drain the change feed (remote/feed-agent.ts) drains it first, so the snapshot finds
 * every change committed before the pull in it. Per table, one strategy: a **copy** (copy.ts) when the local
 * table holds no rows other than ones with pending local changes (e.g. the first pull); else, where the feed is
 * usable and the table has a position in it, the **feed** (feed.ts): only the keys changed since that position
 * are read; else a **diff** (diff.ts) that fetches only the rows of the hash buckets that differ. Rows are
 * written locally chunk by chunk, pending local changes winning, refused rows set aside (apply.ts); then the
 * rows held back for pending changes are checked for conflicts (conflicts.ts). A client offline for days
 * catches up in one pull: from the feed if it still holds its position, by a diff otherwise.
 *
 * The diff needs no privileges beyond SELECT and no set-up on the server, and works through PgBouncer in
 * transaction mode (one plain transaction per pull, no prepared statements, no replication protocol); it hashes
 * whole tables. The feed costs O(changes) per pull, but needs a logical replication slot on the server, which
 * holds WAL while no drainer runs (docs/SYNC.md, "The change feed"). The pull's snapshot transaction stays open
 * while rows are written locally (it holds back the server's vacuum horizon for that long, like any long read).
 *
 * Server-side state: the feed's slot and tables (remote/schema.ts), one per database, shared by all clients, and
 * each client's position in it (`_ominipg_feed_clients`, so that trimming keeps what a client has not read yet).
 *
 * Pulling is idempotent: a pull that fails leaves the chunks it wrote (each one a local transaction), and the
 * next one completes the job with a diff. So a snapshot the connection cut short is pulled again at once,
 * under the one retry policy (remote.retrying), from the first table: the hooks hear again what the new
 * attempt finds, as they would from a new pull. A local failure or a hook's error ends the pull as it is.
 * The abandoned attempt is stopped at its next step (context.ts, Abandoned), so it cannot race the retry.
 *
 * Pull and push must not run at the same time (serialize them): a change written and pushed while a pull
 * runs would never be seen as pending, and the pull's older snapshot would revert it locally until the next pull.
 *
 * Local scratch state: temp tables per table being pulled (`pg_temp.ominipg_pull_<oid>`, the fetched rows;
 * `pg_temp.ominipg_held_<oid>`, the keys with pending changes; from the feed, `pg_temp.ominipg_gone_<oid>`, the
 * keys the remote has no row for), dropped when the table is done (or, after an abandoned attempt, by the next one
 * to create them).
 *
 * Limits: an identity ALWAYS column the remote changed on an existing row cannot be updated locally (PostgreSQL
 * forbids it; the row's other columns are); tables without a primary key are not pulled.
 */
import type { Catalog } from "../capture/catalog.js";
import { Mutex } from "../core/mutex.js";
import { CANONICAL_SETTINGS } from "../core/settings.js";
import type { TableInfo } from "../core/table.js";
import type { LocalAccess } from "../local/access.js";
import type { Remote } from "../remote/remote.js";
import {
  catchUpSequences,
  pulledSequences,
  remoteSequenceValues,
  type PulledSequence,
  type Tx,
} from "../seq/pulled.js";
import { endTable, startTable } from "./apply.js";
import { checkPending } from "./conflicts.js";
import { PullContext, uncarried, type PullSizes } from "./context.js";
import { copyTable, copyUnfinished, resumeCopy } from "./copy.js";
import { restoreIndexes } from "./indexes.js";
import { diffTable } from "./diff.js";
import type { BucketScope } from "./sql.js";
import { FeedRows, FeedUnreadable, feedTable, probeFeed, settleQuiet } from "./feed.js";
import {
  cursorProblem,
  dropCursor,
  feedRequired,
  partitionedTables,
  readCursor,
  readFeedView,
  saveCursor,
  tableKey,
  type FeedView,
} from "./feed-view.js";
import { registerReader } from "./feed-register.js";
import { forgetReread } from "../log/reread.js";
import type { FeedAgent } from "../remote/feed-agent.js";
import type { PullerOptions, PullHooks, PullResult, TablePull } from "./types.js";

/** One remote snapshot's pull: its tables, the remote values of the sequences they own, the feed it read. */
interface Snapshot {
  result: PullResult;
  remoteValues: (string | null)[];
  view: FeedView | undefined;
}

export class Puller {
  readonly #sizes: PullSizes;
  readonly #sequences: boolean;
  readonly #feed: FeedAgent | undefined;
  readonly #lock = new Mutex();

  constructor(
    private readonly local: LocalAccess,
    private readonly catalog: () => Promise<Catalog>,
    private readonly remote: Remote,
    options: PullerOptions = {},
  ) {
    this.#sizes = {
      chunkRows: options.chunkRows ?? 2000,
      copyRows: options.chunkRows ?? 100_000,
      chunkBytes: options.chunkBytes ?? 8 << 20,
      rowsPerBucket: options.rowsPerBucket ?? 32,
    };
    this.#sequences = options.sequences ?? true;
    this.#feed = options.feed?.settings.mode === "off" ? undefined : options.feed;
  }

  /**
   * Bring every synced table to the remote's current state, keeping pending local changes on top. Calls run
   * one after another.
   */
  pull(hooks: PullHooks = {}): Promise<PullResult> {
    return this.#lock.run(async () => {
      try {
        return await this.#pull(new PullContext(this.local, hooks, this.#sizes));
      } catch (err) {
        throw uncarried(err);
      }
    });
  }

  async #pull(ctx: PullContext): Promise<PullResult> {
    const started = performance.now();
    const { remote } = this;
    await remote.retrying("REMOTE_SETUP_FAILED", "setting up the remote database", () => remote.ensureReady());
    const catalog = await ctx.local(() => this.catalog());
    const tables = catalog.syncedInDependencyOrder().filter((t) => !t.uncapturable && t.primaryKey.length > 0);
    const owned = this.#sequences ? await ctx.local((d) => pulledSequences(d, catalog, tables)) : [];
    // A role that may drains the change feed first (setting it up if need be): the snapshot finds it complete.
    const drained = this.#feed ? await this.#feed.drain(true, 5_000) : undefined;
    // Tables whose feed read the server refused for a key (FeedUnreadable): diffed, in a new snapshot.
    const unreadable = new Map<string, string>();
    const attempts: Attempt[] = [];
    const snapshot = (): Promise<Snapshot> =>
      remote
        .retrying("PULL_FAILED", "pulling from the remote", () =>
          this.#snapshot(ctx, tables, owned, unreadable, attempts),
        )
        .catch(async (err: unknown) => {
          const refused = uncarried(err);
          // "require" fails for a refusal every pull meets again; a key's ends with the diff's one-time re-read.
          const required =
            refused instanceof FeedUnreadable && refused.lasting && this.#feed?.settings.mode === "require";
          if (refused instanceof FeedUnreadable && !unreadable.has(refused.table) && !required) {
            unreadable.set(refused.table, refused.reason);
            return snapshot();
          }
          // A copy that broke off keeps its place, but not the indexes it deferred (indexes.ts).
          for (const t of tables) await ctx.local((d) => restoreIndexes(d, t)).catch(() => {});
          if (required) throw feedRequired(`the table ${refused.table} cannot be pulled from it: ${refused.reason}`);
          throw err;
        });
    const { result, remoteValues, view } = await snapshot();
    addEarlier(result, attempts.slice(0, -1));
    if (owned.length > 0) result.sequences = await ctx.local((d) => catchUpSequences(d, owned, remoteValues));
    if (this.#feed && view) await registerReader(ctx, remote, this.#feed, view, tables);
    if (result.feed?.unusable && drained?.reason && !result.feed.unusable.includes(drained.reason))
      result.feed.unusable += ` (${drained.reason})`;
    result.durationMs = Math.round(performance.now() - started);
    return result;
  }

  /** Every table from one remote snapshot, and the remote values of the sequences the tables own. */
  async #snapshot(
    ctx: PullContext,
    tables: TableInfo[],
    owned: PulledSequence[],
    unreadable: ReadonlyMap<string, string>,
    attempts: Attempt[],
  ): Promise<Snapshot> {
    const result: PullResult = { tables: {}, conflicts: 0, rejected: 0, sequences: 0, durationMs: 0 };
    const conflicts = new Map<string, number>();
    attempts.push({ result, conflicts });
    let attempt: PullContext | undefined;
    let view: FeedView | undefined;
    try {
      // transaction(): postgres.js's own begin() can crash the process when the connection drops mid-way.
      const remoteValues = await this.remote.transaction(async (sql) => {
        attempt = ctx.attempt(sql as unknown as Tx); // transaction() hands over postgres.js's transaction connection
        await attempt.tx.unsafe(CANONICAL_SETTINGS).simple();
        view = await this.#view(attempt, result, tables);
        await attempt.readRemoteTables(tables, view && partitionedTables(view, tables));
        for (const t of tables) {
          const before = result.conflicts;
          const tally = await this.#table(attempt, t, result, view, unreadable.get(tableKey(t)));
          result.tables[`${t.schema}.${t.name}`] = tally;
          result.rejected += tally.rejected;
          conflicts.set(`${t.schema}.${t.name}`, result.conflicts - before);
        }
        return remoteSequenceValues(attempt.tx, owned);
      }, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
      return { result, remoteValues, view };
    } finally {
      // transaction() gives up on a lost connection at once, while the attempt may still be at work.
      attempt?.end();
    }
  }

  /** The change feed as the snapshot sees it (feed.ts), when this client uses it; "require" fails without it. */
  async #view(ctx: PullContext, result: PullResult, tables: TableInfo[]): Promise<FeedView | undefined> {
    if (!this.#feed) return undefined;
    const { view, absent } = await readFeedView(ctx, this.#feed.settings.staleMs, tables);
    const unusable = absent ?? view.unusable;
    if (unusable && this.#feed.settings.mode === "require") throw feedRequired(unusable);
    result.feed = { position: view?.drainedUpto ?? null, ...(unusable ? { unusable } : {}) };
    return view;
  }

  /**
   * One table: its strategy, then the conflict check of the rows its pending changes held back. Its feed cursor
   * then moves to what the snapshot's feed holds (a feed pull moves it with its writes; not while held).
   */
  async #table(
    ctx: PullContext,
    t: TableInfo,
    result: PullResult,
    view: FeedView | undefined,
    unreadable: string | undefined,
  ): Promise<TablePull> {
    const cursor = view ? await readCursor(ctx, t) : undefined;
    const problem = view && (unreadable ?? cursorProblem(view, cursor, t));
    const probe = view && !problem ? await probeFeed(ctx, t, view, cursor!) : undefined;
    // Nothing changed on either side: no temp tables, no statistics (most of an idle pull, per table).
    if (view && probe && (await settleQuiet(ctx, t, view, probe)))
      return { strategy: "feed", upserted: 0, deleted: 0, skipped: 0, rejected: 0 };
    // The feed's rows are asked for now, so the server produces them during the local set-up; not when a copy
    // that broke off must continue first (it reads on the same connection).
    const asked =
      view && probe && !(await ctx.local((d) => copyUnfinished(d, t)))
        ? await FeedRows.wanted(ctx, t, view, cursor!, probe)
        : undefined;
    try {
      const { run, settled } = await startTable(ctx, t);
      const { tally } = run;
      if (run.truncated) {
        tally.strategy = "held";
        return tally;
      }
      let scope: BucketScope | undefined;
      // A copy that broke off continues first (copy.ts); it never moved the cursor, so the feed covers the rest.
      if (settled) await resumeCopy(ctx, run);
      if (view && probe) {
        // The feed's keys, their conflict check, the cursor; or why the table is read whole.
        const conflicts = await feedTable(ctx, run, view, cursor!, probe, asked);
        if (typeof conflicts === "number") {
          tally.strategy = run.truncated ? "held" : "feed";
          result.conflicts += conflicts;
          return tally;
        }
        if (conflicts.blind && this.#feed?.settings.mode === "require") throw feedRequired(conflicts.reason);
        tally.reason = conflicts.reason;
      } else if (problem && settled && !view.unusable) tally.reason = problem;
      if (settled) {
        tally.strategy = "diff";
        scope = await diffTable(ctx, run);
      } else {
        await copyTable(ctx, run);
      }
      // A row the local table refused: no cursor, so that the next pull diffs and tries it again.
      if (!run.truncated)
        await ctx.local((d) =>
          !view ? forgetReread(d, t) : tally.rejected > 0 ? dropCursor(d, t) : saveCursor(d, t, view),
        );
      if (settled && !scope) return tally; // equal to the remote already
      if (run.truncated) tally.strategy = "held";
      else result.conflicts += await checkPending(ctx, run, scope);
      return tally;
    } catch (err) {
      if (asked) return await asked.dropAfter(err); // this error, not what the read meets after it
      throw err;
    } finally {
      try {
        await asked?.drop(); // the table held after all: a failure of the read is the pull's
      } finally {
        await endTable(ctx, t);
      }
    }
  }
}

/** One snapshot's result as it stood when it ended, and the conflicts each table it finished found. */
interface Attempt {
  result: PullResult;
  conflicts: Map<string, number>;
}

/**
 * What the snapshots before the last one did (each failed: a connection lost, a feed read refused for a key), added
 * to the last one's result: the rows the tables an earlier one finished wrote (the last one found them written).
 * Their held rows and conflicts too where the last one read the table from the feed (the cursor had moved: it read
 * only what came since); one that read it whole again (a diff) found those again itself. Refused rows are not
 * added: a table that refused one has no cursor, and the last one read it again.
 */
function addEarlier(result: PullResult, earlier: Attempt[]): void {
  for (const { result: r, conflicts } of earlier) {
    for (const [name, done] of Object.entries(r.tables)) {
      const last = result.tables[name];
      if (!last) continue;
      last.upserted += done.upserted;
      last.deleted += done.deleted;
      if (last.strategy !== "feed") continue;
      last.skipped += done.skipped;
      result.conflicts += conflicts.get(name) ?? 0;
    }
  }
}
