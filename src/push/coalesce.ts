import { keyImage, keyText } from "../core/key-text.js";
import type { TableInfo } from "../core/table.js";
import { noRules, type TableRules } from "../capture/constraints.js";
import { splitImage, type Image } from "../core/image.js";
import { changedColumns } from "../core/conflict-rule.js";
import type { LogEntry } from "../log/queue.js";
import { rowKey, shapeOf, staleColumns, type Shape } from "./shape.js";
import { actionReach } from "./action-reach.js";

interface RowState {
  table: TableInfo;
  /** The row before the window's first change; null if the window created it. */
  base: Image | null;
  /** The row after the window's last change; null if deleted. */
  current: Image | null;
  /** Deleted and inserted again with the same key. */
  reinserted: boolean;
  /** Its key changed in the window: keys it held in between are written by no op (OpCommon.rekeyed). */
  rekeyed?: true;
  entryIds: number[];
  firstId: number;
  priority: number;
  /** Rows that took unique values from one another under a DEFERRABLE constraint: pushed in one batch. */
  bond?: number;
}

interface OpCommon {
  table: TableInfo;
  entryIds: number[];
  /** The row's first and last log entry in the window. */
  firstId: number;
  lastId: number;
  priority: number;
  /** The ops of one bond (RowState.bond) go in one batch statement, whose end is where the remote checks them. */
  bond?: number;
  /** Its row's key changed in the window: a pull may have held back keys its entries name that it never writes. */
  rekeyed?: true;
  /**
   * Set once a conflict was settled: the remote row the write was decided against (null: none), which the
   * remote must still hold. Unset, the remote must match the change's before image in the columns it touched.
   */
  expected?: Image | null;
}

/** A remote write that stands for one or more log entries of one row. */
export type RowOp =
  /**
   * Insert the full image; if the key exists remotely, set only `set` (the changed columns). `reinserted`:
   * deleted and inserted again, so the whole row changed.
   */
  | (OpCommon & { kind: "upsert"; image: Image; set: string[]; base: Image | null; reinserted: boolean })
  /** The primary key changed: update the row found by `key` (its original key) to `set` of `image`. */
  | (OpCommon & { kind: "move"; key: Image; image: Image; set: string[]; base: Image })
  | (OpCommon & { kind: "delete"; key: Image; base: Image });

export interface Coalesced {
  /** Tables to empty first, with the entries that stand for it (their TRUNCATE and what it superseded). */
  truncates: { table: TableInfo; entryIds: number[]; priority: number }[];
  rows: RowOp[];
  /** Entries whose effects cancel out (INSERT then DELETE, an UPDATE back to the same values). */
  noop: { table: TableInfo; entryIds: number[] }[];
  /** Writes whose images name columns the table no longer has (`columns`): never pushed without them. */
  stale: { op: RowOp; columns: string[] }[];
}

const NO_ROWS: readonly RowState[] = [];

const NO_RULES = noRules();

/**
 * Folds log entries, in log order, into at most one remote write per row: INSERT+UPDATEs -> one insert of the
 * final image; INSERT..DELETE -> nothing; UPDATE+UPDATE -> only the columns that differ from the first before
 * image; ..DELETE -> one delete by the original key; DELETE+INSERT -> upsert; a key change -> a key update;
 * TRUNCATE supersedes the table's earlier changes.
 *
 * The writes of a window are then applied in an order of their own (truncates, upserts parents first,
 * deletes children first), not in log order. That is only right while no write depends on an earlier
 * one of the window in a way this order would break, so `add` refuses (returns false: the window ends
 * before the entry, and the next window starts with it) an entry that
 * - takes a unique value (primary key or other unique column set) that another row gave up earlier in
 *   the window (deleted, or changed away): the giving up must reach the remote first (unless the constraint
 *   is DEFERRABLE and the other row still exists: the two are bonded, planBatches puts them in one batch
 *   statement, at whose end the remote checks the constraint, so values swapped in one transaction go too;
 *   a bonded row's delete ends the window instead); for a unique
 *   index on expressions, whose values the images do not show, a row whose inputs to it were deleted or
 *   changed gave up its value, and any row inserted or with changed inputs may take it;
 * - re-inserts a deleted row of a table whose foreign keys cascade on delete: the remote must see the
 *   delete, so that it removes the same dependent rows the local delete removed;
 * - deletes (or changes the key of) a row of a table whose referencing foreign keys cascade / set null on
 *   delete (on update), while the window writes rows of such a referencing table: those writes happened
 *   before the delete and must reach the remote before it, as they did locally;
 * - changes a self-referencing foreign key of a row already written in the window (its merged image
 *   could otherwise reference a row inserted after its first write);
 * - writes a row of a table such a delete or key change acted on earlier in the window, directly or through
 *   the actions it set off (actionReach: an insert of a key a cascade deleted, a write of a row it changed): the
 *   write's conflict check must meet the remote row as the action left it (else a child updated at its cascaded
 *   key met no row there, and remote-wins deleted it).
 */
