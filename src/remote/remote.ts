import {
  FEED_DDL,
  FEED_OBJECTS,
  FEED_TABLES_STATE_SQL,
  LEDGER_DDL,
  LEDGER_OBJECTS,
  LEDGER_STATE_SQL,
  LEDGER_VERSION,
  drainerGrants,
  slashedRole,
  tenantGrants,
} from "./schema.js";
import { SETUP_LOCK, newerSetUp } from "./versions.js";
import { SchemaError, SyncError, type SyncErrorCode } from "../core/errors.js";
import { errorText, openRemote, transaction, type Sql } from "./connection.js";
import { redact, secretsOf } from "../core/url.js";
import { isRetryable, remoteFailure, withRetry, type RetryPolicy } from "./retry.js";
import { isMissingRelationOrFunction } from "../core/sqlstate.js";

/**
 * The remote server: a lazily connecting postgres.js pool, and the one-time set-up done at the first
 * successful contact (schemaSQL, the ledger table). Nothing here runs at connect().
 */
export class Remote {
  readonly #sql: Sql;
  #ready: Promise<void> | undefined;
  #secrets: string[];
  /** Set when close() stopped the work in flight (stopAfter()): how long it had waited. */
  #stoppedAfterMs: number | undefined;
  /** The statement that takes on this client's identity in a transaction; undefined: the login role as it is. */
  readonly #become: { text: string; params: string[] } | undefined;

  constructor(
    readonly url: string,
    private readonly schemaSQL: readonly string[],
    private readonly applySchema: boolean,
    poolSize: number,
    private readonly retry: RetryPolicy,
    identity: RemoteIdentity = {},
  ) {
    this.#sql = openRemote(url, { max: poolSize, prepare: false });
    this.#secrets = secretsOf(url, process.env);
    this.#become = identityStatement(identity);
  }

  /**
   * Run one unit of remote work as this client's identity: with a role or claims, inside a transaction that
   * sets them first (SET LOCAL: they end with it, so a pooler in transaction mode may hand the connection to
   * anyone next); without, directly on the pool.
   */
  session<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return this.#become ? this.transaction(fn) : fn(this.#sql);
  }

  /**
   * Remote work as the login role itself, not the client's identity: the change feed's drainer (remote/feed.ts),
   * deployment work like the set-up, which needs the login role's own attributes (REPLICATION).
   */
  asLogin<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return fn(this.#sql);
  }

  /** A remote transaction (connection.ts's safe one) as this client's identity. */
  transaction<T>(
    fn: (sql: Sql) => Promise<T>,
    mode: "" | "ISOLATION LEVEL REPEATABLE READ READ ONLY" = "",
  ): Promise<T> {
    const become = this.#become;
    return transaction(
      this.#sql,
      async (tx) => {
        if (become) await tx.unsafe(become.text, become.params);
        return fn(tx);
      },
      mode,
    );
  }

  /** Set up the remote side once; a failed attempt is retried at the next call. */
  ensureReady(): Promise<void> {
    this.#ready ??= this.#setup()
      .then(() => this.#checkRole())
      .catch((err) => {
        this.#ready = undefined;
        throw err;
      });
    return this.#ready;
  }

  /** The identity's role may not hold a "/": its identity would pass for another role's with a claims sub. */
  async #checkRole(): Promise<void> {
    const [row] = await this.transaction((tx) => tx.unsafe<{ role: string }[]>(`SELECT current_user::text AS role`));
    if (row?.role.includes("/")) throw slashedRole(row.role);
  }

  /** A message safe to show: the remote URL's password is never in it. */
  redact(text: string): string {
    return redact(text, this.#secrets);
  }

  /** A remote failure's message, safe to show (errorText, redacted). */
  describe(err: unknown): string {
    return this.redact(errorText(err));
  }

  /** Wrap a failure of a remote operation as a SyncError with a redacted message. */
  error(code: SyncErrorCode, what: string, cause: unknown): SyncError {
    if (this.#stoppedAfterMs !== undefined)
      return new SyncError(
        code,
        `${this.redact(what)}: stopped by close() after waiting ${this.#stoppedAfterMs} ms (sync.closeTimeoutMs)`,
        { cause, retryable: true },
      );
    // Ominipg's own remote objects gone (an admin dropped them, the database was restored): set up again next time.
    if (ownObjectMissing(cause)) this.#ready = undefined;
    return remoteFailure(code, what, cause, (text) => this.redact(text));
  }

  /** Run a remote step under the retry policy (remote/retry.ts); its final failure as `error(code, what, ...)`. */
  async retrying<T>(code: SyncErrorCode, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(this.retry, fn, () => this.#stoppedAfterMs !== undefined);
    } catch (err) {
      throw this.error(code, what, err);
    }
  }

  /**
   * Wait for `work` (remote work in flight when close() was called) for at most `ms`; past it, end the
   * connections under it (a remote transaction cut off rolls back; one whose COMMIT was sent, or a batch's single
   * statement, which the server runs to its end, is found in the ledger by the next push: ledger.ts, otherClaim),
   * try nothing again, and wait for the work to fail.
   */
  async stopAfter(work: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)));
    if (!(await Promise.race([work.then(() => false), late]).finally(() => clearTimeout(timer)))) return;
    this.#stoppedAfterMs = ms;
    await this.#sql.end({ timeout: 0 });
    await work;
  }

  /**
   * Called once no sync is in flight, so no query of ours is left to wait for: close at once. (Waiting would
   * not be harmless: postgres.js's end() never settles for a connection that lost its socket under a query,
   * so each close after a network failure took the whole timeout.)
   */
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 0 });
  }

  /**
   * One transaction that first takes a transaction-level advisory lock: clients meeting a fresh server at the
   * same moment set it up one after the other (two concurrent CREATE TABLE IF NOT EXISTS of one table can fail
   * on the catalog's unique index), and the lock ends with the transaction (PgBouncer-safe).
   */
  async #setup(): Promise<void> {
    // As the login role: set-up is the deployment's, not a tenant identity's.
    await transaction(this.#sql, async (tx) => {
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${SETUP_LOCK})`);
      if (this.applySchema) {
        for (let i = 0; i < this.schemaSQL.length; i++) {
          try {
            await tx.unsafe(this.schemaSQL[i]!).simple();
          } catch (err) {
            const wrapped = new SchemaError(i, "remote", this.schemaSQL[i]!, err);
            wrapped.message = this.redact(wrapped.message);
            throw isRetryable(err) ? err : wrapped;
          }
        }
      }
      // Set up (or upgraded in place) only where needed, and only by a role that may: a tenant role with the
      // documented grants uses a ledger its administrator set up (`ominipg setup`), and needs no CREATE.
      const [state] =
        await tx.unsafe<{ found: boolean; version: number; owns: boolean; may_create: boolean }[]>(LEDGER_STATE_SQL);
      // A newer Ominipg's ledger too is used as it is: setting it up as this version knows it would undo it.
      if (state && state.version >= LEDGER_VERSION) return;
      if (state && (state.found ? state.owns : state.may_create)) {
        await tx.unsafe(LEDGER_DDL).simple();
        return;
      }
      throw new SyncError(
        "REMOTE_SETUP_FAILED",
        `${LEDGER_OBJECTS.label} is ${state?.found ? "from an older version" : "missing"} and this role may not ${state?.found ? "upgrade" : "create"} it: run \`ominipg setup <url>\` once as its owner (or a role that may create tables in schema public); see docs/SECURITY.md`,
        { retryable: false },
      );
    });
  }
}

