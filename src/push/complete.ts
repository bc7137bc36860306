import type { Driver } from "../core/driver.js";
import { splitImage, type Image } from "../core/image.js";
import { encodeImage } from "../core/json-text.js";
import { columnsEqual } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { keyImage, type RowOp } from "./coalesce.js";

/**
 * An update's log images may hold only the columns it assigned (log/capture.ts); the push writes just those.
 * Where whole rows are needed, a conflict (strategies and resolvers decide on rows, and "overwrite" may
 * recreate a remote row), the rest comes from the local row: the columns no pending change touched are the
 * same in the row before the change, the row after it, and the local row now.
 */

/** Whether the op's images lack columns of the row (an update that logged only what it assigned). */
export function isPartial(op: RowOp): boolean {
  return op.kind !== "delete" && op.table.writable.some((c) => !op.image.has(c));
}

/**
 * The local rows of the partial ops (by their key after the change), as `to_json` images: undefined for an op
 * whose images are whole, null where the local row is gone (a later change deleted it).
 */
export async function localRowsOf(d: Driver, ops: readonly RowOp[]): Promise<(Image | null | undefined)[]> {
  const out: (Image | null | undefined)[] = ops.map(() => undefined);
  const byTable = new Map<TableInfo, number[]>();
  ops.forEach((op, i) => {
    if (!isPartial(op)) return;
    out[i] = null;
    const list = byTable.get(op.table) ?? [];
    list.push(i);
    byTable.set(op.table, list);
  });
  for (const [t, indexes] of byTable) {
    const keys = indexes.map((i) => {
      const op = ops[i]!;
      return encodeImage(t, keyImage(t, op.kind === "delete" ? op.key : op.image));
    });
    const { rows } = await d.query<{ i: string; row: string }>(
      `SELECT e.i::text AS i, to_json(ominipg_t.*)::text AS row FROM json_array_elements($1::text::json) WITH ORDINALITY AS e(v, i) ` +
        `JOIN ${t.sql} AS ominipg_t ON ${columnsEqual(t.primaryKey, "ominipg_t", `(json_populate_record(NULL::${t.sql}, e.v))`)}`,
      [`[${keys.join(",")}]`],
      { prepare: false },
    );
    for (const r of rows) out[indexes[Number(r.i) - 1]!] = splitImage(r.row, true);
  }
  return out;
}

/** A partial image made whole from the local row: its own columns over the row's. */
export function wholeImage(row: Image, partial: Image): Image {
  return new Map([...row, ...partial]);
}
