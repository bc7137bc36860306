import { checkConflictOptions } from "./conflict-options.js";
import type { ConflictOptions } from "./conflicts.js";
import { ConfigError } from "./errors.js";
import { resolveFeed, type FeedMode, type FeedOptions, type ResolvedFeed } from "./feed.js";
import { checkUrl, isPostgresUrl, tlsFromUrl } from "./url.js";

export interface SyncOptions {
  /** Schemas whose tables are synced. Default `["public"]`. */
  schemas?: string[];
  /** Only these tables ("name" or "schema.name"). Default: every table with a primary key in `schemas`. */
  tables?: string[];
  /** Tables never synced ("name" or "schema.name"). */
  exclude?: string[];
  /** Row writes per remote batch (one remote transaction each). Default 1000. */
  batchSize?: number;
  /**
   * Log ids per COPY batch (one remote transaction each): a run of more than `batchSize` inserts in the log is
   * pushed by COPY, which skips remote rules (CREATE RULE). 0: never COPY. Default 100000.
   */
  copyBatchSize?: number;
  /** Batches in flight at once. Default 2. */
  concurrency?: number;
  /** At most `intervalCap` batches start per `interval` ms. Default: no rate limit. */
  intervalCap?: number;
  interval?: number;
  /** Background sync every `intervalMs` ms. Default: off. */
  intervalMs?: number;
  /** Push this many ms after the last captured write. Default: off. */
  pushDebounceMs?: number;
  /** A change the remote rejects for good: stop the sync (default), or keep it in `_ominipg_rejected` and go on. */
  onReject?: "stop" | "skip";
  /**
   * Remote -> local: "initial" pulls once in the background when this database has never pulled;
   * "live" also pulls after every background sync. Default false (call `pull()` yourself).
   */
  pull?: false | "initial" | "live";
  /**
   * How a pushed change is settled when the remote row changed since the change was made (a conflict):
   * "overwrite" (default), "remote-wins", "merge" or a resolver function; one for all tables, or
   * `{ default, tables: { name: strategy } }`. Every conflict is recorded in `_ominipg_conflicts`.
   */
  conflicts?: ConflictOptions;
  /**
   * The remote change feed (docs/SYNC.md, "The change feed"): "auto" (default: set up and drained by a role that
   * may, pulled from wherever usable, else diff), "off", "require", or `{ mode, retentionMs, staleMs,
   * warnRetainedBytes }`.
   */
  feed?: FeedMode | FeedOptions;
  /** Retries of a failed remote round trip within one sync: attempts and exponential back-off bounds. */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /**
   * How long close() waits for remote work in flight (a sync, a pull, verify()) before it ends the remote
   * connections under it: a remote transaction cut off rolls back, and changes whose push was not confirmed stay
   * queued (a directory database pushes them, once, at its next sync). Default 5000 (a remote lock held by another
   * session would otherwise keep close(), and a clean exit on SIGTERM, waiting as long as the lock is held).
   */
  closeTimeoutMs?: number;
}

