import { qualified, quoteIdent, quoteLiteral } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { QUEUE_ID_SEQUENCE, QUEUE_TABLE } from "./tables.js";

/**
 * The SQL that capture embeds in the user's own statement to log what it changed (so the log row commits and
 * rolls back with the change): the log owns its shape, capture only places it.
 */

/** The expression that takes the next log id (capture takes it per changed row, in the statement's RETURNING). */
export const NEXT_LOG_ID = `nextval(${quoteLiteral(qualified("public", QUEUE_ID_SEQUENCE))}::regclass)`;

/**
 * The json images of a changed row that capture returns in the statement's RETURNING, before (`old`) and after
 * (`new`): null where there is no row. Inserts and deletes log whole rows. A row an UPDATE (or ON CONFLICT DO
 * UPDATE, or MERGE's UPDATE) changes logs only the columns it assigns, plus the table's `logged` ones (its key
 * and what the push's ordering checks), in both images: what it did not assign is the same before and after,
 * and the local row still holds it when it is pushed, so a wide row's untouched columns (a TOASTed document)
 * are not copied. Both are `to_json` of a row (the table's, or one of just those columns), so both forms split
 * alike (core/image.ts). `updated`: the columns the statement assigns; undefined when it updates no row.
 * `mixed`: the statement may also insert or delete rows (ON CONFLICT, MERGE), which get whole images.
 */
export function rowImagesSql(
  table: TableInfo,
  aliases: { old: string; new: string },
  updated: ReadonlySet<string> | undefined,
  mixed: boolean,
): { old: string; new: string } {
  const whole = (alias: string) => rowImageSql(table, alias);
  const logged = table.logged;
  if (!updated || !logged || table.primaryKey.some((c) => updated.has(c)))
    return { old: whole(aliases.old), new: whole(aliases.new) };
  // Table order, so images of one statement shape share their column list (push/shape.ts: writableIn).
  const columns = table.columns.filter((c) => logged.includes(c.name) || updated.has(c.name)).map((c) => c.name);
  // A row of just these columns, rendered as to_json renders a row (the same text, column for column), without
  // the text of an assembled object being parsed again by a cast to json (~5-8 µs per ~2 KB image).
  const part = (alias: string) => columnsImage(table, alias, columns);
  if (!mixed) return { old: part(aliases.old), new: part(aliases.new) };
  const either = (self: string, other: string) =>
    `CASE WHEN ${missing(table, self)} THEN NULL WHEN ${missing(table, other)} THEN ${whole(self)} ELSE ${part(self)} END`;
  return { old: either(aliases.old, aliases.new), new: either(aliases.new, aliases.old) };
}

/**
 * The whole row `alias` of `table` as capture logs it (null where there is no row): also how a local row read
 * later is made an image of the same form (push/complete.ts).
 */
export function rowImageSql(table: TableInfo, alias: string): string {
  // to_json of a row that is not there (an INSERT's old one) is null; a row built of its columns would not be.
  return nestedColumns(table).size === 0
    ? `to_json(${quoteIdent(alias)}.*)`
    : `CASE WHEN ${missing(table, alias)} THEN NULL ELSE ${columnsImage(
        table,
        alias,
        table.columns.map((c) => c.name),
      )} END`;
}

function missing(table: TableInfo, alias: string): string {
  return `${quoteIdent(alias)}.${quoteIdent(table.primaryKey[0]!)} IS NULL`;
}

/** Arrays, composites and domains over them, by name: their type. */
function nestedColumns(table: TableInfo): Map<string, string> {
  return new Map(table.columns.filter((c) => c.jsonValue === "nested").map((c) => [c.name, c.type]));
}

/**
 * `columns` of the row `alias` as a json object. An array whose lower bounds are not all 1 ('[0:2]={0,10,20}'), or
 * a composite or a domain holding one, goes in as its text, which the push reads back with the type's input
 * function: to_json would drop the bounds. Only tables with such columns pay for it: an array's dimensions are
 * asked, the others' text is looked at.
 */
function columnsImage(table: TableInfo, alias: string, columns: readonly string[]): string {
  const nested = nestedColumns(table);
  const values = columns.map((c) => {
    const v = `${quoteIdent(alias)}.${quoteIdent(c)}`;
    const type = nested.get(c);
    if (type === undefined) return `${v} AS ${quoteIdent(c)}`;
    // An array of json or jsonb always: to_json rewrites a json element's text and makes a JSON null one NULL.
    if (/^jsonb?\[/.test(type)) return `to_json(${v}::text) AS ${quoteIdent(c)}`;
    const plain = type.endsWith("]")
      ? `array_dims(${v}) ~ E'^(\\\\[1:[0-9]+\\\\])*$' IS NOT FALSE`
      : `${v}::text !~ E'\\\\[-?[0-9]+:-?[0-9]+\\\\](\\\\[-?[0-9]+:-?[0-9]+\\\\])*=' IS NOT FALSE`;
    return `CASE WHEN ${plain} THEN to_json(${v}) ELSE to_json(${v}::text) END AS ${quoteIdent(c)}`;
  });
  return `(SELECT to_json(ominipg_r) FROM (SELECT ${values.join(", ")}) AS ominipg_r)`;
}

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
