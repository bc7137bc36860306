import { AsyncLocalStorage } from "node:async_hooks";
import fs from "node:fs";
import path from "node:path";
import { Catalog, type SyncScope } from "./capture/catalog.js";
import { LOCAL_SCHEMA_SQL, ownClientId } from "./log/tables.js";
import { storedSyncScope, type StoredScope } from "./log/scope.js";
import { forgetLeases } from "./seq/lease.js";
import { loadParser } from "./capture/parser.js";
import { DirectDriver } from "./remote/direct-driver.js";
import type { Driver, QueryResult, RowMode } from "./core/driver.js";
import { ClosedError, ConfigError, OminipgError, inTransactionError, openFailed } from "./core/errors.js";
import { TypedEmitter } from "./core/emitter.js";
import { lockDirectory, type DirLock } from "./local/lock.js";
import { pace } from "./local/pace.js";
import { runSchema } from "./local/transaction.js";
import { locate } from "./core/location.js";
import { Mutex } from "./core/mutex.js";
import { PgliteDriver } from "./local/pglite-driver.js";
import type { LocalAccess } from "./local/access.js";
import { resolveSyncOptions, validateConnectOptions, type ConnectOptions } from "./core/options.js";
import { Planner, type ScriptRest, type Step } from "./query/planner.js";
import { originalError } from "./query/original-error.js";
import { shapeCaptured } from "./query/shape.js";
import type { OminipgEvents } from "./types.js";

/** `rowMode: "array"` returns each row as an array in column order (same-named columns stay apart). */
export interface QueryOptions {
  rowMode?: RowMode;
}

/** The handle a `transaction()` callback gets: its queries run inside the transaction. */
export interface Transaction {
  query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<T>>;
}

export class OminipgBase extends TypedEmitter<OminipgEvents> {
  protected readonly driver: Driver;
  readonly #options: ConnectOptions;
  #planner: Planner;
  #session = new Mutex();
  #txScope = new AsyncLocalStorage<symbol>();
  #activeTx: symbol | undefined;
  #idleWaiters: (() => void)[] = [];
  #catalog: Promise<Catalog> | undefined;
  #scope: SyncScope;
  #ddlInTransaction = false;
  #lock: DirLock | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Private, read through a getter: console.log(db) and JSON.stringify(db) do not show syncUrl's password. */
  protected get options(): ConnectOptions {
    return this.#options;
  }

  /** Called after every statement that captured changes (for push-after-write). */
  protected onCaptured: () => void = () => {};