export class Coalescer {
  #rows = new Map<string, RowState>();
  #retired: RowState[] = [];
  #truncates = new Map<number, { table: TableInfo; entryIds: number[]; priority: number }>();
  /** Per table: unique values that rows held before the window and gave up in it, and the row that did. */
  #freed = new Map<number, Map<string, RowState>>();
  /** Per "table oid:index": the row that changed its inputs to a unique index on expressions, or null for several. */
  #opaqueReleased = new Map<string, RowState | null>();
  /** Tables with an insert or update in the window. */
  #written = new Set<number>();
  /** Per table a foreign key action of the window acted on, the entries ("I", "U", "D") that end it (see add). */
  #acted = new Map<number, string>();
  /** Per table: values of DEFERRABLE unique column sets rows took in the window, and the row that did. */
  #taken = new Map<number, Map<string, RowState>>();
  #bonds = 0;
  entries = 0;

  constructor(private readonly rules: ReadonlyMap<number, TableRules> = new Map()) {}

  /** Distinct rows held: the window's memory footprint. */
  get rowCount(): number {
    return this.#rows.size + this.#retired.length;
  }

  /** Add the next entry of the log; false (nothing added) if it must start the next window instead. */
  add(entry: LogEntry, table: TableInfo): boolean {
    if (entry.op === "T") {
      this.entries++;
      this.#truncate(entry, table);
      return true;
    }
    if (this.#acted.get(table.oid)?.includes(entry.op)) return false;
    const rules = this.rules.get(table.oid) ?? NO_RULES;
    const keyed = (image: Image) => rowKey(table, image, entry.id);
    if (entry.op === "I") {
      const image = splitImage(need(entry.newRow, entry), true);
      const k = keyed(image);
      let st = this.#rows.get(k);
      const bonded = this.#takesFreed(table, rules, image, undefined, st);
      if (!bonded) return false;
      if (st && st.current === null && st.base !== null && rules.deleteActionChildren.length > 0) return false;
      this.entries++;
      this.#written.add(table.oid);
      if (!st) this.#rows.set(k, (st = this.#state(table, null, image, entry)));
      else {
        if (st.current === null && st.base !== null) st.reinserted = true;
        st.current = image;
        this.#touch(st, entry);
      }
      this.#bond(st, bonded);
      this.#hold(st, rules);
      return true;
    }
    const before = splitImage(need(entry.oldRow, entry), true);
    const k = keyed(before);
    let st = this.#rows.get(k);
    if (entry.op === "D") {
      if (this.#writes(rules.deleteActionChildren) || st?.bond !== undefined) return false;
      this.entries++;
      if (!st) {
        st = this.#state(table, before, null, entry);
        this.#rows.set(k, st);
      } else {
        fillBase(st, before);
        st.current = null;
        this.#touch(st, entry);
      }
      this.#release(st, rules);
      for (const [c, ops] of actionReach(this.rules, table.oid, false)) this.#act(c, ops);
      return true;
    }
    const after = splitImage(need(entry.newRow, entry), true);
    const k2 = keyed(after);
    const bonded = this.#takesFreed(table, rules, after, before, st);
    if (!bonded) return false;
    // A change of columns a foreign key's ON UPDATE action follows (the key, or a UNIQUE column it references).
    const acting = rules.updateActions.filter((u) => u.columns.some((c) => before.get(c) !== after.get(c)));
    if (acting.length > 0 && this.#writes(acting.map((u) => u.child))) return false;
    if (st && rules.selfRefs.some((f) => f.columns.some((c) => before.get(c) !== after.get(c)))) return false;
    this.entries++;
    this.#written.add(table.oid);
    if (!st) {
      st = this.#state(table, before, after, entry);
      this.#rows.set(k, st);
    } else {
      fillBase(st, before);
      st.current = st.current === null ? after : new Map([...st.current, ...after]);
      this.#touch(st, entry);
    }
    if (k2 !== k) {
      st.rekeyed = true;
      this.#rows.delete(k);
      const previous = this.#rows.get(k2);
      if (previous) this.#retired.push(previous); // a row inserted and deleted in the window held the key
      this.#rows.set(k2, st);
    }
    this.#bond(st, bonded);
    this.#release(st, rules);
    this.#hold(st, rules);
    for (const u of acting) for (const [c, ops] of actionReach(this.rules, u.child, true)) this.#act(c, ops);
    return true;
  }

  result(): Coalesced {
    const rows: RowOp[] = [];
    const noop: Coalesced["noop"] = [];
    const stale: Coalesced["stale"] = [];
    for (const st of [...this.#retired, ...this.#rows.values()]) {
      const shape = st.current && shapeOf(st.table, st.current);
      const op = toOp(st, shape);
      if (!op) {
        noop.push({ table: st.table, entryIds: st.entryIds });
        continue;
      }
      const columns = staleColumns(st.table, st.base, shape, st.reinserted);
      if (columns.length > 0) stale.push({ op, columns });
      else rows.push(op);
    }
    return { truncates: [...this.#truncates.values()], rows, noop, stale };
  }

  /**
   * Unique values `image` takes that other rows gave up in this window (`before`: values it already had):
   * undefined if the window must end first, else the rows it must be bonded with (DEFERRABLE constraints).
   */
  #takesFreed(
    table: TableInfo,
    rules: TableRules,
    image: Image,
    before: Image | undefined,
    st: RowState | undefined,
  ): readonly RowState[] | undefined {
    for (let j = 0; j < rules.opaqueUniques.length; j++) {
      const owner = this.#opaqueReleased.get(`${table.oid}:${j}`);
      if (owner === undefined || owner === st) continue;
      const cols = rules.opaqueUniques[j]!.columns;
      if (!before || cols.some((c) => before.get(c) !== image.get(c))) return undefined;
    }
    let bonded: RowState[] | undefined; // allocated only when needed: this runs for every entry
    const freed = this.#freed.get(table.oid);
    if (!freed) return NO_ROWS;
    for (let i = 0; i < rules.uniques.length; i++) {
      const value = uniqueValue(rules, i, image);
      if (value === undefined || (before && uniqueValue(rules, i, before) === value)) continue;
      const owner = freed.get(value);
      if (!owner || owner === st) continue;
      if (!rules.uniques[i]!.deferrable || owner.current === null) return undefined;
      (bonded ??= []).push(owner);
    }
    return bonded ?? NO_ROWS;
  }

  /** Bond `st` with `others` (and whatever they are bonded with already). */
  #bond(st: RowState, others: readonly RowState[]): void {
    for (const other of others) {
      st.bond ??= other.bond ?? ++this.#bonds;
      if (other.bond === st.bond) continue;
      const from = other.bond;
      other.bond = st.bond;
      if (from === undefined) continue;
      for (const r of [...this.#retired, ...this.#rows.values()]) if (r.bond === from) r.bond = st.bond;
    }
  }

  /** Record the unique values the row held before the window and no longer holds. */
  #release(st: RowState, rules: TableRules): void {
    if (st.base === null) return;
    const { base, current } = st;
    for (let j = 0; j < rules.opaqueUniques.length; j++) {
      if (current !== null && rules.opaqueUniques[j]!.columns.every((c) => base.get(c) === current.get(c))) continue;
      const key = `${st.table.oid}:${j}`;
      const owner = this.#opaqueReleased.get(key);
      this.#opaqueReleased.set(key, owner === undefined || owner === st ? st : null);
    }
    let freed = this.#freed.get(st.table.oid);
    const taken = this.#taken.get(st.table.oid);
    for (let i = 0; i < rules.uniques.length; i++) {
      const held = uniqueValue(rules, i, base);
      if (held === undefined || (current !== null && uniqueValue(rules, i, current) === held)) continue;
      if (!freed) this.#freed.set(st.table.oid, (freed = new Map()));
      freed.set(held, st);
      // A value another row took while this one held it (a DEFERRABLE constraint allows it): one batch.
      const taker = taken?.get(held);
      if (current !== null && taker && taker !== st && taker.current && uniqueValue(rules, i, taker.current) === held)
        this.#bond(st, [taker]);
    }
  }

  /** Record the values of DEFERRABLE unique column sets the row holds now (see #release). */
  #hold(st: RowState, rules: TableRules): void {
    if (st.current === null) return;
    for (let i = 0; i < rules.uniques.length; i++) {
      if (!rules.uniques[i]!.deferrable) continue;
      const value = uniqueValue(rules, i, st.current);
      if (value === undefined) continue;
      let taken = this.#taken.get(st.table.oid);
      if (!taken) this.#taken.set(st.table.oid, (taken = new Map()));
      taken.set(value, st);
    }
  }

  #act(table: number, ops: string): void {
    const had = this.#acted.get(table) ?? "";
    this.#acted.set(table, had + [...ops].filter((op) => !had.includes(op)).join(""));
  }

  #writes(tables: number[]): boolean {
    return tables.some((t) => this.#written.has(t));
  }

  #truncate(entry: LogEntry, table: TableInfo): void {
    const t = this.#truncates.get(table.oid) ?? { table, entryIds: [], priority: 0 };
    t.entryIds.push(entry.id);
    t.priority = Math.max(t.priority, entry.priority);
    for (const [k, st] of this.#rows) {
      if (st.table.oid === table.oid) {
        for (const id of st.entryIds) t.entryIds.push(id);
        this.#rows.delete(k);
      }
    }
    this.#retired = this.#retired.filter((st) => {
      if (st.table.oid !== table.oid) return true;
      for (const id of st.entryIds) t.entryIds.push(id);
      return false;
    });
    // The truncate goes first: every value is free on the remote.
    this.#freed.delete(table.oid);
    this.#taken.delete(table.oid);
    for (const key of [...this.#opaqueReleased.keys()])
      if (key.startsWith(`${table.oid}:`)) this.#opaqueReleased.delete(key);
    this.#truncates.set(table.oid, t);
  }

  #state(table: TableInfo, base: Image | null, current: Image | null, entry: LogEntry): RowState {
    const { id, priority } = entry;
    return { table, base, current, reinserted: false, entryIds: [id], firstId: id, priority };
  }

  #touch(st: RowState, entry: LogEntry): void {
    st.entryIds.push(entry.id);
    st.priority = Math.max(st.priority, entry.priority);
  }
}