export interface ConnectOptions {
  /** ":memory:" (default), a directory path or file:// URL for a persistent PGlite, or postgres:// for direct mode. */
  url?: string;
  /** The remote PostgreSQL server: turns on change capture and sync. */
  syncUrl?: string;
  /** Idempotent statements run at every connect on the local database, and on the remote unless `remoteSchema: "skip"`. */
  schemaSQL?: string[];
  remoteSchema?: "apply" | "skip";
  sync?: SyncOptions;
  /**
   * How SERIAL / identity ids are minted (docs/SYNC.md "Several clients and ids"). "auto" (default): from id
   * blocks leased on the remote sequence at each sync, disjoint between clients; locally before the first
   * lease and past the blocks (those can collide: refused, never written over; reported as warnings).
   * "lease": only from leased blocks (an insert fails without one). "advance": locally, the remote sequence
   * moved past pushed ids (one writer; warns that ids of tables keyed by a sequence can collide).
   */
  sequences?: "auto" | "advance" | "lease";
  /** Ids per leased block with `sequences: "auto"` or `"lease"`. Default 1000. */
  leaseSize?: number;
  /** Start a new local database from a PGlite data dump (`dumpDataDir()`), e.g. to make tests fast. */
  loadDataDir?: Blob;
  /**
   * A new local database (in memory, or a directory without one) starts as a copy of a freshly initialized
   * database (its `postgres` database: `CREATE DATABASE` there names `TEMPLATE postgres`) cached once per PGlite
   * version in the user's cache directory, instead of running initdb (~0.5 s instead of ~4 s). Default true;
   * false (or the environment variable `OMINIPG_INIT_CACHE=0`) runs initdb every time. A `loadDataDir` dump always
   * wins.
   */
  initCache?: boolean;
  /** Prepared statements kept per client. Default 200. */
  statementCacheSize?: number;
  /**
   * The local database's buffer pool for this open (PostgreSQL's `shared_buffers`, e.g. `"16MB"`). Default the
   * database's own setting: 32MB in one made from the init cache, PostgreSQL's 128MB in one made by initdb.
   * PostgreSQL zeroes the whole pool at every start (~0.4 s for 128MB on a small machine): short-lived
   * processes open faster with less. Not stored in the database.
   */
  sharedBuffers?: string;
  /**
   * With a directory database: close this client on SIGTERM and SIGINT (docker stop, Ctrl-C), releasing its
   * lock, then end the process as the signal would have unless the app listens for the signal too.
   * Default true; false leaves signals to the app (close the client yourself).
   */
  handleSignals?: boolean;
  /**
   * The role this client acts as on the remote (one process serving many users: each client its own role;
   * the login role of `syncUrl` must be a member). Every remote transaction of the client starts with
   * `set_config('role', ..., true)`: its pushes, pulls and ledger rows are that role's, and row-level security
   * decides what it may read and write. Works through poolers in transaction mode.
   */
  remoteRole?: string;
  /**
   * JWT-style claims for policies that read `current_setting('request.jwt.claims')` (Supabase / PostgREST),
   * set per remote transaction like `remoteRole`; their `sub` also names this client's ledger rows.
   */
  remoteClaims?: Record<string, unknown>;
  /**
   * @internal The CLI's, not part of the API: with `syncUrl`, sync what this database's app stored at its last
   * connect with a remote (its sync.schemas, tables and exclude), `sync`'s own values winning; read in the same
   * open of the database.
   */
  storedSyncScope?: boolean;
  /**
   * @internal The CLI's, not part of the API: the SQL parser loads at the first query that needs it instead of
   * during the open. A command that runs no app query never loads it (~0.13 s of CPU in a new process).
   */
  deferParser?: boolean;
  /** @internal Fault injection for Ominipg's own tests; not part of the API. */
  testHooks?: TestHooks;
}

/**
 * @internal Fault injection for Ominipg's own tests, given to `connect()` (never global state): the
 * exactly-once tests kill the process, or fake a lost COMMIT reply, right after a batch's remote COMMIT and
 * before its local clean-up. Unset, a hook costs one property read per batch.
 */
export interface TestHooks {
  afterRemoteCommit?: () => void | Promise<void>;
  /** A feed drain step wrote its rows and has not advanced the slot yet (remote/feed-drain.ts). */
  afterFeedInsert?: () => void | Promise<void>;
}

export type ResolvedSync = Required<
  Omit<SyncOptions, "intervalMs" | "pushDebounceMs" | "retry" | "pull" | "conflicts" | "feed">
> & {
  conflicts: ConflictOptions | undefined;
  feed: ResolvedFeed;
  pull: false | "initial" | "live";
  intervalMs: number;
  pushDebounceMs: number;
  retry: { attempts: number; baseDelayMs: number; maxDelayMs: number };
};