  protected constructor(driver: Driver, options: ConnectOptions, lock: DirLock | undefined) {
    super();
    this.driver = driver;
    this.#options = options;
    this.#lock = lock;
    lock?.attach(this.local, options.handleSignals === false ? undefined : () => this.close());
    this.#scope = resolveSyncOptions(options.sync);
    this.#planner = new Planner(
      options.syncUrl
        ? {
            catalog: () => this.catalog(),
            describeNames: async (sql) => (await driver.describe(sql)).map((f) => f.name),
          }
        : undefined,
    );
  }

  /** Open the local database (or the server, in direct mode) and run `schemaSQL` on it. */
  protected static async openLocal(
    options: ConnectOptions,
  ): Promise<{ driver: Driver; lock?: DirLock; storedScope?: StoredScope | undefined }> {
    validateConnectOptions(options, (file) => fs.readFileSync(file));
    // Loaded while the database opens (~0.1-0.2 s); deferred, the planner loads it at its first statement.
    const parser = options.deferParser ? Promise.resolve() : loadParser();
    parser.catch(() => {}); // awaited below, unless the open failed first
    const location = locate(options.url);
    if (location.kind === "server") {
      if (options.syncUrl)
        throw new ConfigError(
          "direct mode (a postgres:// url) cannot also sync: leave out syncUrl, or use a local url",
        );
      const driver = new DirectDriver(location.url);
      await Promise.all([runSchema(driver, options.schemaSQL ?? [], "local"), parser]).catch(async (err) => {
        await driver.close();
        throw err;
      });
      return { driver };
    }
    let lock: DirLock | undefined;
    let driver: PgliteDriver;
    try {
      if (location.kind === "directory") {
        fs.mkdirSync(path.dirname(location.path), { recursive: true });
        // A symlink is opened (and locked) as its target: PGlite's file system does not follow it.
        if (fs.existsSync(location.path)) location.path = fs.realpathSync(location.path);
        lock = await lockDirectory(location.path);
      }
      driver = await PgliteDriver.open(
        location.kind === "directory" ? location.path : undefined,
        { loadDataDir: options.loadDataDir, initCache: options.initCache, sharedBuffers: options.sharedBuffers },
        options.statementCacheSize,
      );
    } catch (cause) {
      lock?.release();
      if (cause instanceof OminipgError) throw cause;
      const where = location.kind === "directory" ? `the data directory ${location.path}` : "an in-memory database";
      throw openFailed(where, cause);
    }
    let storedScope: StoredScope | undefined;
    try {
      // Capture keeps each statement's row images until the log insert reads them; PGlite's 4 MB default
      // spills a bulk statement's images to temporary files.
      await parser;
      await driver.exec(`SET work_mem = '64MB'`);
      await runSchema(driver, options.schemaSQL ?? [], "local");
      if (options.syncUrl) {
        if (options.storedSyncScope) storedScope = await storedSyncScope(driver);
        await driver.exec(LOCAL_SCHEMA_SQL);
        const home = location.kind === "directory" ? `directory:${fs.statSync(location.path).ino}` : "memory";
        // Leased id blocks belong to the database that leased them: a copy leases its own at its first sync.
        if (await ownClientId(driver, home)) await forgetLeases(driver);
      }
    } catch (err) {
      await driver.close();
      lock?.release();
      throw err;
    }
    return { driver, lock, storedScope };
  }

  /** True from the moment close() is called: new calls are refused while it finishes what is in flight. */
  get closed(): boolean {
    return this.#closed || this.#closing !== undefined;
  }

  /**
   * Run one statement (with `$1..$n` parameters) or a script of statements (without parameters; the last
   * statement's result is returned). With `syncUrl`, writes to synced tables are captured for `sync()`.
   */
  async query<T = Record<string, unknown>>(
    sql: string,
    params: readonly unknown[] = [],
    options: QueryOptions = {},
  ): Promise<QueryResult<T>> {
    const inside = this.insideTransaction();
    // A transaction() callback finishes (close() waits); other statements are refused once close() began, even
    // queued ones: after close()'s ROLLBACK one would run outside its BEGIN ... COMMIT.
    if (inside ? this.#closed : this.closed) throw new ClosedError();
    if (typeof sql !== "string") throw new ConfigError("query() takes SQL text as its first argument");
    if (!Array.isArray(params)) throw new ConfigError("query() parameters must be an array");
    const rowMode = options.rowMode ?? "object";
    if (rowMode !== "object" && rowMode !== "array") throw new ConfigError(`rowMode must be "object" or "array"`);
    if (inside) return this.#run<T>(sql, params, rowMode);
    return this.#session.run(() => {
      this.#assertOpen();
      return this.#run<T>(sql, params, rowMode);
    });
  }

  /** Run `fn` in a transaction: committed when it resolves, rolled back when it throws. */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.#assertOpen();
    if (this.#activeTx !== undefined && this.#txScope.getStore() === this.#activeTx) {
      throw new OminipgError("TRANSACTION_NESTED", "transaction() cannot be nested; use SAVEPOINT through tx.query()");
    }
    return this.#session.run(async () => {
      this.#assertOpen(); // queued when close() began
      if (this.driver.txStatus !== "idle") {
        throw new OminipgError(
          "TRANSACTION_ACTIVE",
          "a transaction opened with BEGIN through query() is still open; COMMIT or ROLLBACK it first",
        );
      }
      const token = Symbol("tx");
      let open = true;
      const tx: Transaction = {
        query: (sql, params = [], options = {}) => {
          if (!open) return Promise.reject(new OminipgError("TRANSACTION_CLOSED", "this transaction has ended"));
          return this.#run(sql, params, options.rowMode ?? "object");
        },
      };
      await this.#run("BEGIN", [], "object");
      this.#activeTx = token;
      try {
        const value = await this.#txScope.run(token, () => fn(tx));
        open = false;
        this.#activeTx = undefined;
        const end = await this.#run("COMMIT", [], "object");
        if (end.command === "ROLLBACK") {
          throw new OminipgError("TRANSACTION_ABORTED", "the transaction was rolled back: a statement in it failed");
        }
        return value;
      } catch (err) {
        open = false;
        this.#activeTx = undefined;
        if (this.driver.txStatus !== "idle") await this.#run("ROLLBACK", [], "object");
        throw err;
      }
    });
  }

  /**
   * Closes the local database and remote connections. Every call waits for the one closing (a second call, e.g.
   * an app's own signal handler after Ominipg's, resolves only once the database is closed and unlocked).
   */
  close(): Promise<void> {
    // It would wait for the transaction, which waits for the callback.
    if (this.insideTransaction()) return Promise.reject(inTransactionError());
    this.#closing ??= this.shutdown();
    return this.#closing;
  }

  /** What close() does, once. */
  protected async shutdown(): Promise<void> {
    await this.#session.run(async () => {
      this.#closed = true;
      await this.driver.close();
    });
    this.#lock?.release();
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** Local database access for Ominipg's own work, outside every user transaction. */
  protected readonly local: LocalAccess = {
    run: async <T>(fn: (driver: Driver) => Promise<T>): Promise<T> => {
      // From inside a transaction() callback this would wait for the transaction, which waits for us.
      if (this.insideTransaction()) throw inTransactionError();
      for (;;) {
        if (this.#closed) throw new ClosedError(); // Ominipg's own work in flight finishes while close() waits
        const outcome = await this.#session.run(async () =>
          this.driver.txStatus === "idle"
            ? { done: true as const, value: await fn(this.driver) }
            : { done: false as const },
        );
        if (outcome.done) return outcome.value;
        await new Promise<void>((wake) => this.#idleWaiters.push(wake));
      }
    },
  };

  /** True when called from inside a transaction() callback (in its async context). */
  protected insideTransaction(): boolean {
    return this.#activeTx !== undefined && this.#txScope.getStore() === this.#activeTx;
  }

  /**
   * Roll back a transaction opened with BEGIN through query() and still open, as closing a connection does
   * (close() calls it first, so that Ominipg's own work waiting for the transaction to end can finish).
   */
  protected async rollbackOpenTransaction(): Promise<void> {
    await this.#session.run(async () => {
      if (!this.#closed && this.driver.txStatus !== "idle") await this.driver.exec("ROLLBACK");
    });
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** The catalog capture uses (synced tables, keys, columns), loaded on first use. */
  protected catalog(): Promise<Catalog> {
    // A failed load (inside an aborted transaction, say) is not kept: the next statement loads again.
    this.#catalog ??= Catalog.load(this.driver, this.#scope).catch((err) => {
      this.#catalog = undefined;
      throw err;
    });
    return this.#catalog;
  }

  /** For calls of the app: refused from the moment close() was called. */
  #assertOpen(): void {
    if (this.closed) throw new ClosedError();
  }

  /**
   * A failed statement outside any transaction that a subclass can repair (e.g. by moving a sequence to its
   * next leased id block): resolve true to run it once more (a single statement; a script's error is thrown once
   * repaired), or to an error to throw instead.
   */
  protected async recover(_err: unknown): Promise<boolean | Error> {
    return false;
  }

  /** After a TRUNCATE ... RESTART IDENTITY of synced tables: a subclass leasing ids points them back at its blocks. */
  protected async restarted(_tables: Step["tables"]): Promise<void> {}

  async #run<T>(sql: string, params: readonly unknown[], rowMode: RowMode): Promise<QueryResult<T>> {
    const turn = pace(); // let timers and signal handlers run during a loop of statements
    if (turn) await turn;
    try {
      return await this.#execute<T>(sql, params, rowMode);
    } catch (err) {
      if (this.driver.txStatus !== "idle") throw err;
      const repair = await this.recover(err);
      if (repair instanceof Error) throw repair;
      // A script may have committed part of its work before it failed (a COMMIT in it): it never runs twice.
      if (!repair || (await this.#planner.plan(sql)).kind === "script") throw err;
      return await this.#execute<T>(sql, params, rowMode);
    } finally {
      if (this.driver.txStatus === "idle") for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  async #execute<T>(sql: string, params: readonly unknown[], rowMode: RowMode): Promise<QueryResult<T>> {
    const plan = await this.#planner.plan(sql);
    if (plan.kind === "script") {
      if (params.length > 0) return this.driver.query<T>(sql, params, { prepare: false, rowMode });
      return plan.rest
        ? this.#runInParts<T>(sql, plan.steps, plan.rest, rowMode)
        : this.#runScript<T>(sql, plan.steps, rowMode);
    }
    return this.#runStep<T>(sql, plan.step, params, rowMode);
  }

  /**
   * A script that changes the schema before more statements: its steps up to the change, then the rest, planned
   * after the change ran (capture must see the table it created, the column it added, the search_path it set). In
   * one transaction, as PostgreSQL runs one script, unless the script begins and ends its own.
   */
  async #runInParts<T>(sql: string, steps: Step[], rest: ScriptRest, rowMode: RowMode): Promise<QueryResult<T>> {
    const own = rest.ownTransaction && this.driver.txStatus === "idle";
    if (own) await this.#execute("BEGIN", [], rowMode);
    try {
      await this.#runScript(sql.slice(0, rest.at), steps, rowMode);
      const result = await this.#execute<T>(sql.slice(rest.at), [], rowMode);
      if (own) await this.#execute("COMMIT", [], rowMode);
      return result;
    } catch (err) {
      if (own) await this.#execute("ROLLBACK", [], rowMode).catch(() => {});
      throw err;
    }
  }

  async #runStep<T>(sql: string, step: Step, params: readonly unknown[], rowMode: RowMode): Promise<QueryResult<T>> {
    if (step.hiddenResults > 0 && params.length === 0) {
      const [first] = await this.driver.exec(step.sql, { rowMode });
      await this.#afterStep(step);
      return first as QueryResult<T>;
    }
    const captured = step.shape !== "as-is";
    let raw: QueryResult<unknown[]>;
    try {
      raw = await this.driver.query<unknown[]>(step.sql, params, {
        prepare: step.prepare,
        rowMode: captured ? "array" : rowMode,
      });
    } catch (err) {
      throw await originalError(this.driver, err, sql, step, params);
    }
    await this.#afterStep(step);
    return (captured ? shapeCaptured(raw, step, rowMode) : raw) as QueryResult<T>;
  }

  async #runScript<T>(sql: string, steps: Step[], rowMode: RowMode): Promise<QueryResult<T>> {
    const plain = steps.every((s) => s.shape === "as-is" && s.hiddenResults === 0 && s.tables.length === 0);
    // One simple-protocol script keeps PostgreSQL's semantics (one implicit transaction for the whole script).
    const text = plain ? sql : steps.map((s) => s.sql).join(";\n");
    const results = await this.driver.exec(text, { rowMode: plain ? rowMode : "array" }).catch((err: unknown) => {
      // Failed after a COMMIT in it, it keeps the DDL before that: the catalog is read again.
      if (steps.some((s) => s.effect === "ddl")) this.#invalidate();
      throw err;
    });
    for (const step of steps) await this.#afterStep(step);
    if (plain) return (results.at(-1) ?? { rows: [], rowCount: 0, fields: [], command: "" }) as QueryResult<T>;
    // The last step's result: after every earlier step's own and hidden ones.
    const lastStep = steps.at(-1);
    const last = results[steps.slice(0, -1).reduce((at, s) => at + 1 + s.hiddenResults, 0)] as
      QueryResult<unknown[]> | undefined;
    if (!last || !lastStep) return { rows: [], rowCount: 0, fields: [], command: "" };
    return shapeCaptured(last, lastStep, rowMode) as QueryResult<T>;
  }

  async #afterStep(step: Step): Promise<void> {
    if (step.restarts) await this.restarted(step.tables);
    if (step.tables.length > 0) this.onCaptured();
    if (step.effect === "ddl") {
      this.#ddlInTransaction = this.driver.txStatus !== "idle";
      this.#invalidate();
    } else if ((step.effect === "rollback" || step.effect === "commit") && this.#ddlInTransaction) {
      // The transaction's DDL is undone (or, for a COMMIT of an aborted transaction, never happened):
      // what was planned or loaded after it may be stale.
      this.#invalidate();
      if (this.driver.txStatus === "idle") this.#ddlInTransaction = false;
    }
  }

  #invalidate(): void {
    this.#planner.invalidate();
    this.#catalog = undefined;
    void this.driver.invalidate();
  }
}