/**
 * `ominipg setup`: Ominipg's remote objects (the ledger, the change feed's tables) set up (or upgraded in place)
 * by a role that owns them or may create them, the least privileges each tenant role needs granted, and what a
 * drainer role needs (`drainers`); one transaction under the set-up lock.
 */
export async function setUpRemote(
  sql: Sql,
  grantTo: readonly string[],
  drainers: readonly string[] = [],
): Promise<void> {
  await transaction(sql, async (tx) => {
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${SETUP_LOCK})`);
    // Objects a newer Ominipg set up are that version's to change: refused before anything is.
    for (const [stateSql, objects] of [
      [LEDGER_STATE_SQL, LEDGER_OBJECTS],
      [FEED_TABLES_STATE_SQL, FEED_OBJECTS],
    ] as const) {
      const [s] = await tx.unsafe<{ version: number }[]>(stateSql);
      if (s && s.version > objects.version) throw newerSetUp(objects, s.version);
    }
    await tx.unsafe(LEDGER_DDL).simple();
    await tx.unsafe(FEED_DDL).simple();
    for (const role of grantTo) await tx.unsafe(tenantGrants(role)).simple();
    for (const role of drainers) await tx.unsafe(drainerGrants(role)).simple();
  });
}

/**
 * Who a client acts as on the remote (docs/SECURITY.md): a role its login role may become (SET ROLE), and
 * JWT-style claims for policies that read `request.jwt.claims` (the Supabase / PostgREST convention).
 */
export interface RemoteIdentity {
  role?: string | undefined;
  claims?: Record<string, unknown> | undefined;
}

function identityStatement(identity: RemoteIdentity): { text: string; params: string[] } | undefined {
  const sets: string[] = [];
  const params: string[] = [];
  if (identity.role !== undefined) {
    params.push(identity.role);
    sets.push(`set_config('role', $${params.length}, true)`);
  }
  if (identity.claims !== undefined) {
    params.push(JSON.stringify(identity.claims));
    sets.push(`set_config('request.jwt.claims', $${params.length}, true)`);
  }
  return sets.length ? { text: `SELECT ${sets.join(", ")}`, params } : undefined;
}

function ownObjectMissing(err: unknown): boolean {
  return isMissingRelationOrFunction(err) && /\b_ominipg_/.test((err as Error).message);
}