const CONNECT_KEYS = new Set([
  "url",
  "syncUrl",
  "schemaSQL",
  "remoteSchema",
  "sync",
  "sequences",
  "leaseSize",
  "loadDataDir",
  "initCache",
  "statementCacheSize",
  "sharedBuffers",
  "handleSignals",
  "remoteRole",
  "remoteClaims",
  "storedSyncScope",
  "deferParser",
  "testHooks",
]);
const SYNC_KEYS = new Set([
  "schemas",
  "tables",
  "exclude",
  "batchSize",
  "copyBatchSize",
  "concurrency",
  "intervalCap",
  "interval",
  "intervalMs",
  "pushDebounceMs",
  "onReject",
  "retry",
  "pull",
  "conflicts",
  "feed",
  "closeTimeoutMs",
]);

export function resolveSyncOptions(sync: SyncOptions = {}): ResolvedSync {
  if (sync === null || typeof sync !== "object") throw new ConfigError("sync must be an object");
  if (sync.retry !== undefined && (sync.retry === null || typeof sync.retry !== "object"))
    throw new ConfigError("sync.retry must be an object ({ attempts, baseDelayMs, maxDelayMs })");
  unknownKeys(sync, SYNC_KEYS, "sync");
  const list = (v: unknown, name: string, fallback: string[]) => {
    if (v === undefined) return fallback;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || x === ""))
      throw new ConfigError(`sync.${name} must be an array of names`);
    return v as string[];
  };
  const int = (v: unknown, name: string, fallback: number, min: number) => {
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !(v >= min) || (!Number.isInteger(v) && v !== Infinity))
      throw new ConfigError(
        `sync.${name} must be a whole number >= ${min}, got ${typeof v === "string" ? JSON.stringify(v) : String(v)}`,
      );
    return v;
  };
  if (sync.onReject !== undefined && sync.onReject !== "stop" && sync.onReject !== "skip")
    throw new ConfigError(`sync.onReject must be "stop" or "skip"`);
  checkConflictOptions(sync.conflicts);
  if (sync.pull !== undefined && sync.pull !== false && sync.pull !== "initial" && sync.pull !== "live")
    throw new ConfigError(`sync.pull must be false, "initial" or "live"`);
  return {
    schemas: list(sync.schemas, "schemas", ["public"]),
    tables: list(sync.tables, "tables", []),
    exclude: list(sync.exclude, "exclude", []),
    batchSize: int(sync.batchSize, "batchSize", 1000, 1),
    copyBatchSize: int(sync.copyBatchSize, "copyBatchSize", 100_000, 0),
    concurrency: int(sync.concurrency, "concurrency", 2, 1),
    intervalCap: int(sync.intervalCap, "intervalCap", Infinity, 1),
    interval: int(sync.interval, "interval", 0, 0),
    intervalMs: int(sync.intervalMs, "intervalMs", 0, 0),
    pushDebounceMs: int(sync.pushDebounceMs, "pushDebounceMs", 0, 0),
    onReject: sync.onReject ?? "stop",
    pull: sync.pull ?? false,
    conflicts: sync.conflicts,
    feed: resolveFeed(sync.feed),
    closeTimeoutMs: int(sync.closeTimeoutMs, "closeTimeoutMs", 5000, 0),
    retry: {
      attempts: int(sync.retry?.attempts, "retry.attempts", 3, 1),
      baseDelayMs: int(sync.retry?.baseDelayMs, "retry.baseDelayMs", 200, 0),
      maxDelayMs: int(sync.retry?.maxDelayMs, "retry.maxDelayMs", 5000, 0),
    },
  };
}

