import PQueue from "p-queue";
import type { Catalog } from "../capture/catalog.js";
import type { TableInfo } from "../core/table.js";
import { QUEUE_TABLE, REJECTED_TABLE, getMeta } from "../log/tables.js";
import { type LocalAccess } from "../local/access.js";
import { toRanges } from "../core/ranges.js";
import type { Driver } from "../core/driver.js";
import { SyncError, type SyncErrorCode } from "../core/errors.js";
import type { ResolvedSync } from "../core/options.js";
import type { Remote } from "../remote/remote.js";
import { isRowLevel } from "../core/sqlstate.js";
import { advanceRemoteSequences, localSequenceValues } from "../seq/sequences.js";
import { type SyncResult } from "./types.js";
import { planBatches, type Batch } from "./batches.js";
import { Coalescer, keyText, writableIn, type LogEntry, type RowOp } from "./coalesce.js";
import { loadRules, type TableRules } from "../capture/constraints.js";
import { joinImage } from "../core/image.js";
import { appliedRanges, claimSql, claimedRanges, dropLedger, forgetBatches, narrowClaim } from "./ledger.js";
import { copyInto, copyLayout, type CopyInto, type CopyLayout } from "./copy.js";
import { transaction } from "../remote/connection.js";
import { checkRemoteSchema } from "./schema-check.js";
import { batchSql, isRace, parseConflicts, truncateBatchSql, type GroupWrite } from "./statements.js";
import type { ConflictSettler } from "./settle.js";
import { inLocalTransaction } from "../local/transaction.js";

const PAGE = 5000;
/** Ids (from its first entry on) a COPY batch reads and converts at a time: they stream out while the next are read. */
const COPY_CHUNK = 2500;
/** Rounds of settling conflicts for one batch before giving up for this sync (the rows keep changing). */
const CONFLICT_ROUNDS = 5;

export interface SyncHooks {
  progress(done: number, total: number): void;
}

/**
 * Test-only hooks, not exported from the package and not part of the API. The exactly-once tests set
 * `afterRemoteCommit` to kill the process (or fake a lost COMMIT reply) right after a batch's remote
 * COMMIT and before its local clean-up. Unset, it costs one property read per batch.
 */
export const testHooks: { afterRemoteCommit?: () => void | Promise<void> } = {};

interface Tally {
  pushed: number;
  applied: number;
  batches: number;
  rejected: number;
  conflicts: number;
  tables: Record<string, number>;
  done: number;
  total: number;
  /** The last `done` reported: progress only goes up, also when a COPY batch reports rows as it sends them. */
  shown: number;
  appliedBatchIds: number[];
}

/**
 * One sync: drains `_sync_queue` up to the id it finds at the start, window by window, into the remote.
 * A window is read until it holds `windowRows` distinct rows (so memory stays bounded however long the
 * queue is), coalesced, ordered for foreign keys, cut into batches and pushed through a p-queue.
 * Each batch is one remote transaction that first claims its ledger row: exactly once.
 */
export class Syncer {
  #schemaChecked: Catalog | undefined;

  constructor(
    private readonly local: LocalAccess,
    private readonly catalog: () => Promise<Catalog>,
    private readonly remote: Remote,
    private readonly options: ResolvedSync,
    private readonly settler: ConflictSettler,
  ) {}

  async run(hooks: SyncHooks): Promise<SyncResult> {
    const started = performance.now();
    const { remote } = this;
    await this.#retrying("REMOTE_SETUP_FAILED", "setting up the remote database", () => remote.ensureReady());
    const clientId = await this.local.run(clientIdOf);
    await this.#reconcile(clientId);

    const catalog = await this.local.run(() => this.catalog());
    this.settler.checkTables(catalog);
    if (this.#schemaChecked !== catalog) {
      await this.#retrying("REMOTE_SCHEMA_CHECK_FAILED", "checking the remote schema", () =>
        checkRemoteSchema(remote.sql, [...catalog.tables.values()].filter((t) => !t.uncapturable)),
      );
      this.#schemaChecked = catalog;
    }

    // The log's extent, whether anything in it is prioritized, and where its first run of inserts ends.
    const { maxId, total, priorityTables, firstRunEnd } = await this.local.run(async (d) => {
      // max(id) on its own is an index lookup; in the scan it would cost a third of it.
      const top = await d.query<{ max: number }>(`SELECT coalesce(max(id), 0)::int8 AS max FROM ${QUEUE_TABLE}`, [], { prepare: false });
      const { rows } = await d.query<{ n: number; prioritized: number; change: number | null }>(
        `SELECT count(*)::int8 AS n, count(*) FILTER (WHERE priority > 0)::int8 AS prioritized, min(id) FILTER (WHERE op <> 'I')::int8 AS change FROM ${QUEUE_TABLE}`,
        [],
        { prepare: false },
      );
      const max = top.rows[0]!.max;
      const { n, prioritized, change } = rows[0]!;
      const pr =
        Number(prioritized) === 0
          ? []
          : (await d.query<{ s: string; t: string }>(`SELECT DISTINCT schema_name AS s, table_name AS t FROM ${QUEUE_TABLE} WHERE priority > 0`, [], { prepare: false })).rows;
      return { maxId: Number(max), total: Number(n), priorityTables: pr.map((r) => `${r.s}.${r.t}`), firstRunEnd: change === null ? Number(max) + 1 : Number(change) };
    });
    const tally: Tally = { pushed: 0, applied: 0, batches: 0, rejected: 0, conflicts: 0, tables: {}, done: 0, total, shown: 0, appliedBatchIds: [] };
    hooks.progress(0, total);

