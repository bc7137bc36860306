/** One remote transaction's changes as the drainer (feed-drain.ts) reads them, and the feed rows they become. */
import { TOAST, type DecodedTable, type DecodedValue } from "../core/decoding.js";
import { FEED } from "./schema.js";

/** A table's map key (no identifier holds a NUL). */
export function tableId(t: DecodedTable): string {
  return `${t.schema}\u0000${t.name}`;
}

export interface FeedRow {
  lsn: string;
  s: string;
  t: string;
  /** JSON texts: the key (null: the table as a whole), the row's image before the change (null: a key row). */
  k: string | null;
  i: string | null;
}

/**
 * The feed rows as one compact JSON text: per run of rows of one commit and table, `[lsn, schema, table,
 * [entry...]]`, an entry being the key (a JSON object), null (the table as a whole) or `[key, image]`. A fifth of
 * the text of a record per row (the position and names said once per run): 2,000 keys were ~12 ms of the drain
 * more as records. Keys and images are JSON texts already: spliced in, not encoded again as strings.
 */
export function payload(rows: FeedRow[]): string {
  const runs: string[] = [];
  let entries: string[] = [];
  for (let n = 0; n < rows.length; n++) {
    const r = rows[n]!;
    entries.push(r.i === null ? (r.k ?? "null") : `[${r.k ?? "null"},${r.i}]`);
    const next = rows[n + 1];
    if (next && next.lsn === r.lsn && next.s === r.s && next.t === r.t) continue;
    runs.push(`[${JSON.stringify(r.lsn)},${JSON.stringify(r.s)},${JSON.stringify(r.t)},[${entries.join(",")}]]`);
    entries = [];
  }
  return `[${runs.join(",")}]`;
}

export const INSERT_SQL =
  `INSERT INTO ${FEED} (lsn, schema_name, table_name, key, image) ` +
  `SELECT (g.value ->> 0)::pg_lsn, g.value ->> 1, g.value ->> 2, ` +
  `CASE jsonb_typeof(e.value) WHEN 'object' THEN e.value WHEN 'array' THEN e.value -> 0 END, ` +
  `CASE jsonb_typeof(e.value) WHEN 'array' THEN e.value -> 1 END ` +
  `FROM jsonb_array_elements($1::text::jsonb) AS g CROSS JOIN LATERAL jsonb_array_elements(g.value -> 3) AS e`;

/**
 * One remote transaction's changes, as they are read: per table, its keys in order of first appearance and the
 * first image of each (the row before the transaction), deduplicated.
 */
export class Txn {
  readonly entries: { table: string; s: string; t: string; key: string | null; image: string | null }[] = [];
  readonly #seen = new Set<string>();
  readonly #perTable = new Map<string, number>();
  /** Tables recorded as a whole in this transaction. */
  readonly whole = new Set<string>();

  add(table: DecodedTable, key: string | null, maxKeys: number, image: string | null = null): void {
    const id = tableId(table);
    if (this.whole.has(id)) return;
    const n = (this.#perTable.get(id) ?? 0) + 1;
    if (key === null || n > maxKeys) {
      this.whole.add(id);
      this.entries.push({ table: id, s: table.schema, t: table.name, key: null, image: null });
      return;
    }
    const seen = Txn.#seenAs(id, key, image !== null);
    if (this.#seen.has(seen)) return;
    this.#seen.add(seen);
    this.#perTable.set(id, n);
    this.entries.push({ table: id, s: table.schema, t: table.name, key, image });
  }

  /**
   * `key` names a row this transaction made: an image of it seen later is a state no other session saw (nothing
   * was visible at that key before the transaction), not recorded.
   */
  made(table: DecodedTable, key: string): void {
    this.#seen.add(Txn.#seenAs(tableId(table), key, true));
  }

  static #seenAs(table: string, key: string, image: boolean): string {
    return `${table}\u0000${image ? "i" : "k"}${key}`;
  }

  /** Its feed rows at commit position `lsn`: a table recorded as a whole has no key rows. */
  rows(lsn: string): FeedRow[] {
    return this.entries.flatMap((e) =>
      e.key !== null && this.whole.has(e.table) ? [] : [{ lsn, s: e.s, t: e.t, k: e.key, i: e.image }],
    );
  }
}

/**
 * A row image as the feed stores it: a JSON object of the columns' values, each the value's text (for a reader's
 * jsonb_populate_record, which reads it with the type's input function) but a json or jsonb value, which goes in
 * as the JSON it is (populate_record would take its text for a JSON string). An out-of-line value the change left
 * unchanged is left out.
 */
export function jsonOf(columns: Iterable<[string, DecodedValue]>, json: Set<string>): string {
  const fields: string[] = [];
  for (const [c, v] of columns)
    if (v !== TOAST) fields.push(`${JSON.stringify(c)}:${v === null ? "null" : json.has(c) ? v : JSON.stringify(v)}`);
  return `{${fields.join(",")}}`;
}

/** The key of a row image, in the same form; null when a key column is missing, null or left out of line. */
export function keyOf(image: Map<string, DecodedValue> | undefined, pk: string[], json: Set<string>): string | null {
  if (!image) return null;
  const values = pk.map((c) => [c, image.get(c)] as const);
  if (values.some(([, v]) => v === undefined || v === null || v === TOAST)) return null;
  return jsonOf(values as [string, DecodedValue][], json);
}