/** `readFile` reads the TLS files a URL names (sslrootcert, sslcert, sslkey), to refuse one that cannot be read now. */
export function validateConnectOptions(options: ConnectOptions, readFile: (path: string) => Buffer): void {
  if (options === null || typeof options !== "object") throw new ConfigError("connect options must be an object");
  unknownKeys(options, CONNECT_KEYS, "connect");
  if (
    options.schemaSQL !== undefined &&
    (!Array.isArray(options.schemaSQL) || options.schemaSQL.some((s) => typeof s !== "string"))
  ) {
    throw new ConfigError("schemaSQL must be an array of SQL strings");
  }
  if (
    options.syncUrl !== undefined &&
    (typeof options.syncUrl !== "string" || !/^postgres(ql)?:\/\//i.test(options.syncUrl))
  ) {
    throw new ConfigError("syncUrl must be a postgres:// or postgresql:// URL");
  }
  for (const [name, url] of [
    ["syncUrl", options.syncUrl],
    ["url", options.url],
  ] as const) {
    if (typeof url === "string" && isPostgresUrl(url)) checkRemoteUrl(name, url, readFile);
  }
  if (options.remoteSchema !== undefined && options.remoteSchema !== "apply" && options.remoteSchema !== "skip") {
    throw new ConfigError(`remoteSchema must be "apply" or "skip"`);
  }
  if (options.storedSyncScope !== undefined && typeof options.storedSyncScope !== "boolean") {
    throw new ConfigError("storedSyncScope must be true or false");
  }
  if (
    options.sharedBuffers !== undefined &&
    !(kilobytes(options.sharedBuffers) >= 128 && kilobytes(options.sharedBuffers) <= 1 << 20)
  ) {
    throw new ConfigError(
      `sharedBuffers must be a size from "128kB" to "1GB", such as "16MB" (a whole number, then kB, MB or GB)`,
    );
  }
  const cache = options.statementCacheSize;
  if (cache !== undefined && (!Number.isInteger(cache) || cache < 1)) {
    throw new ConfigError("statementCacheSize must be a whole number >= 1");
  }
  if (options.loadDataDir !== undefined && !(options.loadDataDir instanceof Blob)) {
    throw new ConfigError("loadDataDir must be a Blob (a dump from dumpDataDir())");
  }
  if (options.initCache !== undefined && typeof options.initCache !== "boolean") {
    throw new ConfigError("initCache must be true or false");
  }
  if (options.sequences !== undefined && !["auto", "advance", "lease"].includes(options.sequences)) {
    throw new ConfigError(`sequences must be "auto", "advance" or "lease"`);
  }
  if (options.leaseSize !== undefined && (!Number.isInteger(options.leaseSize) || options.leaseSize < 1)) {
    throw new ConfigError("leaseSize must be a whole number >= 1");
  }
  if (options.handleSignals !== undefined && typeof options.handleSignals !== "boolean") {
    throw new ConfigError("handleSignals must be true or false");
  }
  if (options.remoteRole !== undefined && (typeof options.remoteRole !== "string" || options.remoteRole === "")) {
    throw new ConfigError("remoteRole must be a role name");
  }
  const claims = options.remoteClaims;
  if (claims !== undefined && (claims === null || typeof claims !== "object" || Array.isArray(claims))) {
    throw new ConfigError("remoteClaims must be an object (the JWT claims)");
  }
  if ((options.remoteRole !== undefined || claims !== undefined) && options.syncUrl === undefined) {
    throw new ConfigError("remoteRole and remoteClaims need syncUrl");
  }
}

/** A size such as "16MB" in kB (PostgreSQL's units: kB, MB, GB); NaN if it is not one. */
function kilobytes(size: unknown): number {
  const m = typeof size === "string" ? /^([1-9][0-9]*)(kB|MB|GB)$/.exec(size) : null;
  return m ? Number(m[1]) * { kB: 1, MB: 1 << 10, GB: 1 << 20 }[m[2] as "kB"] : NaN;
}

function unknownKeys(obj: object, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) throw new ConfigError(`unknown ${where} option "${key}"`);
  }
}

/** Throws a ConfigError (which never quotes it) unless `url` is a postgres:// URL read alike everywhere (core/url.ts). */
export function checkRemoteUrl(name: string, url: string, readFile: (path: string) => Buffer): void {
  try {
    checkUrl(url);
    tlsFromUrl(url, readFile);
  } catch (err) {
    // No cause: the URL (and its password) must not travel with the error.
    throw new ConfigError(`${name}: ${(err as Error).message}`);
  }
}
