import { qualified, quoteIdent, quoteLiteral } from "../core/sql.js";
import { QUEUE_ID_SEQUENCE, QUEUE_TABLE } from "./tables.js";

/**
 * The SQL that capture embeds in the user's own statement to log what it changed (so the log row commits and
 * rolls back with the change): the log owns its shape, capture only places it.
 */

/** The expression that takes the next log id (capture takes it per changed row, in the statement's RETURNING). */
export const NEXT_LOG_ID = `nextval(${quoteLiteral(qualified("public", QUEUE_ID_SEQUENCE))}::regclass)`;

/**
 * Log every row change a capturing CTE returned: `cte` names it, its columns `id`, `oldRow`, `newRow` (the
 * log id and the row images as json; op I/U/D follows from which image is null).
 */
export function logRowChangesSql(
  sources: readonly { cte: string; schema: string; table: string }[],
  columns: { id: string; oldRow: string; newRow: string },
): string {
  const { id, oldRow, newRow } = columns;
  const selects = sources.map(
    ({ cte, schema, table }) =>
      `SELECT ${id}, ${quoteLiteral(schema)}, ${quoteLiteral(table)}, ` +
      `CASE WHEN ${oldRow} IS NULL THEN 'I' WHEN ${newRow} IS NULL THEN 'D' ELSE 'U' END, ${oldRow}, ${newRow} FROM ${quoteIdent(cte)}`,
  );
  return `INSERT INTO ${qualified("public", QUEUE_TABLE)} (id, schema_name, table_name, op, old_row, new_row) ${selects.join(" UNION ALL ")}`;
}

/** Log the truncation of tables (op T, no images). */
export function logTruncatesSql(tables: readonly { schema: string; name: string }[]): string {
  const values = tables.map((t) => `(${quoteLiteral(t.schema)}, ${quoteLiteral(t.name)}, 'T')`).join(", ");
  return `INSERT INTO ${qualified("public", QUEUE_TABLE)} (schema_name, table_name, op) VALUES ${values}`;
}
