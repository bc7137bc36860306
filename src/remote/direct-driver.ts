import type { Driver, Field, QueryResult, RowMode, TxStatus } from "../core/driver.js";
import { commandOf } from "../core/driver.js";
import { openRemote, type Sql } from "./connection.js";

type PgResult = unknown[] & { command: string; count: number | null; columns?: { name: string; type: number }[] };

/**
 * Direct mode: statements go straight to a PostgreSQL server through one postgres.js connection,
 * so BEGIN/COMMIT and session state behave as on one PostgreSQL connection.
 */
export class DirectDriver implements Driver {
  #sql: Sql;
  #status: TxStatus = "idle";

  constructor(url: string) {
    this.#sql = openRemote(url, { max: 1, prepare: true, fetchTypes: true }); // arrays come back as arrays
  }

  get txStatus(): TxStatus {
    return this.#status;
  }

  async query<T>(
    sql: string,
    params: readonly unknown[] = [],
    options: { rowMode?: RowMode } = {},
  ): Promise<QueryResult<T>> {
    const pending = this.#sql.unsafe(sql, params as Parameters<Sql["unsafe"]>[1]);
    const result = (await this.#track(options.rowMode === "array" ? pending.values() : pending)) as unknown as PgResult;
    return this.#toResult<T>(result);
  }

  async raw(sql: string, params: readonly unknown[] = []): Promise<(Uint8Array | null)[][]> {
    return (await this.#track(
      this.#sql.unsafe(sql, params as Parameters<Sql["unsafe"]>[1]).raw(),
    )) as unknown as (Uint8Array | null)[][];
  }

  async exec(sql: string, options: { rowMode?: RowMode } = {}): Promise<QueryResult[]> {
    const pending = this.#sql.unsafe(sql).simple();
    const out = (await this.#track(options.rowMode === "array" ? pending.values() : pending)) as unknown as
      PgResult | PgResult[];
    // postgres.js returns one Result for a one-statement script and an array of Results otherwise.
    const list =
      Array.isArray(out[0]) && (out as PgResult[]).every((r) => Array.isArray(r) && "command" in r)
        ? (out as PgResult[])
        : [out as PgResult];
    return list.map((r) => this.#toResult(r));
  }

  async describe(sql: string): Promise<Field[]> {
    const d = (await this.#sql.unsafe(sql).describe()) as unknown as { columns?: { name: string; type: number }[] };
    return (d.columns ?? []).map((c) => ({ name: c.name, dataTypeID: c.type }));
  }

  /** postgres.js re-prepares statements whose plans changed by itself. */
  async invalidate(): Promise<void> {}

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }

  async #track<R>(pending: Promise<R>): Promise<R> {
    try {
      return await pending;
    } catch (err) {
      if (this.#status === "transaction") this.#status = "failed";
      throw err;
    }
  }

  #toResult<T>(r: PgResult): QueryResult<T> {
    const command = r.command ?? "";
    if (command === "BEGIN" || command === "START TRANSACTION" || command === "SAVEPOINT") {
      if (this.#status === "idle") this.#status = "transaction";
    } else if (command === "COMMIT" || command === "ROLLBACK") {
      this.#status = "idle";
    } else if (command === "ROLLBACK TO" || command === "RELEASE") {
      if (this.#status === "failed") this.#status = "transaction";
    }
    const fields: Field[] = (r.columns ?? []).map((c) => ({ name: c.name, dataTypeID: c.type }));
    const rows = [...r] as T[];
    return { rows, fields, command: commandOf(command), rowCount: command === "SELECT" ? rows.length : (r.count ?? 0) };
  }
}
