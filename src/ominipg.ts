import { Syncer } from "./push/syncer.js";
import { backoffDelay, isRetryable } from "./remote/retry.js";
import { OminipgBase } from "./client.js";
import type { Catalog } from "./capture/catalog.js";
import type { Driver } from "./core/driver.js";
import type { TableInfo } from "./core/table.js";
import { ClosedError, OminipgError, SyncError, inTransactionError, type SyncErrorCode } from "./core/errors.js";
import type { DirLock } from "./local/lock.js";
import { resolveSyncOptions, type ConnectOptions, type ResolvedSync } from "./core/options.js";
import { Remote } from "./remote/remote.js";
import { LEASE_DDL, SequenceLeases, applyLeases, forgetLeases } from "./seq/lease.js";
import { advanceRemoteSequences, localSequenceValues } from "./seq/sequences.js";
import { clientIdOf, getMeta, setMeta } from "./log/tables.js";
import { readLogStatus } from "./log/status.js";
import { locate } from "./core/location.js";
import { Mutex } from "./core/mutex.js";
import { Puller } from "./pull/puller.js";
import { ConflictSettler } from "./push/settle.js";
import { conflictEvent, recordConflict, type ConflictRecord } from "./log/conflicts.js";
import type { Status } from "./types.js";
import type { OminipgWarning } from "./core/warnings.js";
import { localHashes, verifyTables, type VerifyResult } from "./pull/verify.js";
import { remoteStatus } from "./remote-status.js";
import { type PullResult } from "./pull/types.js";
import { pullRecord } from "./pull/conflicts.js";
import { type SyncResult } from "./push/types.js";
import { FeedDrainer, FeedLink, type FeedDrainerOptions } from "./feed.js";
import { unregisterReader } from "./pull/feed-register.js";

/**
 * A local-first PostgreSQL client: queries run on a local PGlite database; with `syncUrl`, every write to a
 * synced table is captured and `sync()` pushes it to the remote server exactly once.
 */
export class Ominipg extends OminipgBase {
  readonly #sync: ResolvedSync;
  readonly #remote: Remote | undefined;
  readonly #syncer: Syncer | undefined;
  readonly #leases: SequenceLeases | undefined;
  readonly #puller: Puller | undefined;
  readonly #feed: FeedLink | undefined;
  /** Push and pull never overlap: a change pushed during a pull could be reverted locally until the next pull. */
  readonly #remoteWork = new Mutex();
  #inflight: Promise<SyncResult> | undefined;
  /** Other remote calls in flight (verify, syncSequences, unregister): close() waits for them too. */
  readonly #calls = new Set<Promise<unknown>>();
  #pulling: Promise<PullResult> | undefined;
  #interval: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;

