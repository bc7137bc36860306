/** A synced table as Ominipg sees it: what capture, push and pull need to know of its columns and keys. */

export interface ColumnInfo {
  name: string;
  /** format_type() of the column, e.g. "integer[]", "numeric(10,2)". */
  type: string;
  /** The type's oid and modifier ("23:-1"): unlike `type`, the same whatever the session's search_path. */
  typeId: string;
  /** GENERATED ALWAYS AS (...) STORED: computed by the server, never written. */
  generated: boolean;
  /** "a" for GENERATED ALWAYS AS IDENTITY, "d" for BY DEFAULT, "" otherwise. */
  identity: "" | "a" | "d";
  /**
   * How `to_json` renders its values: "text" as the type's own text (a JSON string, or a number / boolean),
   * "json" as the JSON itself (json, jsonb), "nested" as JSON arrays / objects that are not its text form
   * (arrays, composites, and domains over them).
   */
  jsonValue: "text" | "json" | "nested";
  /**
   * Of a type (or a domain over one) whose equal values print apart: a float's -0 and 0 (and its JSON form loses
   * -0), an unconstrained numeric's scales (1.0, 1.00), a timestamptz's offsets (one instant, two time zones).
   */
  spelling?: "float" | "numeric" | "timestamptz";
  /** Its default is a sequence's next value: SERIAL, an identity, or a `DEFAULT nextval(...)`. */
  sequence?: boolean;
}

export interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  /** Quoted schema-qualified name, ready for SQL. */
  sql: string;
  columns: ColumnInfo[];
  /** Columns a row write sets: all but GENERATED ... STORED ones. */
  writable: string[];
  /**
   * Columns an UPDATE may set: writable ones but identity ALWAYS, which only an INSERT can set (OVERRIDING
   * SYSTEM VALUE), so they never change locally either.
   */
  updatable: string[];
  primaryKey: string[];
  /**
   * A primary-key column takes its values from a local sequence (ColumnInfo.sequence): the key is minted by
   * this client, so an insert meeting a remote row with the same key that this client never saw is another
   * record, never the same row (push/collision.ts).
   */
  keyFromSequence?: boolean;
  /**
   * Columns every UPDATE's log images carry besides the ones it assigns: the key, and the columns of unique
   * indexes and self-referencing foreign keys (log/capture.ts), and `refusingNull`. Unset: UPDATEs log whole rows
   * (a BEFORE UPDATE trigger may change any column).
   */
  logged?: string[];
  /**
   * Columns of a domain that refuses NULL (a NOT NULL or a CHECK, its own or a base domain's). Images are read
   * back as rows with json_populate_record(NULL::table, image), which runs every column an image lacks through
   * its type's input as NULL: every image read so carries these (key-text.ts: readableKey).
   */
  refusingNull?: string[];
  /** Oids of the tables this one references through foreign keys (itself included, for a self-reference). */
  references: number[];
  /** A partitioned table: it syncs its partitions' rows as its own (capture/inheritance.ts). */
  partitioned?: boolean;
  /** Why writes to this table cannot be captured, if they cannot (no primary key, a writing trigger). */
  uncapturable?: string;
}

/**
 * The tables a table references by a foreign key (oids): its local ones (`localReferences`), or, for the push,
 * also those only the remote has (push/schema-check.ts).
 */
export type References = (t: TableInfo) => readonly number[];
export const localReferences: References = (t) => t.references;

/** Does the table reference itself (by `references`)? Then its rows go out in log order, one after the other. */
export function referencesItself(t: TableInfo, references: References = localReferences): boolean {
  return references(t).includes(t.oid);
}

/** The clause an INSERT of `columns` needs when one of them is an identity ALWAYS column. */
export function overridingClause(table: TableInfo, columns: readonly string[]): string {
  return table.columns.some((c) => c.identity === "a" && columns.includes(c.name)) ? " OVERRIDING SYSTEM VALUE" : "";
}