    const order = new Map(catalog.syncedInDependencyOrder().map((t, i) => [t.oid, i]));
    const rules = await this.local.run((d) => loadRules(d, catalog.tables.values()));
    const layouts = new Map<TableInfo, CopyLayout | undefined>();
    const layoutOf = (table: TableInfo) => {
      if (!layouts.has(table)) layouts.set(table, copyLayout(table));
      return layouts.get(table);
    };
    const plan: DrainPlan = { catalog, order, rules, clientId, maxId, firstRunEnd, layouts: layoutOf };
    // Prioritized tables go first, with the tables they reference (their pending parents come along).
    const first = withAncestors(priorityTables, catalog);
    if (first.length > 0) await this.#drain(plan, first, tally, hooks);
    await this.#drain(plan, undefined, tally, hooks);

    const values = await this.local.run((d) => localSequenceValues(d, [...catalog.tables.values()]));
    await this.#retrying("REMOTE_SEQUENCES_FAILED", "advancing remote sequences", () => advanceRemoteSequences(remote.sql, values));
    await this.#retrying("REMOTE_LEDGER_FAILED", "pruning the remote ledger", () => forgetBatches(remote.sql, clientId, tally.appliedBatchIds));

    return {
      pushed: tally.pushed,
      applied: tally.applied,
      batches: tally.batches,
      rejected: tally.rejected,
      conflicts: tally.conflicts,
      tables: tally.tables,
      durationMs: Math.round(performance.now() - started),
    };
  }

  /**
   * Remove this client's rows from the remote ledger, after dropping the local entries they say were
   * applied (so nothing is pushed twice later). Never touches another client's rows. Returns how many.
   */
  async unregister(): Promise<number> {
    await this.#retrying("REMOTE_SETUP_FAILED", "setting up the remote database", () => this.remote.ensureReady());
    const clientId = await this.local.run(clientIdOf);
    const settled = await this.#reconcile(clientId);
    return settled + (await this.#retrying("REMOTE_LEDGER_FAILED", "removing this client's ledger rows", () => dropLedger(this.remote.sql, clientId)));
  }

  /** Entries the ledger says were applied but that are still queued locally (a crash after a remote COMMIT). */
  async #reconcile(clientId: string): Promise<number> {
    const { batchIds, ranges } = await this.#retrying("REMOTE_LEDGER_FAILED", "reading the remote ledger", () =>
      appliedRanges(this.remote.sql, clientId),
    );
    if (batchIds.length === 0) return 0;
    await this.local.run((d) => deleteEntries(d, ranges));
    await this.#retrying("REMOTE_LEDGER_FAILED", "pruning the remote ledger", () => forgetBatches(this.remote.sql, clientId, batchIds));
    return batchIds.length;
  }

  /**
   * Window by window; the next window is read and coalesced while the current one's batches are pushed
   * (local and remote work overlap; windows are independent: a window's writes go out only after the
   * previous window's are all applied). A run of more than a batch of inserts goes out by COPY instead when
   * nothing later in this sync changes its tables (else the windows fold the run's rows with their later
   * changes), unless a COPY of it failed (the windows then find out why, row by row).
   */
  async #drain(plan: DrainPlan, only: string[] | undefined, tally: Tally, hooks: SyncHooks): Promise<void> {
    let copyAfter = only || this.options.copyBatchSize === 0 ? Infinity : 0;
    const read = (cursor: number, runEnd?: number) => {
      const next = (async (): Promise<Unit> => {
        if (cursor >= copyAfter) {
          const end = runEnd ?? (await this.local.run((d) => insertRunEnd(d, cursor, plan.maxId)));
          if (end - cursor > this.options.batchSize) {
            if (!(await this.local.run((d) => changedLater(d, cursor, end, plan.maxId)))) return { kind: "creates", cursor, end };
            copyAfter = end; // the windows fold the run's rows with their later changes
          }
        }
        return { kind: "window", ...(await this.#readWindow(plan, only, cursor, tally, hooks)) };
      })();
      next.catch(() => {}); // observed when awaited; until then a failure must not count as unhandled
      return next;
    };
    let next = read(0, plan.firstRunEnd);
    for (;;) {
      const unit = await next;
      if (unit.kind === "creates") {
        const copied = await this.#pushCreates(plan, unit.cursor, unit.end, tally, hooks);
        if (copied.copyAfter !== undefined) copyAfter = copied.copyAfter;
        if (copied.cursor >= plan.maxId) return;
        next = read(copied.cursor);
        continue;
      }
      const { batches, cursor, exhausted } = unit;
      if (!exhausted) next = read(cursor);
      try {
        await this.#pushBatches(batches, plan.clientId, tally, hooks);
      } catch (err) {
        if (!exhausted) await next.catch(() => {}); // nothing of ours is left running
        throw err;
      }
      if (exhausted) return;
    }
  }

  /**
   * Push the inserts after `cursor` and before `end` by COPY, one remote transaction per `copyBatchSize`
   * ids (see #copyBatch). Stops at a chunk that cannot go by COPY (an array or composite column, a table no
   * longer synced, a row image from before a column change) or a batch the remote refuses: the windows take
   * those over and find out why, row by row. `cursor` is where they start (all before it is applied),
   * `copyAfter` where COPY may be tried again.
   */
  async #pushCreates(plan: DrainPlan, cursor: number, end: number, tally: Tally, hooks: SyncHooks): Promise<{ cursor: number; copyAfter?: number }> {
    const queue = this.#queue();
    /** The first entry applied: the applied ones (first to `cursor`) are dropped at the end, in one statement; the ledger has them meanwhile. */
    let from: number | undefined;
    let left: Span | undefined;
    try {
      while (cursor < end - 1 && !left) {
        const batch = (await queue.add(() => this.#copyBatch(plan, cursor, end - 1, tally, hooks)))!;
        if (batch.applied) from ??= batch.applied.lo;
        left = batch.left;
        cursor = batch.through;
      }
    } finally {
      const [lo, hi] = [from, cursor];
      if (lo !== undefined) await this.local.run((d) => dropSpan(d, lo, hi));
    }
    return left ? { cursor: left.after, copyAfter: left.hi } : { cursor };
  }

  /**
   * One COPY batch: the entries with ids after `cursor` and up to `last`, `copyBatchSize` ids at most, in
   * one remote transaction: the ledger claim, then the rows chunk by chunk into one COPY per table (parents
   * first; a COPY stays open while the next chunks are of its table) while the next chunk is read and
   * converted. Returns the entries applied (their first id, and `through`: all up to it are done) and the
   * span left to the windows.
   */
  async #copyBatch(
    plan: DrainPlan,
    cursor: number,
    last: number,
    tally: Tally,
    hooks: SyncHooks,
  ): Promise<{ through: number; applied?: { lo: number }; left?: Span }> {
    const size = this.options.copyBatchSize;
    const read = (after: number, upTo: number) => {
      const chunk = this.local.run((d) => readCopyChunk(d, plan, after, upTo, Math.min(COPY_CHUNK, size)));
      chunk.catch(() => {}); // observed when awaited
      return chunk;
    };
    const first = await read(cursor, last);
    if (first.entries === 0) return { through: last };
    if (!first.tables) return { through: cursor, left: first };
    const lo = first.lo;
    const hi = Math.min(last, lo - 1 + size);
    let outcome: { fresh: boolean; through: number; entries: number; tables: Map<TableInfo, number>; left?: Span };
    try {
      outcome = await this.#retrying(PUSH_FAILED, "pushing a batch", async () => {
        const result = await transaction(this.remote.sql, async (tx) => {
          const [claim] = await tx.unsafe(claimSql("$1", "$2", "$3", "true"), [plan.clientId, lo, `{${lo},${hi}}`]);
          if (!claim) {
            const [, through] = await claimedRanges(tx, plan.clientId, lo);
            return { fresh: false, through: through!, entries: 0, tables: new Map() };
          }
          const tables = new Map<TableInfo, number>();
          let [chunk, entries, open] = [first, 0, undefined as CopyInto | undefined];
          let left: Span | undefined;
          for (;;) {
            const next = chunk.hi < hi ? read(chunk.hi, hi) : undefined;
            for (const [table, rows] of inDependencyOrder(chunk.tables!, plan.order)) {
              if (open?.table !== table) {
                await open?.end();
                open = await copyInto(tx, table, plan.layouts(table)!.columns);
              }
              await open.write(rows.text);
              tables.set(table, (tables.get(table) ?? 0) + rows.rows);
            }
            entries += chunk.entries;
            this.#progress(tally, hooks, entries);
            if (!next) break;
            chunk = await next;
            if (!chunk.tables) {
              left = chunk;
              break;
            }
          }
          await open?.end();
          if (left) await narrowClaim(tx, plan.clientId, lo, [lo, left.after]);
          return { fresh: true, through: left ? left.after : hi, entries, tables, ...(left ? { left } : {}) };
        });
        await testHooks.afterRemoteCommit?.();
        return result;
      });
    } catch (err) {
      if (err instanceof SyncError && err.code === PUSH_FAILED && !err.retryable) return { through: cursor, left: { after: cursor, hi } };
      throw err;
    }
    tally.appliedBatchIds.push(lo);
    if (outcome.fresh) {
      tally.batches++;
      tally.applied += outcome.entries;
    } else {
      // Applied by an earlier attempt whose COMMIT reply was lost: what it applied is what the log holds there.
      outcome.tables = await this.local.run((d) => entriesByTable(d, plan.catalog, lo, outcome.through));
      for (const n of outcome.tables.values()) outcome.entries += n;
    }
    for (const [table, n] of outcome.tables) tallyTable(tally, table, n);
    this.#count(tally, outcome.entries, hooks);
    return { through: outcome.through, applied: { lo }, ...(outcome.left ? { left: outcome.left } : {}) };
  }

  /** Read the log after `cursor` until a window is full (or cut, or the log ends); plan its batches. */
  async #readWindow(plan: DrainPlan, only: string[] | undefined, cursor: number, tally: Tally, hooks: SyncHooks): Promise<Window> {
    const { catalog, order, rules, maxId } = plan;
    const windowRows = Math.max(10_000, this.options.batchSize * this.options.concurrency * 8);
    const coalescer = new Coalescer(rules);
    const unknown: LogEntry[] = [];
    let exhausted = false;
    let cut = false;
    while (!cut && coalescer.rowCount < windowRows) {
      const page = await this.local.run((d) => readPage(d, cursor, maxId, only));
      for (const e of page.entries) {
        const table = catalog.table(e.schema, e.table);
        if (table && !table.uncapturable) {
          // The coalescer refuses an entry that depends on the window's earlier writes in a way its
          // reordering would break: the window ends here and the next one starts with that entry.
          if (!coalescer.add(e, table)) {
            cut = true;
            break;
          }
        } else unknown.push(e);
        cursor = e.id;
      }
      if (!cut && page.hi >= maxId) {
        exhausted = true;
        break;
      }
    }
    if (unknown.length > 0) await this.#rejectUnknown(unknown, tally, hooks);
    const window = coalescer.result();
    if (window.noop.length > 0) {
      const ids = window.noop.flatMap((n) => n.entryIds);
      await this.local.run((d) => deleteEntries(d, toRanges(ids)));
      for (const n of window.noop) tallyTable(tally, n.table, n.entryIds.length);
      this.#count(tally, ids.length, hooks);
    }
    for (const t of window.truncates) tallyTable(tally, t.table, t.entryIds.length);
    for (const op of window.rows) tallyTable(tally, op.table, op.entryIds.length);
    return { batches: planBatches(window, order, this.options.batchSize), cursor, exhausted };
  }

  /** Where a sync's remote batches wait their turn: `concurrency` at once, at most `intervalCap` per `interval`. */
  #queue(): PQueue {
    return new PQueue({
      concurrency: this.options.concurrency,
      ...(this.options.interval > 0 && Number.isFinite(this.options.intervalCap) ? { interval: this.options.interval, intervalCap: this.options.intervalCap } : {}),
    });
  }

  async #pushBatches(batches: Batch[], clientId: string, tally: Tally, hooks: SyncHooks): Promise<void> {
    const queue = this.#queue();
    let failure: unknown;
    for (const batch of batches) {
      if (!batch.concurrentWithPrevious) await queue.onIdle();
      if (failure) break;
      void queue.add(() =>
        this.#pushWithBisect(batch, clientId, tally, hooks).catch((err) => {
          failure ??= err;
        }),
      );
    }
    await queue.onIdle();
    if (failure) throw failure;
  }

  /** Push a batch; if the remote refuses it for good, find the refused rows by halving and apply the rest. */
  async #pushWithBisect(batch: Batch, clientId: string, tally: Tally, hooks: SyncHooks): Promise<void> {
    let outcome: { fresh: boolean; writes: number };
    try {
      outcome = await this.#applyRemotely(batch, clientId, tally);
    } catch (err) {
      // Only the remote's refusal of the batch is isolated or set aside; anything else ends the sync.
      if (!(err instanceof SyncError) || err.code !== PUSH_FAILED || err.retryable) throw err;
      const cause = err.cause ?? err;
      const rowLevel = isRowLevel(cause);
      if (rowLevel && batch.ops.length > 1) {
        const mid = Math.ceil(batch.ops.length / 2);
        for (const half of [batch.ops.slice(0, mid), batch.ops.slice(mid)]) {
          await this.#pushWithBisect(
            { truncates: [], ops: half, entryIds: half.flatMap((o) => o.entryIds), concurrentWithPrevious: false },
            clientId,
            tally,
            hooks,
          );
        }
        if (batch.truncates.length > 0) await this.#pushWithBisect({ ...batch, ops: [], entryIds: [] }, clientId, tally, hooks);
        return;
      }
      const message = this.remote.redact(`the remote rejected the ${describeBatch(batch)}: ${describe(cause)}`);
      // Only a refusal of these very rows may be set aside; an error about the statement or the table itself
      // (permissions, a missing column...) would refuse every row alike: stop even with onReject "skip".
      const skippable = rowLevel || batch.ops.length === 0;
      if (this.options.onReject === "stop" || !skippable) throw new SyncError("REMOTE_REJECTED", message, { cause, retryable: false });
      await this.local.run((d) => keepRejected(d, batch, cause));
      tally.rejected += batch.entryIds.length;
      this.#count(tally, batch.entryIds.length, hooks);
      return;
    }
    // Applied now, or by an earlier attempt whose COMMIT reply was lost: either way, drop it locally.
    // (Outside the retry and the rejection handling above: a local failure here is neither; the ledger
    // row makes the next sync finish the clean-up.)
    await this.local.run((d) => deleteEntries(d, toRanges(batch.entryIds)));
    tally.appliedBatchIds.push(batchIdOf(batch));
    if (outcome.fresh) {
      tally.applied += outcome.writes;
      tally.batches++;
    }
    this.#count(tally, batch.entryIds.length, hooks);
  }

  /**
   * The batch as one remote statement (atomic without a client-side transaction): check the remote rows,
   * claim it in the ledger, write it. If rows conflict, nothing is written: they are settled (recorded, and
   * their local rows set) and the batch goes again with what settling decided, expecting the remote rows it
   * was decided against. fresh: false if an earlier attempt had applied it already.
   */
  async #applyRemotely(batch: Batch, clientId: string, tally: Tally): Promise<{ fresh: boolean; writes: number }> {
    const batchId = batchIdOf(batch);
    const ranges = toRanges(batch.entryIds);
    const sql = this.remote.sql;
    let fresh = true;
    let writes = 0;
    if (batch.truncates.length > 0) {
      // A DO block cannot say whether the claim was new: counted as applied either way.
      await this.#retrying(PUSH_FAILED, "pushing a batch", async () => {
        await sql.unsafe(truncateBatchSql(batch.truncates, clientId, batchId, ranges));
        if (batch.ops.length === 0) await testHooks.afterRemoteCommit?.();
      });
      writes += batch.truncates.length;
    }
    let ops = batch.ops;
    /** Writes decided by settling a conflict -> the change as captured. */
    const captured = new Map<RowOp, RowOp>();
    for (let round = 1; ops.length > 0; round++) {
      const groups = groupOps(ops);
      const { text, params } = batchSql(groups.map(toGroupWrite));
      const { row, conflicts } = await this.#retrying(PUSH_FAILED, "pushing a batch", async () => {
        const [row] = await sql.unsafe<{ fresh: boolean; conflicts: string | null }[]>(text, [clientId, batchId, `{${ranges.join(",")}}`, ...params]).catch((err: unknown) => {
          if (!isRace(err)) throw err;
          throw new SyncError("CONFLICT_RACE", `another session inserted a row of the ${describeBatch(batch)} while it was pushed`, { cause: err, retryable: true });
        });
        const conflicts = parseConflicts(row?.conflicts ?? null);
        if (conflicts.length === 0) await testHooks.afterRemoteCommit?.();
        return { row, conflicts };
      });
      if (conflicts.length === 0) {
        fresh = row?.fresh === true;
        writes += ops.length;
        break;
      }
      if (round === CONFLICT_ROUNDS) {
        throw new SyncError("CONFLICT_CHURN", `rows of ${describeBatch(batch)} changed on the remote during each of ${round} attempts to settle their conflicts`, {
          retryable: true,
        });
      }
      const found = conflicts.map((c) => {
        const pushed = groups[c.group]!.ops[c.row - 1]!;
        return { pushed, op: captured.get(pushed) ?? pushed, remote: c.remote };
      });
      const decided = await this.settler.settle(found);
      tally.conflicts += found.length;
      const instead = new Map(found.map((f, i) => [f.pushed, decided[i]]));
      ops = ops.flatMap((op) => {
        if (!instead.has(op)) return [op];
        const next = instead.get(op);
        if (next) captured.set(next, captured.get(op) ?? op);
        return next ? [next] : [];
      });
    }
    return { fresh, writes };
  }

  #count(tally: Tally, entries: number, hooks: SyncHooks): void {
    tally.pushed += entries;
    tally.done += entries;
    this.#progress(tally, hooks);
  }

  /** Report progress: the entries done, and `sending` more on their way (a COPY batch not committed yet). */
  #progress(tally: Tally, hooks: SyncHooks, sending = 0): void {
    const done = Math.min(tally.total, tally.done + sending);
    if (done <= tally.shown) return;
    tally.shown = done;
    hooks.progress(done, tally.total);
  }

  async #rejectUnknown(entries: LogEntry[], tally: Tally, hooks: SyncHooks): Promise<void> {
    const names = [...new Set(entries.map((e) => `${e.schema}.${e.table}`))].join(", ");
    const message = `queued changes of ${names} cannot be pushed: the table is no longer synced locally (dropped, renamed, excluded or without a primary key)`;
    if (this.options.onReject === "stop") throw new SyncError("TABLE_NOT_SYNCED", message, { retryable: false });
    await this.local.run((d) =>
      inLocalTransaction(d, async () => {
        for (const e of entries) {
          await d.query(
            `INSERT INTO ${REJECTED_TABLE} (queue_ids, schema_name, table_name, op, old_row, new_row, error_message) VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7)`,
            [[e.id], e.schema, e.table, e.op, e.oldRow, e.newRow, message],
          );
        }
        await deleteEntries(d, toRanges(entries.map((e) => e.id)));
      }),
    );
    tally.rejected += entries.length;
    for (const e of entries) tally.tables[`${e.schema}.${e.table}`] = (tally.tables[`${e.schema}.${e.table}`] ?? 0) + 1;
    this.#count(tally, entries.length, hooks);
  }

  /** Run a remote step under the one retry policy (remote/retry.ts). */
  #retrying<T>(code: SyncErrorCode, what: string, fn: () => Promise<T>): Promise<T> {
    return this.remote.retrying(code, what, fn);
  }
}