/**
 * An UPDATE's images may hold only the columns it assigned (log/capture.ts), so a row's base and current image
 * grow as entries touch more columns: a column's base value is its old value in the first entry that has it (no
 * entry before changed it), and the current image takes each entry's new values over the earlier ones. Columns
 * no entry has are the same before and after the window, and are not pushed.
 */
function fillBase(st: RowState, before: Image): void {
  if (st.base === null) return;
  for (const [c, v] of before) if (!st.base.has(c)) st.base.set(c, v);
}

/** The value of unique column set `i` as text, or undefined when it cannot conflict (a NULL, NULLS DISTINCT). */
function uniqueValue(rules: TableRules, i: number, image: Image): string | undefined {
  const u = rules.uniques[i]!;
  const values = u.columns.map((c) => image.get(c) ?? "null");
  if (u.nullsDistinct && values.includes("null")) return undefined;
  return `${i}\u0001${values.join("\u0000")}`;
}

/** The row's write; `shape`: its current image's. */
function toOp(st: RowState, shape: Shape | null): RowOp | undefined {
  const { table, base, current, entryIds, firstId, priority } = st;
  const common = { table, entryIds, firstId, lastId: entryIds.at(-1)!, priority, bond: st.bond, rekeyed: st.rekeyed };
  if (current === null || shape === null)
    return base === null ? undefined : { kind: "delete", ...common, key: keyImage(table, base), base };
  const { writable } = shape;
  const moved = base !== null && keyText(table, base) !== keyText(table, current);
  if (base !== null && st.reinserted && moved) {
    // Deleted, inserted again, then given another key: the remote row still sits at the original key.
    return { kind: "move", ...common, key: keyImage(table, base), image: current, set: writable, base };
  }
  if (base === null || st.reinserted) {
    return {
      kind: "upsert",
      ...common,
      image: current,
      set: writable.filter((c) => !table.primaryKey.includes(c)),
      base,
      reinserted: st.reinserted,
    };
  }
  const changed = changedColumns(base, current).filter((c) => writable.includes(c));
  if (moved) {
    return { kind: "move", ...common, key: keyImage(table, base), image: current, set: changed, base };
  }
  // A change of columns the table no longer has alone is no no-op: it is refused (staleColumns).
  if (changed.length === 0 && (shape.unknown.length === 0 || changedColumns(base, current).length === 0))
    return undefined;
  return { kind: "upsert", ...common, image: current, set: changed, base, reinserted: false };
}

function need(row: string | null, entry: LogEntry): string {
  if (row === null)
    throw new Error(`log entry ${entry.id} (${entry.op} on ${entry.schema}.${entry.table}) has no row image`);
  return row;
}
