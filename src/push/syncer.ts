import type { Catalog } from "../capture/catalog.js";
import { loadRules } from "../capture/constraints.js";
import type { ResolvedSync, TestHooks } from "../core/options.js";
import type { OminipgWarning } from "../core/warnings.js";
import type { TableInfo } from "../core/table.js";
import type { LocalAccess } from "../local/access.js";
import { deleteEntries, insertRunEnd, changedLater, firstQueuedId, logExtent } from "../log/queue.js";
import { clientIdOf } from "../log/tables.js";
import type { Remote } from "../remote/remote.js";
import { partitionedListSql, partitionedOf } from "../remote/remote-target.js";
import { advanceRemoteSequences, localSequenceValues } from "../seq/sequences.js";
import { pushBatches } from "./batch-pusher.js";
import type { PushContext } from "./context.js";
import { copyLayout, type CopyLayout } from "./copy.js";
import { pushCreates } from "./copy-pusher.js";
import { appliedRanges, dropLedger, forgetBatches } from "./ledger.js";
import { checkRemoteSchema, withRemoteRules, type RemoteSchema } from "./schema-check.js";
import type { ConflictSettler } from "./settle.js";
import { SyncError } from "../core/errors.js";
import { Tally } from "./tally.js";
import type { SyncResult } from "./types.js";
import { readWindow, referencing, withAncestors, type Window } from "./windows.js";

export interface SyncHooks {
  progress(done: number, total: number): void;
}

/** What the drain does next: push a window, or COPY the run of inserts from `cursor` (excluded) to `end` (excluded). */
type Unit = ({ kind: "window" } & Window) | { kind: "creates"; cursor: number; end: number };

/**
 * One sync: drains `_sync_queue` up to the id it finds at the start into the remote. Prioritized tables go
 * first; then the log window by window (windows.ts: read, coalesce, plan batches; batch-pusher.ts: each
 * batch one remote statement that first claims its ledger row, exactly once), with long runs of inserts
 * going by COPY instead (copy-pusher.ts). Ends by moving remote sequences up and pruning the ledger.
 */
export class Syncer {
  #schemaChecked: Catalog | undefined;
  /** What the push learned of the remote's tables (checkRemoteSchema), with the catalog checked. */
  #remoteSchema: RemoteSchema = { references: new Map(), pushOnly: new Map(), rules: new Map() };

  constructor(
    private readonly local: LocalAccess,
    private readonly catalog: () => Promise<Catalog>,
    private readonly remote: Remote,
    private readonly options: ResolvedSync,
    private readonly settler: ConflictSettler,
    private readonly testHooks: TestHooks = {},
    private readonly warn: (warning: OminipgWarning) => void = () => {},
  ) {}

  /** Tables whose remote sequence this role may not move, warned of once. */
  readonly #denied = new Set<string>();