interface DrainPlan {
  catalog: Catalog;
  order: Map<number, number>;
  rules: Map<number, TableRules>;
  clientId: string;
  maxId: number;
  /**
   * The id of the log's first entry other than an insert, at the start of the sync (maxId + 1 if none):
   * what before it is still left is a run of inserts.
   */
  firstRunEnd: number;
  /** Each table's COPY layout (undefined: its rows cannot go by COPY), made once per sync. */
  layouts: (table: TableInfo) => CopyLayout | undefined;
}

/** What #drain does next: push a window, or COPY the run of inserts from `cursor` (excluded) to `end` (excluded). */
type Unit = ({ kind: "window" } & Window) | { kind: "creates"; cursor: number; end: number };

/** A window's batches, the last entry it read, and whether the log ends there. */
interface Window {
  batches: Batch[];
  cursor: number;
  exhausted: boolean;
}

/** The log entries with ids after `after` and up to `hi`. */
interface Span {
  after: number;
  hi: number;
}

/** A chunk of a COPY batch: its entries (the first one's id), and each table's rows as COPY text (none: it cannot go by COPY). */
interface CopyChunk extends Span {
  lo: number;
  entries: number;
  tables?: Map<TableInfo, { text: Uint8Array; rows: number }>;
}

/** A batch's id in the ledger: its smallest entry id (entry sets of batches never overlap). */
function batchIdOf(batch: Batch): number {
  let min = Infinity;
  for (const id of batch.entryIds) if (id < min) min = id;
  return min;
}

