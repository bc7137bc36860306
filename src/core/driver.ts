/** What every local driver returns and offers; the client and capture layer speak only this. */

export interface Field {
  name: string;
  dataTypeID: number;
}

export interface QueryResult<T = Record<string, unknown>> {
  rows: T[];
  /** The count in PostgreSQL's command tag: rows affected (INSERT/UPDATE/DELETE/MERGE/COPY), returned (SELECT) or created (SELECT INTO); else 0. */
  rowCount: number;
  fields: Field[];
  /** PostgreSQL's command tag word, as PGlite reports it: "SELECT", "INSERT", "CREATE", ... */
  command: string;
}

export type RowMode = "object" | "array";
export type TxStatus = "idle" | "transaction" | "failed";

export interface Driver {
  /** Run exactly one statement with parameters (extended protocol). `prepare` caches it as a named statement. */
  query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: { rowMode?: RowMode; prepare?: boolean },
  ): Promise<QueryResult<T>>;
  /**
   * Run exactly one statement, unprepared, and return its rows with each column as its text bytes (UTF-8),
   * undecoded: for large text results the caller converts itself (postgres.js's `.raw()`).
   */
  raw(sql: string, params?: readonly unknown[]): Promise<(Uint8Array | null)[][]>;
  /**
   * Run one `COPY ... FROM STDIN` with `data` (COPY text) as its input; returns the rows it copied. Only the
   * local database offers it (the pull's initial copy).
   */
  copyFrom?(sql: string, data: Uint8Array): Promise<number>;
  /** Run a script of statements without parameters (simple protocol); one result per statement. */
  exec(sql: string, options?: { rowMode?: RowMode }): Promise<QueryResult[]>;
  /** The result columns of a statement, without running it (parse and describe only). */
  describe(sql: string): Promise<Field[]>;
  /** Forget every cached prepared statement (after DDL, when plans may change their result types). */
  invalidate(): Promise<void>;
  /** The connection's transaction state after the last statement. */
  readonly txStatus: TxStatus;
  close(): Promise<void>;
}

/** rowCount from a command tag: "INSERT 0 5" -> 5, "UPDATE 3" -> 3, "CREATE TABLE" -> 0. */
export function rowCountOf(tag: string): number {
  const m = /(\d+)$/.exec(tag);
  return m ? Number(m[1]) : 0;
}

/** The command word of a tag, as PGlite reports it: "INSERT 0 5" -> "INSERT", "CREATE TABLE" -> "CREATE". */
export function commandOf(tag: string): string {
  return tag.split(" ")[0] ?? "";
}

/** Build object rows from array rows the way PostgreSQL clients do: a later duplicate name wins. */
export function toObjectRows(fields: readonly Field[], rows: readonly unknown[][]): Record<string, unknown>[] {
  return rows.map((row) => {
    const obj: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) obj[fields[i]!.name] = row[i];
    return obj;
  });
}
