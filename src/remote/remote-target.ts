/**
 * The remote table as Ominipg reads and writes its rows, for the pull and the push alike: `ONLY <table>` (FROM ONLY,
 * UPDATE ONLY, DELETE FROM ONLY), but for a table partitioned on the remote, whose partitions are its rows (ONLY of
 * it reads and writes none). A synced table has no local inheritance children (capture/inheritance.ts), so those
 * only the remote has (`INHERITS`) are not its rows: `FROM parent` read them too, so a local TRUNCATE (pushed as
 * TRUNCATE ONLY, which leaves them) came back with the next pull, a key held by the table and a child was two rows
 * for one key, and a push's UPDATE or DELETE by key also changed the child's row. ONLY always, rather than where
 * the remote table has children: a child the remote table gains at any time (while a sync runs, say) changes
 * nothing then; whether a table is partitioned changes only with the table made again. Read by each pull's
 * snapshot and each sync.
 */
import { quoteLiteral } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import type { Sql } from "./connection.js";

/** The tables (their `sql` names) the remote holds as partitioned tables: read and written whole. */
export type PartitionedTables = ReadonlySet<string>;

/** SQL: whether the table `rel` (a regclass expression) is partitioned; also a field of the pull's feed state query. */
export function partitionedSql(rel: string): string {
  return `EXISTS (SELECT 1 FROM pg_partitioned_table AS p WHERE p.partrelid = ${rel})`;
}

/**
 * SQL: which of the tables the remote holds as partitioned tables, as a JSON array of their names (a literal list, no
 * parameter: a statement with parameters costs postgres.js two round trips), for partitionedOf; NULL for none.
 */
export function partitionedListSql(tables: readonly TableInfo[]): string {
  const names = quoteLiteral(JSON.stringify(tables.map((t) => t.sql)));
  return (
    `(SELECT json_agg(x.name) FROM json_array_elements_text(${names}::json) AS x(name) ` +
    `WHERE ${partitionedSql("to_regclass(x.name)")})`
  );
}

/** The tables partitionedListSql's text names. */
export function partitionedOf(text: string | null): PartitionedTables {
  return new Set(text === null ? [] : (JSON.parse(text) as string[]));
}

/** Which of the tables the remote holds as partitioned tables: one round trip. */
export async function remotePartitioned(
  tx: Pick<Sql, "unsafe">,
  tables: readonly TableInfo[],
): Promise<PartitionedTables> {
  const [row] = await tx.unsafe<{ names: string | null }[]>(`SELECT ${partitionedListSql(tables)}::text AS names`);
  return partitionedOf(row?.names ?? null);
}

/** The table's rows on the remote: the target of FROM, UPDATE and DELETE FROM (INSERT reaches the table alone). */
export function remoteTarget(t: TableInfo, partitioned: PartitionedTables): string {
  return partitioned.has(t.sql) ? t.sql : `ONLY ${t.sql}`;
}