const PUSH_FAILED: SyncErrorCode = "REMOTE_PUSH_FAILED";

/** Row writes of one table, one statement shape and one way of checking the remote rows, applied together. */
interface OpGroup {
  kind: RowOp["kind"];
  table: TableInfo;
  columns: string[];
  set: string[];
  check: Check;
  ops: RowOp[];
}

/**
 * How a change is checked against the remote row before it is written: the columns compared with the row
 * the remote should hold (`expected`: the before image, or after a settled conflict the remote row it was
 * settled against; "none": the remote should have no row, or the same row as the one written).
 */
interface Check {
  columns: string[];
  expected: "base" | "settled" | "none";
}

function checkOf(op: RowOp, columns: string[]): Check {
  const all = op.table.writable;
  if (op.expected !== undefined) return { columns: all, expected: "settled" };
  if (op.kind === "delete") return { columns: all, expected: "base" };
  if (op.kind === "move") return { columns: op.set, expected: "base" };
  if (op.base === null) return { columns, expected: "none" };
  // Deleted and inserted again: the change touched every column.
  return { columns: op.reinserted ? all : op.set, expected: "base" };
}

/**
 * Groups a batch's ops by statement shape. Ops of different rows commute (Coalescer.add keeps dependent
 * ones out of the window), except in a table referencing itself, where a group holds only consecutive ops
 * so that parent rows are still written before their children.
 */
