/**
 * The text of PostgreSQL's `test_decoding` output plugin (logical decoding), read back: which table a change
 * touched and the values of its columns, so that the change feed (remote/feed-drain.ts) can keep each change's
 * key. The format (contrib/test_decoding, PostgreSQL 10-18), one line per change:
 *
 *   table public.items: INSERT: id[integer]:1 name[text]:'it''s' price[numeric]:null
 *   table public.items: UPDATE: id[integer]:1 name[text]:'new'
 *   table public.items: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'new'
 *   table public.items: DELETE: id[integer]:2
 *   table public.items, public."My Table": TRUNCATE: cascade
 *
 * Names are printed by quote_identifier (unquoted only when all of [a-z0-9_] and not a keyword), types by
 * format_type (may hold spaces, quotes, brackets: `character varying(10)[]`), values by their type's output
 * function: numbers unquoted, booleans as true/false, bit strings as B'0101', everything else quoted with ''
 * for a quote; `null`; `unchanged-toast-datum` for an out-of-line value an UPDATE did not change. The old key
 * of an UPDATE comes only when the key changed (or with REPLICA IDENTITY FULL); DELETE prints the replica
 * identity's columns, or `(no-tuple-data)` without one.
 *
 * Parsing is strict: a line that does not read exactly as above yields `unreadable` for its table (the feed
 * then asks readers to re-read the whole table) rather than a wrong key.
 */

/** A table as the plugin printed it: its name parts, unquoted. */
export interface DecodedTable {
  schema: string;
  name: string;
}

/** A column value: its text, null, or TOAST (an unchanged out-of-line value, not printed). */
export type DecodedValue = string | null | typeof TOAST;
export const TOAST: unique symbol = Symbol("unchanged-toast-datum");

export type DecodedChange =
  | {
      kind: "row";
      op: "INSERT" | "UPDATE" | "DELETE";
      table: DecodedTable;
      /** The old key (DELETE, and an UPDATE that changed its key); undefined when not printed. */
      old: Map<string, DecodedValue> | undefined;
      /** The new row (INSERT, UPDATE); undefined for DELETE. */
      new: Map<string, DecodedValue> | undefined;
    }
  | { kind: "truncate"; tables: DecodedTable[] }
  /** A change of `table` whose columns could not be read. */
  | { kind: "unreadable"; table: DecodedTable }
  /** Not a change of a table (BEGIN, COMMIT, a logical message). */
  | { kind: "other" };

const OPS = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] as const;

/** Read one line of test_decoding output. Throws only when not even the table can be read from a `table` line. */
export function parseDecoded(line: string): DecodedChange {
  if (!line.startsWith("table ")) return { kind: "other" };
  const r = new Reader(line, 6);
  const tables: DecodedTable[] = [readTable(r)];
  while (r.take(", ")) tables.push(readTable(r));
  if (!r.take(": ")) throw new Error(`unreadable change: ${line.slice(0, 200)}`);
  const op = OPS.find((o) => r.take(`${o}:`));
  if (!op) throw new Error(`unreadable change: ${line.slice(0, 200)}`);
  if (op === "TRUNCATE") return { kind: "truncate", tables };
  const table = tables[0]!;
  if (tables.length !== 1) return { kind: "unreadable", table };
  try {
    if (op === "INSERT") return { kind: "row", op, table, old: undefined, new: readTuple(r, true) };
    if (op === "DELETE") return { kind: "row", op, table, old: readTuple(r, true), new: undefined };
    let old: Map<string, DecodedValue> | undefined;
    if (r.take(" old-key:")) {
      old = readTuple(r, false);
      if (!r.take(" new-tuple:")) return { kind: "unreadable", table };
    }
    return { kind: "row", op, table, old, new: readTuple(r, true) };
  } catch {
    return { kind: "unreadable", table };
  }
}

class Reader {
  constructor(
    readonly s: string,
    public p: number,
  ) {}

