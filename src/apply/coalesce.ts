import jsonPatch from "fast-json-patch";
import type { TableInfo } from "../capture/catalog.js";
import { splitImage, type Image } from "./image.js";

/** One `_sync_queue` row as the applier reads it (images as jsonb text). */
export interface LogEntry {
  id: number;
  schema: string;
  table: string;
  op: "I" | "U" | "D" | "T";
  oldRow: string | null;
  newRow: string | null;
  priority: number;
}

interface RowState {
  table: TableInfo;
  /** The row before the window's first change; null if the window created it. */
  base: Image | null;
  /** The row after the window's last change; null if deleted. */
  current: Image | null;
  /** Deleted and inserted again with the same key. */
  reinserted: boolean;
  entryIds: number[];
  firstId: number;
  priority: number;
}

/** A remote write that stands for one or more log entries of one row. */
export type RowOp =
  /** Insert the full image; if the key exists remotely, set only `set` (the changed columns). */
  | { kind: "upsert"; table: TableInfo; image: Image; set: string[]; base: Image | null; entryIds: number[]; firstId: number; priority: number }
  /** The primary key changed: update the row found by `key` (its original key) to `set` of `image`. */
  | { kind: "move"; table: TableInfo; key: Image; image: Image; set: string[]; base: Image; entryIds: number[]; firstId: number; priority: number }
  | { kind: "delete"; table: TableInfo; key: Image; base: Image; entryIds: number[]; firstId: number; priority: number };

export interface Coalesced {
  /** Tables to empty first, with the entries that stand for it (their TRUNCATE and what it superseded). */
  truncates: { table: TableInfo; entryIds: number[]; priority: number }[];
  rows: RowOp[];
  /** Entries whose effects cancel out (INSERT then DELETE, an UPDATE back to the same values). */
  noop: number[];
}

/**
 * Folds log entries, in log order, into at most one remote write per row: INSERT+UPDATEs -> one insert of the
 * final image; INSERT..DELETE -> nothing; UPDATE+UPDATE -> only the columns that differ from the first before
 * image; ..DELETE -> one delete by the original key; DELETE+INSERT -> upsert; a key change -> a key update;
 * TRUNCATE supersedes the table's earlier changes.
 */
export class Coalescer {
  #rows = new Map<string, RowState>();
  #retired: RowState[] = [];
  #truncates = new Map<number, { table: TableInfo; entryIds: number[]; priority: number }>();
  #noop: number[] = [];
  entries = 0;

  /** Distinct rows held: the window's memory footprint. */
  get rowCount(): number {
    return this.#rows.size + this.#retired.length;
  }

  add(entry: LogEntry, table: TableInfo): void {
    this.entries++;
    if (entry.op === "T") return this.#truncate(entry, table);
    const keyed = (image: Image) => `${table.oid}\u0000${keyText(table, image)}`;
    if (entry.op === "I") {
      const image = splitImage(need(entry.newRow, entry));
      const k = keyed(image);
      const st = this.#rows.get(k);
      if (!st) this.#rows.set(k, this.#state(table, null, image, entry));
      else {
        if (st.current === null && st.base !== null) st.reinserted = true;
        st.current = image;
        this.#touch(st, entry);
      }
      return;
    }
    const before = splitImage(need(entry.oldRow, entry));
    const k = keyed(before);
    let st = this.#rows.get(k);
    if (entry.op === "D") {
      if (!st) this.#rows.set(k, this.#state(table, before, null, entry));
      else {
        st.current = null;
        this.#touch(st, entry);
      }
      return;
    }
    const after = splitImage(need(entry.newRow, entry));
    if (!st) {
      st = this.#state(table, before, after, entry);
      this.#rows.set(k, st);
    } else {
      st.current = after;
      this.#touch(st, entry);
    }
    const k2 = keyed(after);
    if (k2 !== k) {
      this.#rows.delete(k);
      const previous = this.#rows.get(k2);
      if (previous) this.#retired.push(previous); // the key was freed earlier in the window (a delete or a move)
      this.#rows.set(k2, st);
    }
  }

  result(): Coalesced {
    const rows: RowOp[] = [];
    const noop = [...this.#noop];
    for (const st of [...this.#retired, ...this.#rows.values()]) {
      const op = toOp(st);
      if (op) rows.push(op);
      else noop.push(...st.entryIds);
    }
    return { truncates: [...this.#truncates.values()], rows, noop };
  }

  #truncate(entry: LogEntry, table: TableInfo): void {
    const t = this.#truncates.get(table.oid) ?? { table, entryIds: [], priority: 0 };
    t.entryIds.push(entry.id);
    t.priority = Math.max(t.priority, entry.priority);
    for (const [k, st] of this.#rows) {
      if (st.table.oid === table.oid) {
        t.entryIds.push(...st.entryIds);
        this.#rows.delete(k);
      }
    }
    this.#retired = this.#retired.filter((st) => {
      if (st.table.oid !== table.oid) return true;
      t.entryIds.push(...st.entryIds);
      return false;
    });
    this.#truncates.set(table.oid, t);
  }

  #state(table: TableInfo, base: Image | null, current: Image | null, entry: LogEntry): RowState {
    return { table, base, current, reinserted: false, entryIds: [entry.id], firstId: entry.id, priority: entry.priority };
  }

  #touch(st: RowState, entry: LogEntry): void {
    st.entryIds.push(entry.id);
    st.priority = Math.max(st.priority, entry.priority);
  }
}

function toOp(st: RowState): RowOp | undefined {
  const { table, base, current, entryIds, firstId, priority } = st;
  const common = { table, entryIds, firstId, priority };
  if (current === null) return base === null ? undefined : { kind: "delete", ...common, key: keyImage(table, base), base };
  const writable = writableColumns(table, current);
  if (base === null || st.reinserted) {
    return { kind: "upsert", ...common, image: current, set: writable.filter((c) => !table.primaryKey.includes(c)), base };
  }
  const changed = changedColumns(base, current).filter((c) => writable.includes(c));
  if (keyText(table, base) !== keyText(table, current)) {
    return { kind: "move", ...common, key: keyImage(table, base), image: current, set: changed, base };
  }
  if (changed.length === 0) return undefined;
  return { kind: "upsert", ...common, image: current, set: changed, base };
}

/** Columns whose value differs between two images (fast-json-patch over the top-level value texts). */
export function changedColumns(before: Image, after: Image): string[] {
  const ops = jsonPatch.compare(Object.fromEntries(before), Object.fromEntries(after));
  const cols = new Set<string>();
  for (const op of ops) cols.add(op.path.slice(1).split("/")[0]!.replace(/~1/g, "/").replace(/~0/g, "~"));
  return [...cols];
}

/** Columns a client may write: not GENERATED ... STORED, and known to the catalog. */
function writableColumns(table: TableInfo, image: Image): string[] {
  return table.columns.filter((c) => !c.generated && image.has(c.name)).map((c) => c.name);
}

export function keyText(table: TableInfo, image: Image): string {
  return table.primaryKey.map((c) => image.get(c) ?? "null").join(",");
}

export function keyImage(table: TableInfo, image: Image): Image {
  return new Map(table.primaryKey.map((c) => [c, image.get(c) ?? "null"]));
}

function need(row: string | null, entry: LogEntry): string {
  if (row === null) throw new Error(`log entry ${entry.id} (${entry.op} on ${entry.schema}.${entry.table}) has no row image`);
  return row;
}
