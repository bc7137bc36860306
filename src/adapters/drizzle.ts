/**
 * Drizzle ORM on Ominipg: every statement Drizzle builds runs through the Ominipg instance's `query()`
 * (or its transaction's), so writes to synced tables are captured and pushed by `sync()`.
 *
 * ```ts
 * import { drizzle } from "ominipg/drizzle";
 * const orm = drizzle(db, { schema });
 * await orm.insert(users).values({ name: "Ada" }).returning();
 * ```
 *
 * Built on drizzle-orm's `pg-proxy` driver (its query path: result mapping, logger, cache), with
 * transactions added: `orm.transaction(fn)` runs `fn` in `db.transaction()`, nested ones use savepoints.
 */
import { createTableRelationsHelpers, DefaultLogger, extractTablesRelationalConfig, sql as rawSql } from "drizzle-orm";
import type {
  DrizzleConfig,
  ExtractTablesWithRelations,
  Logger,
  RelationalSchemaConfig,
  TablesRelationalConfig,
} from "drizzle-orm";
import { PgDialect, type PgTransactionConfig } from "drizzle-orm/pg-core";
import {
  PgProxyTransaction,
  PgRemoteDatabase,
  PgRemoteSession,
  type PgRemoteSessionOptions,
  type RemoteCallback,
} from "drizzle-orm/pg-proxy";
import type { Transaction } from "../client.js";
import type { Field } from "../core/driver.js";
import type { Ominipg } from "../ominipg.js";

/** What the adapter needs of an Ominipg instance. */
export type OminipgClient = Pick<Ominipg, "query" | "transaction">;

/** The Drizzle database `drizzle()` returns; `$client` is the Ominipg instance. */
export type OminipgDrizzleDatabase<TSchema extends Record<string, unknown> = Record<string, never>> =
  PgRemoteDatabase<TSchema> & {
    $client: OminipgClient;
  };

/** A Drizzle transaction on Ominipg (what `orm.transaction(async (tx) => ...)` passes). */
export type OminipgDrizzleTransaction<TSchema extends Record<string, unknown> = Record<string, never>> =
  PgProxyTransaction<TSchema, ExtractTablesWithRelations<TSchema>>;

type Run = Transaction["query"];

/**
 * A Drizzle database whose statements all run through `client.query()`.
 * `config` is Drizzle's own: `schema` (for `orm.query.*`), `logger`, `casing`, `cache`.
 */
export function drizzle<TSchema extends Record<string, unknown> = Record<string, never>>(
  client: OminipgClient,
  config: DrizzleConfig<TSchema> = {},
): OminipgDrizzleDatabase<TSchema> {
  const dialect = new PgDialect(config.casing ? { casing: config.casing } : {});
  const logger: Logger | undefined =
    config.logger === true ? new DefaultLogger() : config.logger === false ? undefined : config.logger;
  let schema: RelationalSchemaConfig<TablesRelationalConfig> | undefined;
  if (config.schema) {
    const tables = extractTablesRelationalConfig(config.schema, createTableRelationsHelpers);
    schema = { fullSchema: config.schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap };
  }
  const options: PgRemoteSessionOptions = {};
  if (logger) options.logger = logger;
  if (config.cache) options.cache = config.cache;
  const session = new OminipgSession(client, client.query.bind(client), dialect, schema, options);
  const db = new PgRemoteDatabase<TSchema>(
    dialect,
    session,
    schema as RelationalSchemaConfig<ExtractTablesWithRelations<TSchema>> | undefined,
  ) as OminipgDrizzleDatabase<TSchema>;
  db.$client = client;
  if (config.cache) {
    // What drizzle's own constructors do: `$cache.invalidate` is the cache's onMutate.
    (db as { $cache: unknown }).$cache = Object.assign(config.cache, { invalidate: config.cache.onMutate });
  }
  return db;
}

class OminipgSession<
  TFullSchema extends Record<string, unknown>,
  TSchema extends TablesRelationalConfig,
