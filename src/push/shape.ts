import type { Image } from "../core/image.js";
import { keyText } from "../core/key-text.js";
import type { TableInfo } from "../core/table.js";

/**
 * An image's columns: those a push writes (TableInfo.writable, in the image's order), those the table lacks, and
 * the primary key's columns it lacks (captured under another key: an UPDATE's image holds the key it had then).
 */
export interface Shape {
  writable: string[];
  unknown: string[];
  keyless: string[];
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
    shape = {
      writable: keys.filter((c) => t.writable.has(c)),
      unknown: keys.filter((c) => !t.known.has(c)),
      keyless: table.primaryKey.filter((c) => !image.has(c)),
    };
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
 * write would land without them (json_populate_record ignores unknown keys), losing its values silently. And the
 * primary key's columns they lack: captured before the key changed, such a write would name no row.
 * `current`: the shape of the row's image after the window (null: deleted). An UPDATE's before image has the
 * columns of its after image: the base counts only where the row is deleted, or deleted and inserted again.
 */
export function staleColumns(
  table: TableInfo,
  base: Image | null,
  current: Shape | null,
  reinserted: boolean,
): string[] {
  const names = new Set([...(current?.unknown ?? []), ...(current?.keyless ?? [])]);
  if (base !== null && (current === null || reinserted)) {
    const { unknown, keyless } = shapeOf(table, base);
    for (const c of [...unknown, ...keyless]) names.add(c);
  }
  return [...names];
}

/**
 * The coalescer's key of a row: its table and primary key. An image without a key column (captured under another
 * key) is a row of its own (the entry's id), refused by staleColumns: never folded with another such row.
 */
export function rowKey(table: TableInfo, image: Image, entryId: number): string {
  return table.primaryKey.every((c) => image.has(c))
    ? `${table.oid}\u0000${keyText(table, image)}`
    : `${table.oid}\u0000#${entryId}`;
}
