/**
 * Pull: remote -> local.
 *
 * ## Design: snapshot copy, then hash-bucket reconciliation (no server-side state)
 *
 * Every pull reads ONE remote snapshot: a `REPEATABLE READ, READ ONLY` transaction in which every synced table
 * is read, parents before children. Per table:
 *
 * - **copy** (the local table holds no rows other than ones with pending local changes, e.g. the first pull):
 *   the remote rows are streamed with a postgres.js cursor in chunks of `chunkRows` (the next chunk is fetched
 *   while the current one is written) and each chunk is upserted locally by one statement with one jsonb
 *   parameter (`jsonb_populate_recordset`). Memory holds two chunks, whatever the table's size.
 * - **diff** (every later pull): rows are hashed into B buckets by primary key on both sides
 *   (bucket = md5(key as jsonb text) mod B, B ~ rows / 32, a power of two <= 65,536); per bucket the row count
 *   and the sum of 60-bit md5 prefixes of the rows' jsonb text are compared. Only the rows of buckets that
 *   differ are fetched (one more remote scan, streamed) into a local temp table; local rows of those buckets
 *   that the remote no longer has are deleted, then the fetched rows are upserted (only rows that differ are
 *   written). A client offline for days catches up in one pull: nothing on the server depends on how long ago
 *   it last pulled.
 *
 * Both sides run with the same session settings (SET LOCAL TimeZone 'UTC', DateStyle ISO, IntervalStyle,
 * extra_float_digits 1, bytea_output hex, lc_monetary C), so equal rows have equal text and equal hashes, and
 * the user's own local SETs cannot leak in. Where the text still differs for equal values (a type whose output
 * differs between server versions, a non-UTF8 remote database), the only cost is that the bucket is fetched at
 * every pull: rows are compared locally, as typed values rendered by the local database, before anything is
 * written, and conflicts are decided the same way.
 *
 * Why not logical replication / a change table: this mode needs no privileges beyond SELECT, no set-up on the
 * server (no publication, no slot, no trigger, no extra column), and works through PgBouncer in transaction
 * mode (one plain transaction per pull, no prepared statements, no replication protocol).
 * Costs: every diff pull scans every synced table fully on the server (and locally) to hash it, even when
 * nothing changed: O(table size) CPU per pull rather than O(changes); the hash list is ~B rows per table.
 * The pull's snapshot transaction stays open while rows are written locally (it holds back the server's
 * vacuum horizon for that long, like any long read). In exchange: no WAL is held on the server, there are no
 * replication slots to leak or to drop, and the server's disk cannot fill up because a client went away.
 *
 * Server-side state: NONE. Nothing is created on the server for a client (no slot, publication, table or row),
 * so there is nothing to name after the client id and nothing to clean up when a client disappears.
 *
 * ## Local writes
 *
 * Pulled rows are written through the internal driver (`LocalAccess.run`), which capture never sees: they are
 * never recorded in `_sync_queue` (no echo: a push after a pull pushes nothing new; a pull after a push finds
 * equal hashes and writes nothing). Each chunk is its own short local transaction with
 * `session_replication_role = replica` (FK checks, cascades and user triggers do not fire: the rows come from a
 * snapshot the remote already checked, and the remote's cascaded deletes arrive as deletes), so user queries
 * interleave between chunks and see tables filled progressively.
 *
 * Pending local changes win: a row whose key has entries in `_sync_queue` (old or new key) is neither
 * overwritten nor deleted. The held keys are read from the queue into a temp table and topped up right before
 * each local write, in the same session turn, so changes captured during the pull are respected too. A pending TRUNCATE holds the whole table. For every key that was pending when its table's
 * pull started, the remote row is compared with the pending change's base (the row before the first pending
 * change): if the remote matches neither in the columns the local change touched (conflicts/detect.ts, the
 * push's own rule), that is a conflict, reported to `hooks.conflict` (images as jsonb text, null where there is
 * no row). It is reported at every pull while the change stays pending: records are kept by (table, key, the
 * change's first queue entry), and the push that settles the conflict updates the same record.
 *
 * A remote row the local table refuses (a UNIQUE or CHECK constraint the remote does not have, or one a
 * pending local row holds) is isolated by halving its chunk, skipped and reported to `hooks.rejected`;
 * the rest of the pull goes on, and the next pull tries the row again.
 *
 * Pull and push must not run at the same time (serialize them): a change written and pushed while a pull
 * runs would never be seen as pending, and the pull's older snapshot would revert it locally until the next pull.
 *
 * Local scratch state: two temp tables per table being pulled (`pg_temp.ominipg_pull_<oid>`, the fetched rows;
 * `pg_temp.ominipg_held_<oid>`, the keys with pending changes), dropped when the table is done.
 *
 * Limits: json columns arrive normalized (as jsonb prints them: key order, whitespace, duplicate keys); an
 * identity ALWAYS column the remote changed on an existing row cannot be updated locally (PostgreSQL forbids it;
 * the row's other columns are); two rows swapping a UNIQUE value in one remote transaction are refused locally
 * (reported to `rejected`) until one side changes again; tables without a primary key are not pulled; md5()
 * must be available on the server (it is not in FIPS mode). Rows that exist only locally and were never
 * captured (written before sync was configured) are deleted by a diff, like any row the remote lacks.
 */