function groupOps(ops: RowOp[]): OpGroup[] {
  const groups = new Map<string, OpGroup>();
  const out: OpGroup[] = [];
  for (const op of ops) {
    const columns = op.kind === "delete" ? [] : writableIn(op.table, op.image);
    const set = op.kind === "delete" ? [] : op.set;
    const check = checkOf(op, columns);
    const key = `${op.kind}\u0000${op.table.oid}\u0000${columns.join(",")}\u0000${set.join(",")}\u0000${check.expected}\u0000${check.columns.join(",")}`;
    let g = groups.get(key);
    if (g && g !== out[out.length - 1] && op.table.references.includes(op.table.oid)) g = undefined;
    if (!g) {
      g = { kind: op.kind, table: op.table, columns, set, check, ops: [] };
      groups.set(key, g);
      out.push(g);
    }
    g.ops.push(op);
  }
  return out;
}

function toGroupWrite(g: OpGroup): GroupWrite {
  const check = {
    columns: g.check.columns,
    acceptTarget: g.kind !== "move",
    ...(g.check.expected === "none" ? {} : { expected: g.ops.map((o) => (g.check.expected === "settled" ? o.expected! : o.base)) }),
  };
  const table = g.table;
  if (g.kind === "delete") return { kind: "delete", table, check, rows: g.ops.map((o) => (o as Extract<RowOp, { kind: "delete" }>).key) };
  if (g.kind === "upsert") return { kind: "upsert", table, check, columns: g.columns, set: g.set, rows: g.ops.map((o) => (o as Extract<RowOp, { kind: "upsert" }>).image) };
  return { kind: "move", table, check, columns: g.columns, set: g.set, rows: g.ops as Extract<RowOp, { kind: "move" }>[] };
}

