/**
 * A Kysely dialect for Ominipg: every statement Kysely compiles runs through the Ominipg instance's
 * `query()` (or its transaction's), so writes to synced tables are captured and pushed by `sync()`.
 *
 * ```ts
 * import { Kysely } from "kysely";
 * import { OminipgDialect } from "ominipg/kysely";
 * const k = new Kysely<Database>({ dialect: new OminipgDialect({ client: db }) });
 * ```
 *
 * A Kysely transaction is an Ominipg `transaction()`: it holds the single local connection from BEGIN to
 * COMMIT/ROLLBACK, so two transactions never interleave and no statement from outside slips into one
 * (other queries wait for it to end). Inside `k.transaction().execute(async (trx) => ...)`, query through
 * `trx`: a query through `k` or `db` there waits for the transaction, which waits for the callback.
 */
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";
import type { Transaction } from "../client.js";
import type { Ominipg } from "../ominipg.js";

/** What the dialect needs of an Ominipg instance. */
export type OminipgClient = Pick<Ominipg, "query" | "transaction">;

export interface OminipgDialectConfig {
  /** The Ominipg instance every statement runs through. Kysely's `destroy()` leaves it open: close it yourself. */
  client: OminipgClient;
}

export class OminipgDialect implements Dialect {
  readonly #config: OminipgDialectConfig;

  constructor(config: OminipgDialectConfig) {
    if (!config || typeof config.client?.query !== "function" || typeof config.client.transaction !== "function") {
      throw new TypeError("OminipgDialect needs { client: <an Ominipg instance> }");
    }
    this.#config = { ...config };
  }

  createDriver(): Driver {
    return new OminipgDriver(this.#config.client);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's Dialect interface declares Kysely<any>
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

export class OminipgDriver implements Driver {
  readonly #client: OminipgClient;

  constructor(client: OminipgClient) {
    this.#client = client;
  }

  async init(): Promise<void> {}

  /** A fresh connection per acquisition: its statements go to `client.query()` until a transaction begins on it. */
  async acquireConnection(): Promise<DatabaseConnection> {
    return new OminipgConnection(this.#client);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const conn = asOminipg(connection);
    await conn.begin();
    if (settings.isolationLevel || settings.accessMode) {
      let sql = "SET TRANSACTION";
      if (settings.isolationLevel) sql += ` ISOLATION LEVEL ${settings.isolationLevel.toUpperCase()}`;
      if (settings.accessMode) sql += ` ${settings.accessMode.toUpperCase()}`;
      try {
        await conn.executeQuery(CompiledQuery.raw(sql));
      } catch (err) {
        await conn.end(false).catch(() => {});
        throw err;
      }
    }
  }

  /** Commits; rejects (the transaction rolled back) when a statement in it had failed. */
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await asOminipg(connection).end(true);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await asOminipg(connection).end(false);
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`SAVEPOINT ${quoteIdent(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`ROLLBACK TO SAVEPOINT ${quoteIdent(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`RELEASE SAVEPOINT ${quoteIdent(name)}`));
  }

  /** A connection given back with its transaction still open (never by Kysely itself) rolls it back. */
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await asOminipg(connection).end(false);
  }

  /** Leaves the Ominipg instance open: whoever connected it closes it. */
  async destroy(): Promise<void> {}
}

const ROLLBACK = Symbol("rollback");

/** An Ominipg transaction held open between beginTransaction and commit/rollback. */
interface OpenTransaction {
  query: Transaction["query"];
  end(commit: boolean): Promise<void>;
}

class OminipgConnection implements DatabaseConnection {
  readonly #client: OminipgClient;
  #tx: OpenTransaction | undefined;

  constructor(client: OminipgClient) {
    this.#client = client;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const params = compiledQuery.parameters as readonly unknown[];
    const result = this.#tx
      ? await this.#tx.query<R & Record<string, unknown>>(compiledQuery.sql, params)
      : await this.#client.query<R & Record<string, unknown>>(compiledQuery.sql, params);
    const { command, rowCount } = result;
    const rows = result.rows as R[];
    if (command === "INSERT" || command === "UPDATE" || command === "DELETE" || command === "MERGE") {
      return { rows, numAffectedRows: BigInt(rowCount) };
    }
    return { rows };
  }

  /** The whole result is read, then handed out `chunkSize` rows at a time (there are no server-side cursors). */
  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new Error("chunkSize must be a positive integer");
    const { rows } = await this.executeQuery<R>(compiledQuery);
    for (let i = 0; i < rows.length; i += chunkSize) yield { rows: rows.slice(i, i + chunkSize) };
  }

  /** Open an Ominipg transaction (waiting for the one in progress, if any) and route this connection into it. */
  async begin(): Promise<void> {
    if (this.#tx) throw new Error("ominipg/kysely: this connection is already in a transaction");
    this.#tx = await openTransaction(this.#client);
  }

  /** Commit or roll back the open transaction, if any. */
  async end(commit: boolean): Promise<void> {
    const tx = this.#tx;
    this.#tx = undefined;
    await tx?.end(commit);
  }
}

/**
 * Start `client.transaction()` and resolve once its callback runs; the callback then waits for `end()`,
 * which resolves it (commit) or makes it throw (rollback), and reports how the transaction ended.
 */
function openTransaction(client: OminipgClient): Promise<OpenTransaction> {
  return new Promise<OpenTransaction>((opened, failed) => {
    let decide!: (commit: boolean) => void;
    const decision = new Promise<boolean>((resolve) => (decide = resolve));
    let started = false;
    const done = client.transaction(async (tx) => {
      started = true;
      opened({
        query: tx.query,
        end: async (commit) => {
          decide(commit);
          try {
            await done;
          } catch (err) {
            if (err !== ROLLBACK) throw err;
          }
        },
      });
      if (!(await decision)) throw ROLLBACK;
    });
    done.catch((err: unknown) => {
      if (!started) failed(err);
    });
  });
}

function asOminipg(connection: DatabaseConnection): OminipgConnection {
  if (!(connection instanceof OminipgConnection))
    throw new TypeError("ominipg/kysely: not a connection of this driver");
  return connection;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