import type { Catalog } from "../capture/catalog.js";
import type { TableInfo } from "../core/table.js";
import { type LocalAccess } from "../local/access.js";
import { CANONICAL_SETTINGS } from "../core/settings.js";
import type { Driver } from "../core/driver.js";
import { OminipgError, SyncError } from "../core/errors.js";
import { joinImage, splitImage } from "../core/image.js";
import { isConflict } from "../core/conflict-rule.js";
import { Mutex } from "../core/mutex.js";
import { inReplicaTransaction } from "../local/transaction.js";
import { transaction } from "../remote/connection.js";
import type { Remote } from "../remote/remote.js";
import { analyzeSql, applySql, createStageSql, deleteMissingSql, dropStageSql, fetchSql, hasSettledRowsSql, pendingImagesSql, refreshHeldSql, remoteCountSql, remoteEstimateSql, stageBlocksSql, stageInsertSql, stagePageSql, summarySql } from "./sql.js";
import type { PullerOptions, PullHooks, PullResult, PullProgress, TablePull } from "./types.js";
import { catchUpSequences, ownedSequences, remoteSequenceValues, type Tx } from "../seq/pulled.js";

const MAX_BUCKETS = 1 << 16;

/** One table's pull: its tally, and the queue id up to which its held keys are known. */
interface TableRun {
  t: TableInfo;
  table: string;
  tally: TablePull;
  heldUpTo: string;
  /** A TRUNCATE of the table was queued during its pull: write nothing more to it. */
  truncated: boolean;
}

/** An error to rethrow as it is from the remote transaction (local failures, hook errors). */
class Carried {
  constructor(readonly error: unknown) {}
}

export class Puller {
  readonly #chunkRows: number;
  readonly #sequences: boolean;
  readonly #rowsPerBucket: number;
  /** Target on-disk bytes of remote rows per chunk (their JSON text is usually 1-3 times as large). */
  readonly #chunkBytes: number;
  readonly #lock = new Mutex();

  constructor(
    private readonly local: LocalAccess,
    private readonly catalog: () => Promise<Catalog>,
    private readonly remote: Remote,
    options: PullerOptions = {},
  ) {
    this.#chunkRows = options.chunkRows ?? 2000;
    this.#sequences = options.sequences ?? true;
    this.#rowsPerBucket = options.rowsPerBucket ?? 32;
    this.#chunkBytes = options.chunkBytes ?? 8 << 20;
  }