export async function clientIdOf(d: Driver): Promise<string> {
  return (await getMeta(d, "client_id"))!;
}

/**
 * The SQL that reads a range of the log's ids: a CTE `bounds (hi)`, from the first entry after $1 (of those
 * `filter` keeps) to $3 - 1 ids past it and no further than $2, and the condition for the entries in it.
 * A range rather than a LIMIT: the planner scans it by the primary key with or without statistics (PGlite
 * runs no autovacuum; without them a LIMIT page sorted every entry after the cursor), and ids left unused by
 * rolled-back writes cost nothing.
 */
function idRange(filter = ""): { bounds: string; within: string } {
  return {
    bounds: `WITH bounds AS (SELECT least($2::int8, min(id) + $3::int8 - 1) AS hi FROM ${QUEUE_TABLE} WHERE id > $1::int8 ${filter})`,
    within: `id > $1::int8 AND id <= (SELECT hi FROM bounds) ${filter}`,
  };
}

/**
 * One page of the log (see idRange): the entries after `after` (of the `only` tables, if given), PAGE ids
 * from the first of them and no further than `maxId`; and `hi`, the end of that range (`maxId` when the log
 * ends within it). The entries come as ONE text value: PGlite's JS protocol parsing per row and per column costs far more than
 * the query (4-5x on 100,000 entries). Fields are joined with the unit separator and entries with the record
 * separator: json text escapes control characters and the names are JSON-quoted, so neither occurs.
 */
