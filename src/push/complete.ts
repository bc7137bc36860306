import type { Driver } from "../core/driver.js";
import { splitImage, type Image } from "../core/image.js";
import { encodeImage } from "../core/json-text.js";
import { columnList, columnsEqual } from "../core/sql.js";
import { rowImageSql } from "../log/capture.js";
import { actionParentsLastAfter, LATER_UPDATES_SQL, lastTouchesAfter } from "../log/pending.js";
import { foreignKeysSql, type ForeignKeyRow } from "../capture/constraints.js";
import type { TableInfo } from "../core/table.js";
import { keyImage, readableKey } from "../core/key-text.js";
import type { RowOp } from "./coalesce.js";
import { keyIs } from "./local-row.js";

/**
 * An update's log images may hold only the columns it assigned (log/capture.ts); the push writes just those.
 * Where whole rows are needed, a conflict (strategies and resolvers decide on rows, and "overwrite" may
 * recreate a remote row), the rest comes from the local row: the columns no pending change touched are the
 * same in the row before the change, the row after it, and the local row now. Unless the local row may have
 * changed since the change otherwise: a later change is queued for the row, or for a row it references with
 * a foreign key action (ON UPDATE CASCADE...: the action changed it locally, uncaptured); then from the remote
 * row (fillersOf).
 */

/** Whether the op's images lack columns of the row (an update that logged only what it assigned). */
export function isPartial(op: RowOp): boolean {
  return op.kind !== "delete" && op.table.writable.some((c) => !op.image.has(c));
}

/**
 * What makes each partial op's images whole (undefined for an op whose images are whole): the local row, by the
 * op's key after the change, as capture logs a row (log/capture.ts rowImageSql: an array's bounds kept). But the
 * remote row when there is one (`remotes`) where the local row may show more than this op: a change queued after
 * the op touched the row (old or new key), or a table the row references with a foreign key action (its action
 * may have changed the row's columns or key, uncaptured), or the row is not found by its key at all (a missing
 * row is no local delete: that would be a logged change). The local row then shows changes this op did not make,
 * which push themselves (the remote runs the foreign key actions). The remote row holds what neither side
 * changed in this op. Null where there is neither.
 */
export async function fillersOf(
  d: Driver,
  ops: readonly RowOp[],
  remotes: readonly (Image | null)[],
): Promise<(Image | null | undefined)[]> {
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
    const items = indexes.map((i) => {
      const op = ops[i]!;
      const image = op.kind === "delete" ? op.key : op.image;
      const key = encodeImage(t, readableKey(t, keyImage(t, image), image));
      return `{"k":${key},"after":${op.lastId}}`;
    });
    // Set-based: the ops' keys typed once, the later changes' keys grouped once, both joined by key.
    const pk = t.primaryKey;
    const after = "(SELECT min(ominipg_after) FROM ominipg_e)";
    const { rows } = await d.query<{ i: string; row: string | null; later: boolean }>(
      `WITH ominipg_e AS MATERIALIZED (SELECT e.i AS ominipg_i, (e.v ->> 'after')::int8 AS ominipg_after, ${columnList(pk, "ominipg_k")} ` +
        `FROM json_array_elements($1::text::json) WITH ORDINALITY AS e(v, i) CROSS JOIN LATERAL json_populate_record(NULL::${t.sql}, e.v -> 'k') AS ominipg_k), ` +
        `ominipg_l AS (${lastTouchesAfter(t, after)}), ominipg_a AS (${actionParentsLastAfter(t, after)}) ` +
        `SELECT ominipg_e.ominipg_i::text AS i, ${rowImageSql(t, "ominipg_t")}::text AS row, ` +
        `coalesce(ominipg_l.ominipg_last > ominipg_e.ominipg_after, false) OR coalesce(ominipg_a.ominipg_last > ominipg_e.ominipg_after, false) AS later ` +
        `FROM ominipg_e CROSS JOIN ominipg_a ` +
        `LEFT JOIN ${t.sql} AS ominipg_t ON ${columnsEqual(pk, "ominipg_t", "ominipg_e")} ` +
        `LEFT JOIN ominipg_l ON ${columnsEqual(pk, "ominipg_l", "ominipg_e")}`,
      [`[${items.join(",")}]`],
      { prepare: false },
    );
    for (const r of rows) {
      const i = indexes[Number(r.i) - 1]!;
      const op = ops[i]!;
      out[i] =
        (r.later || r.row === null) && remotes[i]
          ? remotes[i]
          : r.row !== null
            ? splitImage(r.row, true)
            : op.kind === "delete"
              ? null
              : await movedRow(d, t, op.image, op.lastId);
    }
  }
  return out;
}

/**
 * The local row of `image` (a partial op's) where neither side has it under its key: a queued key change of a
 * parent whose foreign key on this table's key columns cascades (ON UPDATE CASCADE) moved it locally, uncaptured.
 * The row at the key those key changes lead to (a missing row is no local delete: that would be a logged change,
 * and taking it for one lost the op); null if there is none.
 */
async function movedRow(d: Driver, t: TableInfo, image: Image, after: number): Promise<Image | null> {
  const { rows: fks } = await d.query<ForeignKeyRow>(
    foreignKeysSql(`f.conrelid::int8 = $1::int8 AND f.confupdtype = 'c'`),
    [t.oid],
    { prepare: false },
  );
  const key = keyImage(t, image);
  let moved = false;
  for (const fk of fks) {
    const [cols, refs] = [JSON.parse(fk.cols) as string[], JSON.parse(fk.refs) as string[]];
    if (!cols.every((c) => key.has(c))) continue;
    const { rows } = await d.query<{ old_row: string; new_row: string }>(
      LATER_UPDATES_SQL,
      [String(fk.parent), String(after)],
      { prepare: false },
    );
    for (const r of rows) {
      const [before, now] = [splitImage(r.old_row, true), splitImage(r.new_row, true)];
      if (!refs.every((c, n) => before.get(c) === key.get(cols[n]!))) continue;
      refs.forEach((c, n) => key.set(cols[n]!, now.get(c) ?? "null"));
      moved = true;
    }
  }
  if (!moved) return null;
  const { rows } = await d.query<{ row: string | null }>(
    `SELECT ${rowImageSql(t, "ominipg_t")}::text AS row FROM ${t.sql} AS ominipg_t WHERE ${keyIs(t, "$1")}`,
    [encodeImage(t, readableKey(t, key, image))],
    { prepare: false },
  );
  return rows[0]?.row ? splitImage(rows[0].row, true) : null;
}

/** A partial image made whole from the local row: its own columns over the row's. */
export function wholeImage(row: Image, partial: Image): Image {
  return new Map([...row, ...partial]);
}
