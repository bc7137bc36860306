/** The one schema and data every contender gets. */

export const TABLE = "items";

/** The benchmarked table: a bigint key and four ordinary columns. */
export const ITEMS_DDL = `CREATE TABLE IF NOT EXISTS items (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  qty integer NOT NULL,
  price numeric(12,2) NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)`;

/** A table the capture contenders write: its name and DDL (every contender gets the same). */
export interface BenchTable {
  name: string;
  ddl: string;
}

export const ITEMS: BenchTable = { name: TABLE, ddl: ITEMS_DDL };

/** The row trigger of contender b on `table` (after the log table and function of TRIGGER_DDL). */
export function triggerOn(table: string): string {
  return `CREATE OR REPLACE TRIGGER ${table}_capture AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION capture_change()`;
}

/**
 * The classic trigger design (contender b): an AFTER ... FOR EACH ROW trigger appends the change to a log
 * table with to_jsonb of the row and its key, committed with the change.
 */
export const TRIGGER_DDL = [
  `CREATE TABLE IF NOT EXISTS change_log (
    id bigserial PRIMARY KEY,
    txid bigint NOT NULL DEFAULT txid_current(),
    table_name text NOT NULL,
    op "char" NOT NULL,
    row_key jsonb NOT NULL,
    row_data jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE OR REPLACE FUNCTION capture_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO change_log (table_name, op, row_key, row_data)
    VALUES (TG_TABLE_NAME, 'D', jsonb_build_object('id', OLD.id), to_jsonb(OLD));
    RETURN OLD;
  END IF;
  INSERT INTO change_log (table_name, op, row_key, row_data)
  VALUES (TG_TABLE_NAME, CASE TG_OP WHEN 'INSERT' THEN 'I' ELSE 'U' END, jsonb_build_object('id', NEW.id), to_jsonb(NEW));
  RETURN NEW;
END $$`,
  triggerOn(TABLE),
];

/** Single-row statements, with parameters (the way an app sends them). */
export const SINGLE = {
  insert: `INSERT INTO items (id, name, qty, price) VALUES ($1, $2, $3, $4)`,
  update: `UPDATE items SET qty = qty + $2, updated_at = now() WHERE id = $1`,
  delete: `DELETE FROM items WHERE id = $1`,
} as const;

export function insertParams(id: number): unknown[] {
  return [id, `item ${id}`, id % 100, ((id % 1000) / 10).toFixed(2)];
}

/** Bulk statements over ids 1..n (one statement each). */
export function bulk(n: number) {
  return {
    insert: `INSERT INTO items (id, name, qty, price) SELECT g, 'item ' || g, g % 100, (g % 1000) / 10.0 FROM generate_series(1, ${n}) AS g`,
    update: `UPDATE items SET qty = qty + 1, updated_at = now() WHERE id <= ${n}`,
    delete: `DELETE FROM items WHERE id <= ${n}`,
  };
}

/** Ids from..to as rows of COPY text, the same values `bulk(n).insert` writes. */
export function copyText(from: number, to: number, updatedAt: string): string {
  const lines: string[] = [];
  for (let g = from; g <= to; g++)
    lines.push(`${g}\titem ${g}\t${g % 100}\t${((g % 1000) / 10).toFixed(2)}\t${updatedAt}\n`);
  return lines.join("");
}

export const COPY_ITEMS = `COPY items (id, name, qty, price, updated_at) FROM STDIN`;