async function readPage(d: Driver, after: number, maxId: number, only: string[] | undefined): Promise<{ entries: LogEntry[]; hi: number }> {
  const { bounds, within } = idRange(only ? "AND (schema_name || '.' || table_name) = ANY($4::text[])" : "AND $4::text[] IS NULL");
  const { rows } = await d.query<{ hi: number; page: string | null }>(
    `${bounds}
     SELECT (SELECT hi FROM bounds)::int8 AS hi,
            string_agg(concat_ws(E'\\x1f', id, to_json(schema_name)::text, to_json(table_name)::text, op, priority,
                                 coalesce(old_row::text, ''), coalesce(new_row::text, '')), E'\\x1e' ORDER BY id) AS page
       FROM ${QUEUE_TABLE} WHERE ${within}`,
    [after, maxId, PAGE, only ?? null],
  );
  const { hi, page } = rows[0]!;
  if (!page) return { entries: [], hi: maxId };
  const entries = page.split("\x1e").map((record) => {
    const [id, schema, table, op, priority, oldRow, newRow] = record.split("\x1f") as [string, string, string, string, string, string, string];
    return {
      id: Number(id),
      schema: JSON.parse(schema) as string,
      table: JSON.parse(table) as string,
      op: op as LogEntry["op"],
      priority: Number(priority),
      oldRow: oldRow === "" ? null : oldRow,
      newRow: newRow === "" ? null : newRow,
    };
  });
  return { entries, hi: Number(hi) };
}

/**
 * A COPY chunk (see idRange): the entries (all inserts) after `after`, `size` ids from the first of them and
 * up to `upTo`, one row per table: its images joined by U+001E, read as bytes and turned into COPY text.
 */
async function readCopyChunk(d: Driver, plan: DrainPlan, after: number, upTo: number, size: number): Promise<CopyChunk> {
  const { bounds, within } = idRange();
  const rows = await d.raw(
    `${bounds}
     SELECT (SELECT hi FROM bounds), schema_name, table_name, min(id), count(*), string_agg(new_row::text, E'\\x1e' ORDER BY id)
       FROM ${QUEUE_TABLE} WHERE ${within} GROUP BY 2, 3`,
    [after, upTo, size],
  );
  const chunk: CopyChunk = { after, hi: upTo, lo: Infinity, entries: 0, tables: new Map() };
  for (const [hi, schema, name, lo, n, images] of rows) {
    chunk.hi = Number(decoded(hi));
    chunk.lo = Math.min(chunk.lo, Number(decoded(lo)));
    chunk.entries += Number(decoded(n));
    const table = plan.catalog.table(decoded(schema), decoded(name));
    const layout = table && !table.uncapturable ? plan.layouts(table) : undefined;
    const copyText = layout?.text(images!);
    if (!table || !copyText) delete chunk.tables;
    else chunk.tables?.set(table, { text: copyText, rows: Number(decoded(n)) });
  }
  return chunk;
}

const utf8 = new TextDecoder();

function decoded(bytes: Uint8Array | null | undefined): string {
  return utf8.decode(bytes ?? undefined);
}

/** A chunk's tables, parents before the tables that reference them. */
function inDependencyOrder<T>(tables: Map<TableInfo, T>, order: Map<number, number>): [TableInfo, T][] {
  return [...tables].sort(([a], [b]) => (order.get(a.oid) ?? 0) - (order.get(b.oid) ?? 0));
}

/** How many entries from..to each table has (what a batch applied by an earlier attempt held). */
async function entriesByTable(d: Driver, catalog: Catalog, from: number, to: number): Promise<Map<TableInfo, number>> {
  const { rows } = await d.query<{ schema: string; name: string; n: number }>(
    `SELECT schema_name AS schema, table_name AS name, count(*)::int AS n FROM ${QUEUE_TABLE} WHERE id BETWEEN $1 AND $2 GROUP BY 1, 2`,
    [from, to],
  );
  const out = new Map<TableInfo, number>();
  for (const r of rows) {
    const table = catalog.table(r.schema, r.name);
    if (table) out.set(table, Number(r.n));
  }
  return out;
}

/** The id after the run of inserts that follows `after` (at most maxId + 1). */
async function insertRunEnd(d: Driver, after: number, maxId: number): Promise<number> {
  const { rows } = await d.query<{ end: number }>(`SELECT coalesce(min(id), $2::int8 + 1)::int8 AS "end" FROM ${QUEUE_TABLE} WHERE id > $1 AND id <= $2 AND op <> 'I'`, [
    after,
    maxId,
  ]);
  return Number(rows[0]!.end);
}