> extends PgRemoteSession<TFullSchema, TSchema> {
  readonly #client: OminipgClient;
  readonly #schemaConfig: RelationalSchemaConfig<TSchema> | undefined;
  readonly #options: PgRemoteSessionOptions;

  constructor(
    client: OminipgClient,
    run: Run,
    dialect: PgDialect,
    schema: RelationalSchemaConfig<TSchema> | undefined,
    options: PgRemoteSessionOptions,
  ) {
    super(remoteCallback(run), dialect, schema, options);
    this.#client = client;
    this.#schemaConfig = schema;
    this.#options = options;
  }

  /** One Ominipg transaction: committed when `fn` resolves, rolled back when it throws (`tx.rollback()` throws). */
  override transaction<T>(
    fn: (tx: PgProxyTransaction<TFullSchema, TSchema>) => Promise<T>,
    config?: PgTransactionConfig,
  ): Promise<T> {
    return this.#client.transaction(async (otx) => {
      const session = new OminipgSession<TFullSchema, TSchema>(
        this.#client,
        otx.query,
        this.dialect,
        this.#schemaConfig,
        this.#options,
      );
      const tx = new OminipgTransaction<TFullSchema, TSchema>(this.dialect, session, this.#schemaConfig);
      if (config) await tx.setTransaction(config);
      return fn(tx);
    });
  }
}

class OminipgTransaction<
  TFullSchema extends Record<string, unknown>,
  TSchema extends TablesRelationalConfig,
> extends PgProxyTransaction<TFullSchema, TSchema> {
  readonly #dialect: PgDialect;
  readonly #session: OminipgSession<TFullSchema, TSchema>;

  constructor(
    dialect: PgDialect,
    session: OminipgSession<TFullSchema, TSchema>,
    schema: RelationalSchemaConfig<TSchema> | undefined,
    nestedIndex = 0,
  ) {
    super(dialect, session, schema, nestedIndex);
    this.#dialect = dialect;
    this.#session = session;
  }

  /** A nested transaction: a savepoint, released when `fn` resolves, rolled back to when it throws. */
  override async transaction<T>(fn: (tx: PgProxyTransaction<TFullSchema, TSchema>) => Promise<T>): Promise<T> {
    const savepoint = `sp${this.nestedIndex + 1}`;
    const tx = new OminipgTransaction<TFullSchema, TSchema>(
      this.#dialect,
      this.#session,
      this.schema,
      this.nestedIndex + 1,
    );
    await tx.execute(rawSql.raw(`savepoint ${savepoint}`));
    try {
      const result = await fn(tx);
      await tx.execute(rawSql.raw(`release savepoint ${savepoint}`));
      return result;
    } catch (err) {
      await tx.execute(rawSql.raw(`rollback to savepoint ${savepoint}`));
      throw err;
    }
  }
}

/**
 * pg-proxy's contract: `{ rows }`, as objects for "execute" (raw `db.execute()`, writes without RETURNING),
 * as arrays of values in column order for "all" (selects, RETURNING, relational queries).
 */
function remoteCallback(run: Run): RemoteCallback {
  return async (sql, params, method) => {
    if (method !== "all") return { rows: (await run(sql, params)).rows };
    return { rows: await arrayRows(run, sql, params) };
  };
}

async function arrayRows(run: Run, sql: string, params: unknown[]): Promise<unknown[][]> {
  // Ask for array rows; a client without that option answers with objects, handled below.
  const result = await (run as RunWithRowMode)(sql, params, { rowMode: "array" });
  if (result.rows.length === 0 || Array.isArray(result.rows[0])) return result.rows as unknown[][];
  const names = result.fields.map((f: Field) => f.name);
  const rows = result.rows as Record<string, unknown>[];
  if (new Set(names).size === names.length) return rows.map((row) => names.map((n) => row[n]));
  // Object rows keep one value per name, but Drizzle selects same-named columns from joined tables
  // ("users"."id", "posts"."id"). A read-only SELECT runs again with its columns renamed by position.
  if (result.command === "SELECT" && !WRITES.test(sql)) {
    const aliases = names.map((_, i) => `"c${i}"`).join(", ");
    const renamed = await run(`SELECT * FROM (${sql}) AS "ominipg_row"(${aliases})`, params);
    return (renamed.rows as Record<string, unknown>[]).map((row) => names.map((_, i) => row[`c${i}`]));
  }
  if (result.command === "SELECT") {
    throw new Error(
      `ominipg/drizzle: this query returns several columns named alike (${names.join(", ")}); give them distinct names with .as()`,
    );
  }
  // RETURNING of one table: same-named columns are the same column (the write is done: never throw here).
  return rows.map((row) => names.map((n) => row[n]));
}

/** A data-modifying statement inside a SELECT (a WITH ... INSERT/UPDATE/DELETE/MERGE): never run it twice. */
const WRITES = /\b(?:insert\s+into|delete\s+from|merge\s+into)\b|(?<!\bfor\s+(?:no\s+key\s+)?)\bupdate\b/i;

type RunWithRowMode = (
  sql: string,
  params: readonly unknown[],
  options: { rowMode: "array" },
) => Promise<{ rows: unknown[]; fields: Field[]; command: string }>;
