/**
 * The remote table as Ominipg reads and writes its rows, for the pull and the push alike. A plain remote table with
 * inheritance children (`INHERITS`, which the local side does not sync as its rows) is read `FROM ONLY`, and the
 * push's writes are UPDATE ONLY / DELETE FROM ONLY: `FROM parent` also reads the children's rows, so a local
 * TRUNCATE (pushed as TRUNCATE ONLY, which leaves them) came back with the next pull, a key held by the parent and
 * a child was two rows for one key, and a push's UPDATE or DELETE by key also changed the child's row. A
 * partitioned table is never ONLY: its partitions are its rows (ONLY of it reads none). Read by each pull's snapshot
 * and each sync: a child the remote table gains while clients run is seen by the next.
 */
import { quoteLiteral } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import type { Sql } from "./connection.js";

/** The tables (their `sql` names) to read and write ONLY on the remote. */
export type OnlyTables = ReadonlySet<string>;

/**
 * SQL: whether the table `rel` (a regclass expression) is read and written ONLY: not partitioned, with inheritance
 * children. Also one field of the pull's feed state query (pull/feed-sql.ts), which saves the pull a round trip.
 */
export function onlySql(rel: string): string {
  // pg_inherits first (AND stops there): most tables have no row there, and nothing else is read for them.
  return (
    `EXISTS (SELECT 1 FROM pg_inherits AS i WHERE i.inhparent = ${rel}) ` +
    `AND NOT EXISTS (SELECT 1 FROM pg_partitioned_table AS p WHERE p.partrelid = ${rel})`
  );
}

/** Which of the tables the remote holds as non-partitioned tables with inheritance children: one round trip. */
export async function remoteOnlyTables(tx: Pick<Sql, "unsafe">, tables: readonly TableInfo[]): Promise<OnlyTables> {
  // A literal, no parameter: a statement with parameters costs postgres.js two round trips.
  const names = quoteLiteral(JSON.stringify(tables.map((t) => t.sql)));
  const rows = await tx.unsafe<{ name: string }[]>(
    `SELECT x.name FROM json_array_elements_text(${names}::json) AS x(name) WHERE ${onlySql("to_regclass(x.name)")}`,
  );
  return new Set(rows.map((r) => r.name));
}

/** The table's rows on the remote: the target of FROM, UPDATE and DELETE FROM (INSERT reaches the table alone). */
export function remoteTarget(t: TableInfo, only: OnlyTables): string {
  return only.has(t.sql) ? `ONLY ${t.sql}` : t.sql;
}
