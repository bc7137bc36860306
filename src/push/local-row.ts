import type { Driver } from "../core/driver.js";
import type { Image } from "../core/image.js";
import { changedColumns } from "../core/conflict-rule.js";
import { columnList, onConflict } from "../core/sql.js";
import { overridingClause, type TableInfo } from "../core/table.js";
import { assignments, encodeImage, fields } from "../core/json-text.js";

/**
 * Take the local row from `from` (the row as the change left it) to `to`: only the columns that differ, so a
 * change made locally since then to other columns stays (it is queued, and pushed next). An inserted row goes
 * over a local row with its key unless `overwrite` is false.
 */
export async function setLocalRow(
  d: Driver,
  table: TableInfo,
  from: Image | null,
  to: Image | null,
  overwrite = true,
): Promise<void> {
  const t = table.sql;
  const where = keyIs(table, "$1");
  if (from !== null && to === null) {
    await d.query(`DELETE FROM ${t} AS ominipg_t WHERE ${where}`, [encodeImage(table, from)], { prepare: false });
  } else if (from === null && to !== null) {
    const columns = table.writable;
    const set = overwrite ? table.updatable.filter((c) => !table.primaryKey.includes(c)) : [];
    await d.query(
      `INSERT INTO ${t} (${columnList(columns)})${overridingClause(table, columns)} SELECT ${columnList(columns)} ` +
        `FROM (SELECT ${fields(table, "ominipg_p")} FROM json_populate_record(NULL::${t}, $1::text::json) AS ominipg_p) AS ominipg_r ` +
        onConflict(table.primaryKey, set),
      [encodeImage(table, to)],
      { prepare: false },
    );
  } else if (from !== null && to !== null) {
    const set = changedColumns(from, to).filter((c) => table.updatable.includes(c));
    if (set.length === 0) return;
    await d.query(
      `UPDATE ${t} AS ominipg_t SET ${assignments(table, set, "ominipg_r.r")} ` +
        `FROM (SELECT json_populate_record(NULL::${t}, $2::text::json) AS r) AS ominipg_r WHERE ${where}`,
      [encodeImage(table, from), encodeImage(table, to)],
      { prepare: false },
    );
  }
}

/** SQL: the row `ominipg_t` has the key of the image in parameter `param`. */
export function keyIs(table: TableInfo, param: string): string {
  const key = `(SELECT ${columnList(table.primaryKey)} FROM json_populate_record(NULL::${table.sql}, ${param}::text::json))`;
  return `(${columnList(table.primaryKey, "ominipg_t")}) = ${key}`;
}

/** The local row under `row`'s key as jsonb text (its generated columns computed), or null where there is none. */
export async function rowNow(d: Driver, table: TableInfo, row: Image): Promise<string | null> {
  const { rows } = await d.query<{ r: string }>(
    `SELECT to_jsonb(ominipg_t)::text AS r FROM ${table.sql} AS ominipg_t WHERE ${keyIs(table, "$1")}`,
    [encodeImage(table, row)],
    { prepare: false },
  );
  return rows[0]?.r ?? null;
}