  take(text: string): boolean {
    if (!this.s.startsWith(text, this.p)) return false;
    this.p += text.length;
    return true;
  }

  get end(): boolean {
    return this.p >= this.s.length;
  }
}

function readTable(r: Reader): DecodedTable {
  const schema = readIdent(r);
  if (!r.take(".")) throw new Error(`unreadable table name in: ${r.s.slice(0, 200)}`);
  return { schema, name: readIdent(r) };
}

/** An identifier as quote_identifier prints it. */
function readIdent(r: Reader): string {
  const { s } = r;
  if (s[r.p] === '"') return readQuoted(r, '"', "quoted identifier");
  PLAIN.lastIndex = r.p;
  if (!PLAIN.test(s)) throw new Error(`no identifier at ${r.p}`);
  const start = r.p;
  r.p = PLAIN.lastIndex;
  return s.slice(start, r.p);
}

/** Text between `quote`s (the reader is at the opening one), a doubled quote standing for one. */
function readQuoted(r: Reader, quote: string, what: string): string {
  const { s } = r;
  let out = "";
  let from = r.p + 1;
  for (let i = s.indexOf(quote, from); i >= 0; i = s.indexOf(quote, i + 2)) {
    if (s[i + 1] !== quote) {
      r.p = i + 1;
      return out + s.slice(from, i);
    }
    out += s.slice(from, i + 1);
    from = i + 2;
  }
  throw new Error(`unterminated ${what}`);
}

/**
 * An unquoted identifier's characters. Lines are scanned with this expression and indexOf, not a loop per
 * character: the drain parses each line once, mostly before the JIT has compiled the parser (2,000 lines in a new
 * process: ~35 ms with a loop per character, ~25 ms so; ~1.5 ms once compiled).
 */
const PLAIN = /[a-z0-9_]+/y;

/**
 * Columns ` name[type]:value` up to the end of the line, or (when `toEnd` is false) up to ` new-tuple:`.
 * ` (no-tuple-data)` is an empty tuple.
 */
function readTuple(r: Reader, toEnd: boolean): Map<string, DecodedValue> {
  const cols = new Map<string, DecodedValue>();
  if (r.take(" (no-tuple-data)")) {
    if (toEnd && !r.end) throw new Error("data after (no-tuple-data)");
    return cols;
  }
  for (;;) {
    if (r.end) {
      if (!toEnd) throw new Error("old key without new tuple");
      return cols;
    }
    if (!toEnd && r.s.startsWith(" new-tuple:", r.p)) return cols;
    if (!r.take(" ")) throw new Error(`expected a column at ${r.p}`);
    const name = readIdent(r);
    if (!r.take("[")) throw new Error(`expected a type at ${r.p}`);
    skipType(r);
    cols.set(name, readValue(r));
  }
}

/** A type name up to its closing `]:` (format_type: may hold quoted names, spaces, `[]`). */
function skipType(r: Reader): void {
  const { s } = r;
  const end = s.indexOf("]:", r.p);
  if (end >= 0 && !s.slice(r.p, end).includes('"')) {
    r.p = end + 2;
    return;
  }
  let quoted = false;
  for (let i = r.p; i < s.length; i++) {
    const ch = s[i];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === "]" && s[i + 1] === ":") {
      r.p = i + 2;
      return;
    }
  }
  throw new Error("unterminated type");
}

function readValue(r: Reader): DecodedValue {
  const { s } = r;
  if (s[r.p] === "'") return readQuoted(r, "'", "value");
  const start = r.p;
  const stop = s.indexOf(" ", start);
  r.p = stop < 0 ? s.length : stop;
  const text = s.slice(start, r.p);
  if (text === "") throw new Error(`empty value at ${start}`);
  if (text === "null") return null;
  if (text === "unchanged-toast-datum") return TOAST;
  if (text.startsWith("B'") && text.endsWith("'")) return text.slice(2, -1);
  return text;
}
