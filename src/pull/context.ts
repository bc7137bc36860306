import type { Driver } from "../core/driver.js";
import { OminipgError, SyncError } from "../core/errors.js";
import type { TableInfo } from "../core/table.js";
import type { LocalAccess } from "../local/access.js";
import type { Tx } from "../seq/pulled.js";
import { remotePartitioned, remoteTarget, type PartitionedTables } from "../remote/remote-target.js";
import type { PullHooks, PullProgress } from "./types.js";

/**
 * An error to rethrow as it is from the remote transaction (a local failure, a hook's error). Not an Error on
 * purpose: the retry policy (remote/retry.ts) never retries it.
 */
export class Carried {
  constructor(readonly error: unknown) {}
}

/** The error a pull fails with: a carried one as it is, also where remote.retrying() made it a SyncError's cause. */
export function uncarried(err: unknown): unknown {
  const inner = err instanceof SyncError ? err.cause : err;
  return inner instanceof Carried ? inner.error : err;
}

/**
 * What stops an attempt whose remote transaction is over while it still runs (transaction() gives up on a lost
 * connection at once, and the retry starts): its next local write would race the retry's (they share the temp
 * tables), and its next query would go to a connection that is dead or already serves the retry. Its code is
 * one transaction() (remote/connection.ts) reads as a lost connection: it then sends no ROLLBACK either.
 */
export class Abandoned extends Error {
  readonly code = "CONNECTION_ENDED";
}

/** The sizes a pull works with (PullerOptions, defaults applied). */
export interface PullSizes {
  chunkRows: number;
  /** Rows per range of a copy (copy.ts): a COPY each, so larger than a chunk of row images. */
  copyRows: number;
  /** Target on-disk bytes of remote rows per chunk (their JSON text is usually 1-3 times as large). */
  chunkBytes: number;
  rowsPerBucket: number;
}

/**
 * What the steps of one pull share: the local database, the caller's hooks, the sizes; within one attempt at
 * the remote snapshot (attempt()), its transaction, until end().
 */
export class PullContext {
  #over = false;
  #partitioned: PartitionedTables | undefined;

  constructor(
    private readonly access: LocalAccess,
    private readonly hooks: PullHooks,
    readonly sizes: PullSizes,
    private readonly snapshot?: Tx,
  ) {}

  /** The same pull within an attempt at the remote snapshot, read in transaction `tx`. */
  attempt(tx: Tx): PullContext {
    return new PullContext(this.access, this.hooks, this.sizes, tx);
  }

  /** The attempt's transaction is over: what the attempt still does from now on throws Abandoned. */
  end(): void {
    this.#over = true;
  }

  /** The remote snapshot's transaction. */
  get tx(): Tx {
    this.#live();
    if (!this.snapshot) throw new TypeError("no remote snapshot outside an attempt");
    return this.snapshot;
  }

  /**
   * Which tables the remote holds as partitioned (remote/remote-target.ts), once per attempt: `known` when the
   * feed's state query read it already (feed-view.ts), else read here.
   */
  async readRemoteTables(tables: readonly TableInfo[], known?: PartitionedTables): Promise<void> {
    this.#partitioned = known ?? (await remotePartitioned(this.tx, tables));
  }

  /** The table as the snapshot reads its rows: the FROM target of remote reads (remote/remote-target.ts). */
  from(t: TableInfo): string {
    if (!this.#partitioned) throw new TypeError("the remote's tables are read first (readRemoteTables)");
    return remoteTarget(t, this.#partitioned);
  }

  /** Local work through the internal (uncaptured) driver; its failures are carried out of the remote transaction. */
  async local<T>(fn: (d: Driver) => Promise<T>): Promise<T> {
    try {
      // Checked once the session is ours: an attempt may end while its work waits for the session.
      return await this.access.run((d) => {
        this.#live();
        return fn(d);
      });
    } catch (err) {
      if (err instanceof Abandoned) throw err;
      if (err instanceof OminipgError && !(err instanceof SyncError)) throw new Carried(err);
      const message = (err as Error)?.message ?? String(err);
      throw new Carried(
        new OminipgError("PULL_LOCAL_FAILED", `the local side of the pull failed: ${message}`, { cause: err }),
      );
    }
  }

  /** Call the caller's hooks; what they throw ends the pull as it is. */
  hook(call: (hooks: PullHooks) => void): void {
    this.#live();
    try {
      call(this.hooks);
    } catch (err) {
      throw new Carried(err);
    }
  }

  progress(p: PullProgress): void {
    this.hook((h) => h.progress?.(p));
  }

  /**
   * Rows per chunk: `chunkRows` (`copyRows` for the ranges of a copy), fewer for wide rows so that a chunk stays
   * near `chunkBytes` on disk.
   */
  chunkSize(rows: number, bytes: number, kind: "rows" | "copy" = "rows"): number {
    const { chunkBytes } = this.sizes;
    const chunkRows = kind === "copy" ? this.sizes.copyRows : this.sizes.chunkRows;
    if (!(rows > 0 && bytes > 0)) return chunkRows;
    return Math.max(16, Math.min(chunkRows, Math.floor((chunkBytes * rows) / bytes)));
  }

  #live(): void {
    if (this.#over) throw new Abandoned("this attempt at the pull's remote snapshot is over");
  }
}
