import { Syncer } from "./apply/syncer.js";
import { OminipgBase } from "./client.js";
import type { Driver } from "./driver.js";
import { ClosedError, OminipgError, SyncError } from "./errors.js";
import type { DirLock } from "./local/lock.js";
import { resolveSyncOptions, type ConnectOptions, type ResolvedSync } from "./options.js";
import { Remote } from "./remote/remote.js";
import { advanceRemoteSequences, localSequenceValues } from "./seq/sequences.js";
import type { SyncResult } from "./types.js";

/**
 * A local-first PostgreSQL client: queries run on a local PGlite database; with `syncUrl`, every write to a
 * synced table is captured and `sync()` pushes it to the remote server exactly once.
 */
export class Ominipg extends OminipgBase {
  readonly #sync: ResolvedSync;
  readonly #remote: Remote | undefined;
  readonly #syncer: Syncer | undefined;
  #inflight: Promise<SyncResult> | undefined;
  #interval: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;

  private constructor(driver: Driver, options: ConnectOptions, lock: DirLock | undefined) {
    super(driver, options, lock);
    this.#sync = resolveSyncOptions(options.sync);
    if (options.syncUrl) {
      this.#remote = new Remote(options.syncUrl, options.schemaSQL ?? [], options.remoteSchema !== "skip", this.#sync.concurrency + 1);
      this.#syncer = new Syncer(this.local, () => this.catalog(), this.#remote, this.#sync);
    }
  }

  /** Open the local database, run `schemaSQL`, and (with `syncUrl`) start capturing. Never waits on the network. */
  static async connect(options: ConnectOptions = {}): Promise<Ominipg> {
    const { driver, lock } = await OminipgBase.openLocal(options);
    const db = new Ominipg(driver, options, lock);
    db.#start();
    return db;
  }

  /**
   * Push every change captured so far to the remote. Concurrent calls join the sync in flight; changes made
   * while it runs are pushed by the next one.
   */
  sync(): Promise<SyncResult> {
    if (this.closed) return Promise.reject(new ClosedError());
    if (!this.#syncer) {
      return Promise.reject(new OminipgError("SYNC_NOT_CONFIGURED", "sync() needs a local database with syncUrl; this client has none (direct mode, or no syncUrl)"));
    }
    this.#inflight ??= this.#runSync(this.#syncer).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /** Move the remote sequences of synced tables up to the local values (never backwards). */
  async syncSequences(): Promise<number> {
    if (!this.#remote) throw new OminipgError("SYNC_NOT_CONFIGURED", "syncSequences() needs syncUrl");
    const catalog = await this.local.run(() => this.catalog());
    const values = await this.local.run((d) => localSequenceValues(d, [...catalog.tables.values()]));
    await this.#remote.ensureReady();
    return advanceRemoteSequences(this.#remote.sql, values);
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
    await this.#inflight?.catch(() => {});
    await super.close();
    await this.#remote?.close();
  }

  #start(): void {
    const remote = this.#remote;
    if (!remote) return;
    // Set the remote up in the background; a failure is reported and retried by the next sync().
    remote.ensureReady().catch((err) => {
      if (!this.closed) this.emit("error", remote.error("REMOTE_SETUP_FAILED", "setting up the remote database", err));
    });
    const background = () => void this.sync().catch(() => {}); // failures reach the "error" event
    if (this.#sync.intervalMs > 0) this.#interval = setInterval(background, this.#sync.intervalMs).unref();
    if (this.#sync.pushDebounceMs > 0) {
      this.onCaptured = () => {
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(background, this.#sync.pushDebounceMs).unref();
      };
    }
  }

  async #runSync(syncer: Syncer): Promise<SyncResult> {
    this.emit("sync:start");
    try {
      const result = await syncer.run({ progress: (done, total) => this.emit("sync:progress", { done, total }) });
      this.emit("sync:end", result);
      return result;
    } catch (err) {
      const error =
        err instanceof OminipgError
          ? err
          : new SyncError("SYNC_FAILED", `sync failed: ${this.#remote!.redact((err as Error)?.message ?? String(err))}`, { cause: err, retryable: false });
      this.emit("error", error);
      throw error;
    }
  }
}
