import type { Image } from "../core/image.js";
import type { TableInfo } from "../core/table.js";

/** An image's columns: those a push writes (TableInfo.writable, in the image's order), and those the table lacks. */
export interface Shape {
  writable: string[];
  unknown: string[];
}

const shapes = new WeakMap<TableInfo, { writable: Set<string>; known: Set<string>; shapes: Map<string, Shape> }>();

/** An image's columns, sorted out once per table and image shape (a sync may hold 100k+ rows). */
export function shapeOf(table: TableInfo, image: Image): Shape {
  let t = shapes.get(table);
  if (!t) {
    const known = new Set(table.columns.map((c) => c.name));
    shapes.set(table, (t = { writable: new Set(table.writable), known, shapes: new Map() }));
  }
  const keys = [...image.keys()];
  const key = keys.join("\u0000");
  let shape = t.shapes.get(key);
  if (!shape) {
    shape = { writable: keys.filter((c) => t.writable.has(c)), unknown: keys.filter((c) => !t.known.has(c)) };
    t.shapes.set(key, shape);
  }
  return shape;
}

/** The columns of an image a push writes: one shared array per shape. */
export function writableIn(table: TableInfo, image: Image): string[] {
  return shapeOf(table, image).writable;
}

/**
 * Columns of a row's images the table does not have: captured before a column was renamed or dropped. Such a
 * write would land without them (json_populate_record ignores unknown keys), losing its values silently.
 * `current`: the shape of the row's image after the window (null: deleted). An UPDATE's before image has the
 * columns of its after image: the base counts only where the row is deleted, or deleted and inserted again.
 */
export function staleColumns(
  table: TableInfo,
  base: Image | null,
  current: Shape | null,
  reinserted: boolean,
): string[] {
  const names = new Set(current?.unknown);
  if (base !== null && (current === null || reinserted)) for (const c of shapeOf(table, base).unknown) names.add(c);
  return [...names];
}