  async run(hooks: SyncHooks): Promise<SyncResult> {
    const started = performance.now();
    const { remote } = this;
    await remote.retrying("REMOTE_SETUP_FAILED", "setting up the remote database", () => remote.ensureReady());
    const clientId = await this.local.run(clientIdOf);
    const catalog = await this.local.run(() => this.catalog());
    const tables = [...catalog.tables.values()].filter((t) => !t.uncapturable);
    // Which remote tables are partitioned (written whole, the others ONLY: remote/remote-target.ts), read at every
    // sync: only a table made again changes it.
    const partitioned = partitionedOf((await this.#reconcile(clientId, partitionedListSql(tables))).also);
    this.settler.checkTables(catalog);
    if (this.#schemaChecked !== catalog) {
      this.#remoteSchema = await remote.retrying("REMOTE_SCHEMA_CHECK_FAILED", "checking the remote schema", () =>
        remote.session((sql) => checkRemoteSchema(sql, tables)),
      );
      this.#schemaChecked = catalog;
    }

    const remoteSchema = this.#remoteSchema;
    const remoteRefs = remoteSchema.references;
    const references = (t: TableInfo) => [...t.references, ...(remoteRefs.get(t.oid) ?? [])];
    const extent = await this.local.run(logExtent);
    const layouts = new Map<TableInfo, CopyLayout | undefined>();
    const ctx: PushContext = {
      local: this.local,
      remote,
      options: this.options,
      settler: this.settler,
      testHooks: this.testHooks,
      tally: new Tally(extent.total, hooks.progress),
      catalog,
      references,
      remoteSchema,
      partitioned,
      order: new Map(catalog.syncedInDependencyOrder(references).map((t, i) => [t.oid, i])),
      rules: withRemoteRules(
        await this.local.run((d) => loadRules(d, catalog.tables.values())),
        remoteSchema,
        catalog.tables,
      ),
      clientId,
      maxId: extent.maxId,
      settled: new WeakMap(),
      writeOnly: new Set(),
      layouts: (table) => {
        if (!layouts.has(table)) layouts.set(table, copyLayout(table));
        return layouts.get(table);
      },
    };
    // Prioritized tables go first, with the tables they reference (their pending parents come along); up to the
    // first change queued for a table that references one of them and does not come along (a child row deleted
    // before its parent, a child inserted before its parent's delete sets it to NULL): from there, in log order.
    const first = withAncestors(extent.priorityTables, ctx);
    try {
      if (first.length > 0) {
        const behind = await this.local.run((d) => firstQueuedId(d, referencing(first, ctx)));
        const upto = Math.min(ctx.maxId, behind === undefined ? Infinity : behind - 1);
        await this.#drain({ ...ctx, maxId: upto }, first, extent.firstRunEnd);
      }
      await this.#drain(ctx, undefined, extent.firstRunEnd);
    } catch (err) {
      // The remote refused (a table for how the remote has it, or a change for a constraint it may have gained since
      // it was read): read again at the next sync.
      if (err instanceof SyncError && !err.retryable) this.#schemaChecked = undefined;
      throw err;
    }

    const values = await this.local.run((d) => localSequenceValues(d, [...catalog.tables.values()]));
    const { denied } = await remote.retrying("REMOTE_SEQUENCES_FAILED", "advancing remote sequences", () =>
      remote.session((sql) => advanceRemoteSequences(sql, values)),
    );
    for (const table of denied.filter((t) => !this.#denied.has(t))) {
      this.#denied.add(table);
      this.warn({
        code: "SEQUENCE_IDS_MAY_COLLIDE",
        table: table.replaceAll('"', ""),
        message:
          `the remote sequence of ${table} is not moved past the ids this client pushed: this role lacks UPDATE on ` +
          `it, so the server's own inserts may take them (a collision fails there); GRANT UPDATE ON SEQUENCE`,
      });
    }
    await remote.retrying("REMOTE_LEDGER_FAILED", "pruning the remote ledger", () =>
      remote.session((sql) => forgetBatches(sql, clientId, ctx.tally.appliedBatchIds)),
    );
    return ctx.tally.result(performance.now() - started);
  }

  /**
   * Remove this client's rows from the remote ledger, after dropping the local entries they say were
   * applied (so nothing is pushed twice later). Never touches another client's rows. Returns how many.
   */
  async unregister(): Promise<number> {
    const { remote } = this;
    await remote.retrying("REMOTE_SETUP_FAILED", "setting up the remote database", () => remote.ensureReady());
    const clientId = await this.local.run(clientIdOf);
    const { settled } = await this.#reconcile(clientId);
    const dropped = await remote.retrying("REMOTE_LEDGER_FAILED", "removing this client's ledger rows", () =>
      remote.session((sql) => dropLedger(sql, clientId)),
    );
    return settled + dropped;
  }

  /**
   * Entries the ledger says were applied but that are still queued locally (a crash after a remote COMMIT): how
   * many were; and the text of `also`, an SQL expression read in the same statement as the ledger (no round trip of
   * its own).
   */
  async #reconcile(clientId: string, also?: string): Promise<{ settled: number; also: string | null }> {
    const { remote } = this;
    const read = await remote.retrying("REMOTE_LEDGER_FAILED", "reading the remote ledger", () =>
      remote.session((sql) => appliedRanges(sql, clientId, also)),
    );
    const { batchIds, ranges } = read;
    if (batchIds.length > 0) {
      // All read again by the next pull: one since the remote COMMIT held their rows back (still queued) and moved
      // past their writes in the feed; and a delete the remote did not carry out is not known any more.
      await this.local.run((d) => deleteEntries(d, ranges, true));
      await remote.retrying("REMOTE_LEDGER_FAILED", "pruning the remote ledger", () =>
        remote.session((sql) => forgetBatches(sql, clientId, batchIds)),
      );
    }
    return { settled: batchIds.length, also: read.also };
  }

  /**
   * Window by window; the next window is read and coalesced while the current one's batches are pushed
   * (local and remote work overlap; windows are independent: a window's writes go out only after the
   * previous window's are all applied). A run of more than a batch of inserts goes out by COPY instead when
   * nothing later in this sync changes its tables (else the windows fold the run's rows with their later
   * changes), unless a COPY of it failed (the windows then find out why, row by row).
   */
  async #drain(ctx: PushContext, only: string[] | undefined, firstRunEnd: number): Promise<void> {
    const { options, maxId } = ctx;
    let copyAfter = only || options.copyBatchSize === 0 ? Infinity : 0;
    const read = (cursor: number, runEnd?: number) => {
      const next = (async (): Promise<Unit> => {
        if (cursor >= copyAfter) {
          const end = runEnd ?? (await this.local.run((d) => insertRunEnd(d, cursor, maxId)));
          if (end - cursor > options.batchSize) {
            if (!(await this.local.run((d) => changedLater(d, cursor, end, maxId))))
              return { kind: "creates", cursor, end };
            copyAfter = end; // the windows fold the run's rows with their later changes
          }
        }
        return { kind: "window", ...(await readWindow(ctx, only, cursor)) };
      })();
      next.catch(() => {}); // observed when awaited; until then a failure must not count as unhandled
      return next;
    };
    let next = read(0, firstRunEnd);
    for (;;) {
      const unit = await next;
      if (unit.kind === "creates") {
        const copied = await pushCreates(ctx, unit.cursor, unit.end);
        if (copied.copyAfter !== undefined) copyAfter = copied.copyAfter;
        if (copied.cursor >= maxId) return;
        next = read(copied.cursor);
        continue;
      }
      const { batches, cursor, exhausted } = unit;
      if (!exhausted) next = read(cursor);
      try {
        await pushBatches(ctx, batches);
      } catch (err) {
        if (!exhausted) await next.catch(() => {}); // nothing of ours is left running
        throw err;
      }
      if (exhausted) return;
    }
  }
}