/** Does an entry after the run (after..end) and up to maxId change one of the run's tables? */
async function changedLater(d: Driver, after: number, end: number, maxId: number): Promise<boolean> {
  const { rows } = await d.query<{ changed: boolean }>(
    `SELECT EXISTS (SELECT FROM ${QUEUE_TABLE} WHERE id >= $2 AND id <= $3
                       AND (schema_name, table_name) IN (SELECT schema_name, table_name FROM ${QUEUE_TABLE} WHERE id > $1 AND id < $2)) AS changed`,
    [after, end, maxId],
  );
  return rows[0]!.changed;
}

/** Drop the entries lo..hi; when they are all the log holds, by TRUNCATE (deleting 100,000 entries takes ~0.1 s). */
async function dropSpan(d: Driver, lo: number, hi: number): Promise<void> {
  await inLocalTransaction(d, async () => {
    const { rows } = await d.query<{ other: boolean }>(
      `SELECT EXISTS (SELECT FROM ${QUEUE_TABLE} WHERE id < $1) OR EXISTS (SELECT FROM ${QUEUE_TABLE} WHERE id > $2) AS other`,
      [lo, hi],
    );
    if (rows[0]!.other) await deleteEntries(d, [lo, hi]);
    else await d.exec(`TRUNCATE ${QUEUE_TABLE}`);
  });
}

async function deleteEntries(d: Driver, ranges: number[]): Promise<void> {
  const lo: number[] = [];
  const hi: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    lo.push(ranges[i]!);
    hi.push(ranges[i + 1]!);
  }
  await d.query(`DELETE FROM ${QUEUE_TABLE} q USING unnest($1::int8[], $2::int8[]) AS r(lo, hi) WHERE q.id BETWEEN r.lo AND r.hi`, [lo, hi]);
}

function describeBatch(batch: Batch): string {
  const op = batch.ops[0];
  if (!op) return `truncate of ${batch.truncates.map((t) => `${t.schema}.${t.name}`).join(", ")}`;
  if (batch.ops.length === 1) return `${op.kind} of ${op.table.schema}.${op.table.name} key (${keyText(op.table, op.kind === "upsert" ? op.image : op.key)})`;
  const tables = [...new Set(batch.ops.map((o) => `${o.table.schema}.${o.table.name}`))].join(", ");
  return `batch of ${batch.ops.length} changes to ${tables}`;
}

/** A remote error as one line: PostgreSQL's message, and its detail (which key, which referencing table). */
function describe(cause: unknown): string {
  const err = cause as { message?: string; detail?: string } | undefined;
  const message = err?.message ?? String(cause);
  return err?.detail ? `${message} (${err.detail})` : message;
}

/** Moving entries to the rejected table and out of the log is one local transaction: never both, never neither. */
async function keepRejected(d: Driver, batch: Batch, cause: unknown): Promise<void> {
  const err = cause as { code?: string; message?: string };
  await inLocalTransaction(d, async () => {
    for (const op of batch.ops) {
      await d.query(
        `INSERT INTO ${REJECTED_TABLE} (queue_ids, schema_name, table_name, op, row_key, old_row, new_row, error_code, error_message)
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7::text::jsonb, $8, $9)`,
        [
          op.entryIds,
          op.table.schema,
          op.table.name,
          op.kind === "delete" ? "D" : op.base ? "U" : "I",
          joinImage(op.kind === "upsert" ? keyOnly(op) : op.key),
          op.base ? joinImage(op.base) : null,
          op.kind === "delete" ? null : joinImage(op.image),
          err?.code ?? null,
          describe(cause),
        ],
      );
    }
    for (const t of batch.truncates) {
      await d.query(
        `INSERT INTO ${REJECTED_TABLE} (queue_ids, schema_name, table_name, op, error_code, error_message) VALUES ($1, $2, $3, 'T', $4, $5)`,
        [batch.entryIds, t.schema, t.name, err?.code ?? null, describe(cause)],
      );
    }
    await deleteEntries(d, toRanges(batch.entryIds));
  });
}

function keyOnly(op: Extract<RowOp, { kind: "upsert" }>): Map<string, string> {
  return new Map(op.table.primaryKey.map((c) => [c, op.image.get(c) ?? "null"]));
}

function tallyTable(tally: Tally, table: TableInfo, entries: number): void {
  const name = `${table.schema}.${table.name}`;
  tally.tables[name] = (tally.tables[name] ?? 0) + entries;
}

function withAncestors(names: string[], catalog: Catalog): string[] {
  const out = new Set<string>();
  const visit = (t: TableInfo | undefined) => {
    if (!t) return;
    const name = `${t.schema}.${t.name}`;
    if (out.has(name)) return;
    out.add(name);
    for (const ref of t.references) visit(catalog.tables.get(ref));
  };
  for (const n of names) {
    visit(catalog.table(...splitName(n)));
  }
  return [...out];
}

function splitName(qualifiedName: string): [string, string] {
  const dot = qualifiedName.indexOf(".");
  return [qualifiedName.slice(0, dot), qualifiedName.slice(dot + 1)];
}