  /**
   * Bring every synced table to the remote's current state, keeping pending local changes on top.
   * Calls run one after another. A failed pull leaves the chunks it wrote (each one a local transaction) and
   * the next pull completes the job with a diff: pulling is idempotent, so retrying is always safe.
   */
  pull(hooks: PullHooks = {}): Promise<PullResult> {
    return this.#lock.run(async () => {
      try {
        return await this.#pull(hooks);
      } catch (err) {
        throw err instanceof Carried ? err.error : err;
      }
    });
  }

  async #pull(hooks: PullHooks): Promise<PullResult> {
    const started = performance.now();
    const { remote } = this;
    try {
      await remote.ensureReady();
    } catch (err) {
      throw remote.error("REMOTE_SETUP_FAILED", "setting up the remote database", err);
    }
    const catalog = await this.#local(() => this.catalog());
    const tables = catalog.syncedInDependencyOrder().filter((t) => !t.uncapturable && t.primaryKey.length > 0);
    const owned = this.#sequences ? await this.#local((d) => ownedSequences(d, tables)) : [];
    const result: PullResult = { tables: {}, conflicts: 0, rejected: 0, sequences: 0, durationMs: 0 };
    let remoteValues: (string | null)[] = [];
    try {
      // transaction(): postgres.js's own begin() can crash the process when the connection drops mid-way.
      await transaction(remote.sql, async (sql) => {
        const tx = sql as unknown as Tx; // transaction() hands over postgres.js's transaction connection
        await tx.unsafe(CANONICAL_SETTINGS).simple();
        for (const t of tables) {
          const tally = await this.#table(tx, t, hooks, result);
          result.tables[`${t.schema}.${t.name}`] = tally;
          result.rejected += tally.rejected;
        }
        remoteValues = await remoteSequenceValues(tx, owned);
      }, "ISOLATION LEVEL REPEATABLE READ READ ONLY");
    } catch (err) {
      if (err instanceof Carried) throw err;
      throw remote.error("PULL_FAILED", "pulling from the remote", err);
    }
    if (owned.length > 0) result.sequences = await this.#local((d) => catchUpSequences(d, owned, remoteValues));
    result.durationMs = Math.round(performance.now() - started);
    return result;
  }

  async #table(tx: Tx, t: TableInfo, hooks: PullHooks, result: PullResult): Promise<TablePull> {
    const table = `${t.schema}.${t.name}`;
    const run: TableRun = { t, table, tally: { strategy: "copy", upserted: 0, deleted: 0, skipped: 0, rejected: 0 }, heldUpTo: "0", truncated: false };
    try {
      // One session turn: the temp tables, every key pending now, and whether the table holds other rows.
      const settled = await this.#local(async (d) => {
        await d.exec(createStageSql(t));
        const q = (await d.query<{ max_id: string; truncated: boolean }>(refreshHeldSql(t), [run.heldUpTo], { prepare: false })).rows[0]!;
        run.heldUpTo = q.max_id;
        run.truncated = q.truncated;
        if (run.truncated) return false;
        await d.exec(analyzeSql(t, "held"));
        return (await d.query<{ settled: boolean }>(hasSettledRowsSql(t), [], { prepare: false })).rows[0]!.settled;
      });
      const maxId = run.heldUpTo;
      if (run.truncated) {
        run.tally.strategy = "held";
        return run.tally;
      }
      let bitmap: { buckets: number; hex: string } | undefined;
      if (settled) {
        run.tally.strategy = "diff";
        bitmap = await this.#diff(tx, run, hooks);
        if (!bitmap) return run.tally;
      } else {
        await this.#copy(tx, run, hooks);
      }
      if (run.truncated) run.tally.strategy = "held";
      else await this.#checkPending(run, maxId, bitmap, hooks, result);
      return run.tally;
    } finally {
      await this.#local((d) => d.exec(dropStageSql(t))).catch(() => {});
    }
  }

  async #copy(tx: Tx, run: TableRun, hooks: PullHooks): Promise<void> {
    const { t, table } = run;
    const count = (await tx.unsafe<{ n: number; bytes: number }[]>(remoteCountSql(t)))[0]!;
    const total = Number(count.n);
    let done = 0;
    this.#progress(hooks, { table, done, total });
    await streamChunks(tx.unsafe<{ j: string }[]>(fetchSql(t)).cursor(this.#chunkSize(total, Number(count.bytes))), async (rows) => {
      await this.#apply(run, rows.map((r) => r.j), "copy", hooks);
      done += rows.length;
      this.#progress(hooks, { table, done, total: Math.max(total, done) });
    });
  }

  /** Returns the differing buckets (undefined if none differ: the table is already equal to the remote). */
  async #diff(tx: Tx, run: TableRun, hooks: PullHooks): Promise<{ buckets: number; hex: string } | undefined> {
    const { t, table } = run;
    // The two sides work at the same time: remote and local each scan and hash the whole table.
    const [estimate, localCount] = await both(
      tx.unsafe<{ n: number; bytes: number }[]>(remoteEstimateSql(t)).then((rows) => ({ n: Number(rows[0]?.n ?? 0), bytes: Number(rows[0]?.bytes ?? 0) })),
      this.#local(async (d) => Number((await d.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM ${t.sql}`, [], { prepare: false })).rows[0]!.n)),
    );
    const buckets = bucketCount(Math.max(estimate.n, localCount), this.#rowsPerBucket);
    type Bucket = { b: number; n: number; s: string };
    const [remoteSums, localSums] = await both(
      tx.unsafe<Bucket[]>(summarySql(t, buckets)).then((rows) => [...rows]),
      this.#local((d) => inReplicaTransaction(d, async () => (await d.query<Bucket>(summarySql(t, buckets), [], { prepare: false })).rows)),
    );
    const localByBucket = new Map(localSums.map((r) => [Number(r.b), `${r.n}:${r.s}`]));
    const bits = new Uint8Array(Math.ceil(buckets / 8));
    let differing = 0;
    let total = 0;
    const mark = (b: number) => {
      if (bits[b >> 3]! & (1 << (b & 7))) return;
      bits[b >> 3]! |= 1 << (b & 7);
      differing++;
    };
    for (const r of remoteSums) {
      const b = Number(r.b);
      if (localByBucket.get(b) !== `${r.n}:${r.s}`) {
        mark(b);
        total += Number(r.n);
      }
      localByBucket.delete(b);
    }
    for (const b of localByBucket.keys()) mark(b);
    if (differing === 0) {
      this.#progress(hooks, { table, done: 0, total: 0 });
      return undefined;
    }
    const hex = `\\x${Buffer.from(bits).toString("hex")}`;

    // Stage the remote rows of the differing buckets, then delete what the remote lost, then apply the rows:
    // deletes first, so a value a deleted row held under a UNIQUE constraint is free for the row that took it.
    let done = 0;
    this.#progress(hooks, { table, done, total });
    const chunk = this.#chunkSize(estimate.n, estimate.bytes);
    await streamChunks(tx.unsafe<{ j: string }[]>(fetchSql(t, buckets), [hex]).cursor(chunk), async (rows) => {
      await this.#local((d) => inReplicaTransaction(d, () => d.query(stageInsertSql(t), [payload(rows.map((r) => r.j))], { prepare: false })));
      done += rows.length;
      this.#progress(hooks, { table, done, total: Math.max(total, done) });
    });
    await this.#local((d) => d.exec(analyzeSql(t, "stage")));
    const deleted = await this.#write(run, async (d) => (await d.query<{ deleted: number }>(deleteMissingSql(t, buckets), [hex], { prepare: false })).rows[0]!.deleted);
    run.tally.deleted += Number(deleted ?? 0);
    const blocks = await this.#local(async (d) => Number((await d.query<{ blocks: number }>(stageBlocksSql(t), [], { prepare: false })).rows[0]!.blocks));
    const step = Math.max(1, Math.floor((chunk * blocks) / Math.max(done, 1)));
    for (let b = 0; b < blocks && !run.truncated; b += step) {
      const images = await this.#local((d) =>
        inReplicaTransaction(d, async () => (await d.query<{ j: string }>(stagePageSql(t), [b, b + step], { prepare: false })).rows.map((r) => r.j)),
      );
      if (images.length > 0) await this.#apply(run, images, "diff", hooks);
    }
    return { buckets, hex };
  }

  /**
   * A local write of the table's pull, in one session turn with the refresh of its held keys (so a change
   * captured a moment ago is held too). Skipped (undefined) once a TRUNCATE of the table is queued.
   */
  async #write<T>(run: TableRun, fn: (d: Driver) => Promise<T>): Promise<T | undefined> {
    return this.#local((d) =>
      inReplicaTransaction(d, async () => {
        const r = (await d.query<{ max_id: string; truncated: boolean }>(refreshHeldSql(run.t), [run.heldUpTo], { prepare: false })).rows[0]!;
        run.heldUpTo = r.max_id;
        if (r.truncated) run.truncated = true;
        return run.truncated ? undefined : fn(d);
      }),
    );
  }

  /** Rows per chunk: `chunkRows`, fewer for wide rows so that a chunk stays near `chunkBytes` on disk. */
  #chunkSize(rows: number, bytes: number): number {
    if (!(rows > 0 && bytes > 0)) return this.#chunkRows;
    return Math.max(16, Math.min(this.#chunkRows, Math.floor((this.#chunkBytes * rows) / bytes)));
  }

  /**
   * Apply remote rows. A chunk the local table refuses (class 22/23: a constraint or a value it will not take)
   * is halved until the refused rows are found; those are reported and skipped.
   */
  async #apply(run: TableRun, images: string[], mode: "copy" | "diff", hooks: PullHooks): Promise<void> {
    const { t, table, tally } = run;
    try {
      const r = await this.#write(run, async (d) => (await d.query<{ upserted: number }>(applySql(t, mode), [payload(images)], { prepare: false })).rows[0]!);
      tally.upserted += Number(r?.upserted ?? 0);
    } catch (err) {
      const cause = err instanceof Carried ? err.error : err;
      const code = String((cause as { cause?: { code?: unknown } })?.cause?.code ?? "");
      if (!/^2[23]/.test(code)) throw err;
      if (images.length > 1) {
        const mid = Math.ceil(images.length / 2);
        await this.#apply(run, images.slice(0, mid), mode, hooks);
        await this.#apply(run, images.slice(mid), mode, hooks);
        return;
      }
      tally.rejected++;
      const error = ((cause as { cause?: unknown }).cause ?? cause) as Error;
      this.#hook(() => hooks.rejected?.({ table, key: joinImage(splitImage(images[0]!), t.primaryKey), remote: images[0]!, error }));
    }
  }

  async #checkPending(run: TableRun, maxId: string, bitmap: { buckets: number; hex: string } | undefined, hooks: PullHooks, result: PullResult): Promise<void> {
    const { t, table, tally } = run;
    const rows = await this.#local((d) =>
      inReplicaTransaction(d, async () =>
        (
          await d.query<{ key: string; queue_id: string; base: string | null; local: string | null; remote: string | null }>(
            pendingImagesSql(t, bitmap?.buckets),
            bitmap ? [maxId, bitmap.hex] : [maxId],
            { prepare: false },
          )
        ).rows,
      ),
    );
    for (const r of rows) {
      if (r.remote === r.local) continue; // nothing to hold back: the remote already has what the local row is
      tally.skipped++;
      if (!isConflict(r.base, r.local, r.remote)) continue; // the remote did not change what the local change touched
      result.conflicts++;
      const key = joinImage(splitImage(r.key));
      this.#hook(() => hooks.conflict?.({ table, key, base: r.base, local: r.local, remote: r.remote, queueId: Number(r.queue_id) }));
    }
  }

  #progress(hooks: PullHooks, p: PullProgress): void {
    this.#hook(() => hooks.progress?.(p));
  }

  #hook(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      throw new Carried(err);
    }
  }

  /** Local work through the internal (uncaptured) driver; its failures are carried out of the remote transaction. */
  async #local<T>(fn: (d: Driver) => Promise<T>): Promise<T> {
    try {
      return await this.local.run(fn);
    } catch (err) {
      if (err instanceof OminipgError && !(err instanceof SyncError)) throw new Carried(err);
      const message = (err as Error)?.message ?? String(err);
      throw new Carried(new OminipgError("PULL_LOCAL_FAILED", `the local side of the pull failed: ${message}`, { cause: err }));
    }
  }
}

/** Promise.all for two, but waits for both to settle before failing (nothing is left running behind). */
async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === "rejected") throw ra.reason;
  if (rb.status === "rejected") throw rb.reason;
  return [ra.value, rb.value];
}

function payload(images: string[]): string {
  return `[${images.join(",")}]`;
}

function bucketCount(rows: number, perBucket: number): number {
  let b = 1;
  while (b < MAX_BUCKETS && b * perBucket < rows) b *= 2;
  return b;
}

/**
 * Feed a postgres.js cursor's chunks to `fn`, fetching the next chunk while `fn` works on the current one.
 * On failure the chunk in flight is awaited and the portal closed, so the connection can roll back.
 */
async function streamChunks<T>(cursor: AsyncIterable<T[]>, fn: (rows: T[]) => Promise<void>): Promise<void> {
  const it = cursor[Symbol.asyncIterator]();
  let next = it.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = it.next();
      await fn(r.value);
    }
  } catch (err) {
    try {
      const r = await next;
      if (!r.done) await it.return?.();
    } catch {
      // the cursor itself failed: the transaction is aborted anyway
    }
    throw err;
  }
}