  private constructor(driver: Driver, options: ConnectOptions, lock: DirLock | undefined) {
    super(driver, options, lock);
    this.#sync = resolveSyncOptions(options.sync);
    if (options.syncUrl) {
      this.#remote = new Remote(
        options.syncUrl,
        options.schemaSQL ?? [],
        options.remoteSchema !== "skip",
        this.#sync.concurrency + 1,
        this.#sync.retry,
        { role: options.remoteRole, claims: options.remoteClaims },
      );
      const settler = new ConflictSettler(this.local, this.#sync.conflicts, (c) => this.emit("conflict", c));
      const warn = (w: OminipgWarning) => this.emit("warning", w);
      const hooks = options.testHooks;
      this.#syncer = new Syncer(this.local, () => this.catalog(), this.#remote, this.#sync, settler, hooks, warn);
      this.#feed = new FeedLink(this.#remote, this.#sync.feed, warn, hooks);
      this.#puller = new Puller(this.local, () => this.catalog(), this.#remote, {
        sequences: options.sequences !== "lease",
        feed: this.#feed.agent,
      });
      const sequences = options.sequences ?? "auto";
      this.#leases = new SequenceLeases(this.local, this.#remote, options.leaseSize ?? 1000, sequences);
    }
  }

  /**
   * A long-lived drainer of `url`'s remote change feed (docs/SYNC.md, "The change feed"), for deployments whose
   * clients may not read a replication slot: its role must be a superuser or have REPLICATION, the server run
   * with wal_level=logical. Sets the feed up if need be; `stop()` ends it. What `ominipg feed` runs.
   */
  static feed(url: string, options: FeedDrainerOptions = {}): Promise<FeedDrainer> {
    return FeedDrainer.start(url, options);
  }

  /** Open the local database, run `schemaSQL`, and (with `syncUrl`) start capturing. Never waits on the network. */
  static async connect(options: ConnectOptions = {}): Promise<Ominipg> {
    const { driver, lock, storedScope } = await OminipgBase.openLocal(options);
    if (storedScope) options = { ...options, sync: { ...storedScope, ...options.sync } };
    let db: Ominipg;
    try {
      db = new Ominipg(driver, options, lock);
    } catch (err) {
      await driver.close(); // never leave the database open and its directory locked
      lock?.release();
      throw err;
    }
    try {
      if (db.#remote) {
        // What this database syncs, for the tools that open it without the app's options (the CLI).
        const { schemas, tables, exclude } = db.#sync;
        await setMeta(driver, "sync_scope", JSON.stringify({ schemas, tables, exclude }));
      }
      if (db.#leases?.leasing) {
        await driver.exec(LEASE_DDL);
        const tables = [...(await db.catalog()).tables.values()];
        await db.local.run((d) => db.#leases!.open(d, tables));
      } else if (db.#leases) await db.local.run(forgetLeases); // "advance" now: blocks of an earlier mode go
    } catch (err) {
      await db.close();
      throw err;
    }
    db.#start();
    return db;
  }

  /**
   * Push every change captured so far to the remote. Concurrent calls join the sync in flight; changes made
   * while it runs are pushed by the next one.
   */
  sync(): Promise<SyncResult> {
    if (this.closed) return Promise.reject(new ClosedError());
    if (!this.#syncer) return notConfigured("sync()");
    if (this.insideTransaction()) return Promise.reject(inTransactionError());
    const syncer = this.#syncer;
    this.#inflight ??= this.#remoteWork
      .run(() => this.#runSync(syncer))
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  /**
   * Bring every synced table to the remote's current state (remote inserts, updates and deletes), from one
   * remote snapshot, without recording the pulled rows as local changes. Rows with pending local changes
   * are kept; where the remote changed them too, a conflict is recorded in `_ominipg_conflicts`.
   */
  pull(): Promise<PullResult> {
    if (this.closed) return Promise.reject(new ClosedError());
    if (!this.#puller) return notConfigured("pull()");
    if (this.insideTransaction()) return Promise.reject(inTransactionError());
    const puller = this.#puller;
    this.#pulling ??= this.#remoteWork
      .run(() => this.#runPull(puller))
      .finally(() => {
        this.#pulling = undefined;
      });
    return this.#pulling;
  }

  /** Move the remote sequences of synced tables up to the local values (never backwards). */
  async syncSequences(): Promise<number> {
    const remote = this.#remote;
    if (!remote) throw new OminipgError("SYNC_NOT_CONFIGURED", "syncSequences() needs syncUrl");
    return this.#track("REMOTE_SEQUENCES_FAILED", "moving the remote sequences", async () => {
      const catalog = await this.local.run(() => this.catalog());
      const values = await this.local.run((d) => localSequenceValues(d, [...catalog.tables.values()]));
      await remote.ensureReady();
      return (await remote.session((sql) => advanceRemoteSequences(sql, values))).moved;
    });
  }

  /** Remote work that close() waits for (refused once it is closing); a failure as a SyncError of `code`. */
  #track<T>(code: SyncErrorCode, what: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ClosedError());
    const call = work().catch((err: unknown) => {
      throw err instanceof OminipgError ? err : this.#remote!.error(code, what, err);
    });
    this.#calls.add(call);
    void call.catch(() => {}).finally(() => this.#calls.delete(call));
    return call;
  }

  /** What an operator wants to know: client id, pending changes, last sync, whether the remote answers. */
  async status(): Promise<Status> {
    if (this.closed) throw new ClosedError();
    const mode = locate(this.options.url).kind;
    if (mode === "server")
      return { clientId: null, mode: "direct", pending: [], lastSync: null, lastPull: null, remote: null, feed: null };
    const { clientId, pending, lastSync, lastPull } = await this.local.run(readLogStatus);
    const { remote, feed } = this.#remote
      ? await remoteStatus(this.#remote, this.#feed, clientId)
      : { remote: null, feed: null };
    return {
      clientId,
      mode: mode === "memory" ? "memory" : "directory",
      pending,
      lastSync: lastSync as Status["lastSync"],
      lastPull: lastPull as Status["lastPull"],
      remote,
      feed,
    };
  }

  /**
   * Remove what this client keeps on the server (its rows in the remote ledger), first dropping the local
   * entries they say were applied, so nothing is pushed twice. Other clients' rows are never touched. The
   * local database and its pending changes stay; a later sync() works as before.
   */
  unregister(): Promise<{ ledgerRows: number }> {
    if (this.closed) return Promise.reject(new ClosedError());
    if (!this.#syncer) return notConfigured("unregister()");
    if (this.insideTransaction()) return Promise.reject(inTransactionError());
    const syncer = this.#syncer;
    return this.#track("REMOTE_LEDGER_FAILED", "removing this client's ledger rows", () =>
      this.#remoteWork.run(async () => {
        const ledgerRows = await syncer.unregister();
        if (this.#sync.feed.mode !== "off") await unregisterReader(this.#remote!, await this.local.run(clientIdOf));
        return { ledgerRows };
      }),
    );
  }

  /** Compare every synced table row by row with the remote (sync first: pending changes show as differences). */
  async verify(): Promise<VerifyResult> {
    const remote = this.#remote;
    if (!remote) throw new OminipgError("SYNC_NOT_CONFIGURED", "verify() needs syncUrl");
    return this.#track("VERIFY_FAILED", "comparing tables with the remote", async () => {
      const catalog = await this.local.run(() => this.catalog());
      const tables = [...catalog.tables.values()].filter((t) => !t.uncapturable);
      return verifyTables((sql) => this.local.run((d) => localHashes(d, sql)), remote, tables);
    });
  }

  protected override async shutdown(): Promise<void> {
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
    this.#feed?.stop();
    await this.rollbackOpenTransaction(); // a sync in flight may be waiting for it to end
    const work = Promise.allSettled([this.#inflight, this.#pulling, ...this.#calls]);
    await (this.#remote?.stopAfter(work, this.#sync.closeTimeoutMs) ?? work); // e.g. held up by a remote row lock
    await super.shutdown();
    await this.#remote?.close();
  }

  #start(): void {
    const remote = this.#remote;
    if (!remote) return;
    // Set the remote up in the background; a failure is reported here, unless a sync or pull that waited for
    // the same set-up reports it (one failure, one event), and retried by the next sync().
    remote.ensureReady().catch((err) => {
      if (this.closed || this.#inflight || this.#pulling) return;
      this.emit("error", remote.error("REMOTE_SETUP_FAILED", "setting up the remote database", err));
    });
    // Failures reach the "error" event. After a failed background run the next one waits a capped,
    // jittered, exponentially growing delay (sync.retry), so a dead remote sees no retry storm.
    let failures = 0;
    let notBefore = 0;
    const retryLater = (ms: number) => {
      // The interval ticks on by itself; push-after-write needs a timer to try again.
      if (this.#sync.pushDebounceMs <= 0) return;
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(background, ms).unref();
    };
    let again = false; // a run came due while a sync was in flight: joining it would miss the writes since it began
    const background = (): void => {
      if (this.closed || again) return;
      if (this.#inflight) {
        again = true;
        void this.#inflight.catch(() => {}).finally(() => ((again = false), background()));
        return;
      }
      if (Date.now() < notBefore) return retryLater(notBefore - Date.now());
      void this.sync()
        .then(() => (this.#sync.pull === "live" ? this.pull() : undefined))
        .then(
          () => {
            failures = 0;
            notBefore = 0;
          },
          () => {
            failures++;
            const wait = backoffDelay(failures, this.#sync.retry);
            notBefore = Date.now() + wait;
            if (!this.closed) retryLater(wait + 1);
          },
        );
    };
    // The first pull of a database never pulled, tried again (backing off) until it succeeds or is refused (its
    // error event says why): a remote down at connect() would otherwise leave it, and a live feed, never set up.
    const initial = (attempt: number): void => {
      if (this.closed) return;
      void this.local
        .run((d) => getMeta(d, "last_pull"))
        .then((lastPull) => (lastPull === undefined ? this.pull() : undefined))
        .catch((err: unknown) => {
          if (isRetryable(err))
            setTimeout(() => initial(attempt + 1), backoffDelay(attempt, this.#sync.retry) + 1).unref();
        });
    };
    if (this.#sync.pull !== false) initial(1);
    if (this.#sync.pull === "live" && this.#sync.feed.mode !== "off")
      this.#feed?.watch(
        () => this.pull(),
        () => !this.#inflight && !this.#pulling,
      );
    if (this.#sync.intervalMs > 0) this.#interval = setInterval(background, this.#sync.intervalMs).unref();
    if (this.#sync.pushDebounceMs > 0) {
      this.onCaptured = () => {
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(background, this.#sync.pushDebounceMs).unref();
      };
    }
  }

  /** "lease": a synced table made after connect gets its sequences capped when the catalog first shows it. */
  protected override async catalog(): Promise<Catalog> {
    const catalog = await super.catalog();
    await this.#leases?.capNew(this.driver, catalog.tables);
    return catalog;
  }

  /** A restart would hand out ids from the sequences' start, others' ids: they go back to this client's blocks. */
  protected override async restarted(tables: TableInfo[]): Promise<void> {
    if (this.#leases?.leasing) await applyLeases(this.driver, tables, this.#leases.strict);
  }

  /** With leased sequences, an exhausted id block moves the sequence to the next block and runs the statement again. */
  protected override async recover(err: unknown): Promise<boolean | Error> {
    const synced = async () => [...(await this.catalog()).tables.values()];
    return this.#leases ? this.#leases.recover(this.driver, synced, err) : false;
  }

  async #runPull(puller: Puller): Promise<PullResult> {
    this.emit("pull:start");
    try {
      const conflicts: ConflictRecord[] = [];
      const result = await puller.pull({
        progress: (p) => this.emit("pull:progress", p),
        conflict: (c) => conflicts.push(pullRecord(c)),
      });
      await this.local.run(async (d) => {
        for (const c of conflicts) await recordConflict(d, c);
        await setMeta(d, "last_pull", JSON.stringify({ ...result, at: new Date().toISOString() }));
      });
      for (const c of conflicts) this.emit("conflict", conflictEvent(c));
      this.#feed?.pulled(result);
      this.emit("pull:end", result);
      return result;
    } catch (err) {
      throw this.#failed("PULL_FAILED", "pull", err);
    }
  }

  async #runSync(syncer: Syncer): Promise<SyncResult> {
    this.emit("sync:start");
    try {
      const progress = (done: number, total: number) => this.emit("sync:progress", { done, total });
      const result = await syncer.run({ progress }).catch((e: unknown) => ({ failed: e }));
      // The remote answered, even if it refused a change: lease, or every table mints unleased ids until then.
      if (this.#leases && (!("failed" in result) || !isRetryable(result.failed))) {
        const tables = [...(await this.local.run(() => this.catalog())).tables.values()];
        const warnings = await this.#leases.topUp(tables).catch((e) => {
          if ("failed" in result) return []; // the push's failure is the one to report
          throw this.#remote!.error("SEQUENCE_LEASE_FAILED", "leasing sequence blocks", e);
        });
        for (const w of warnings) this.emit("warning", w);
      }
      if ("failed" in result) throw result.failed;
      await this.local.run((d) => setMeta(d, "last_sync", JSON.stringify({ ...result, at: new Date().toISOString() })));
      if (this.#sync.feed.mode !== "off") await this.#feed?.afterSync(); // a role that may drains the feed
      this.emit("sync:end", result);
      return result;
    } catch (err) {
      throw this.#failed("SYNC_FAILED", "sync", err);
    }
  }

  /** A failed push or pull as an OminipgError (redacted), reported through the "error" event. */
  #failed(code: SyncErrorCode, what: string, err: unknown): OminipgError {
    const error =
      err instanceof OminipgError
        ? err
        : new SyncError(code, `${what} failed: ${this.#remote!.describe(err)}`, {
            cause: err,
            retryable: false,
          });
    this.emit("error", error);
    return error;
  }
}

function notConfigured(call: string): Promise<never> {
  const why = `${call} needs a local database with syncUrl; this client has none (direct mode, or no syncUrl)`;
  return Promise.reject(new OminipgError("SYNC_NOT_CONFIGURED", why));
}
