import type { Writable } from "node:stream";
import type { TableInfo } from "../core/table.js";
import type { Sql } from "../remote/connection.js";
import { columnList } from "../core/sql.js";

/** A COPY into one remote table, fed COPY text (see copyLayout) in pieces, then ended. */
export interface CopyInto {
  table: TableInfo;
  /** Resolves once the COPY text is handed to the connection (it may buffer it): the caller can go on reading. */
  write(text: Uint8Array): Promise<void>;
  /** Resolves once the server has taken every row. */
  end(): Promise<void>;
}

/**
 * Start a COPY into the remote table. postgres.js hands an error the server reports while data still
 * flows, or after it ended (a duplicate key, a constraint), only to the query, whose promise has already
 * resolved with the stream, and the stream then never drains or finishes: the query's reject is wrapped
 * to see it, and every wait races it. (tests/sync-copy.test.ts has such failures: they would hang, not
 * pass, if this stopped working.)
 */
export async function copyInto(sql: Sql, table: TableInfo, columns: string[]): Promise<CopyInto> {
  const query = sql.unsafe(`COPY ${table.sql} (${columnList(columns)}) FROM STDIN`) as unknown as {
    reject: (err: unknown) => void;
    writable(): Promise<Writable>;
  };
  const failed = new Promise<never>((_, fail) => {
    const reject = query.reject;
    query.reject = (err) => {
      fail(err);
      reject(err);
    };
  });
  failed.catch(() => {}); // a COPY refused at once rejects writable() too
  const stream = await query.writable();
  const stopped = Promise.race([failed, new Promise<never>((_, reject) => stream.once("error", reject))]);
  stopped.catch(() => {});
  const until = (event: "drain" | "finish") =>
    Promise.race([stopped, new Promise<void>((resolve) => stream.once(event, () => resolve()))]);
  return {
    table,
    async write(text) {
      if (!stream.write(text)) await until("drain");
    },
    async end() {
      const finished = until("finish");
      stream.end();
      await finished;
    },
  };
}

/**
 * Row images (`to_json` of a row) as lines of COPY text, for pushing created rows with COPY instead of an
 * upsert statement. A value becomes the input text json_populate_record would give the column's type (a
 * JSON string: its contents; any other JSON value: its text; a json column's value: as written), escaped
 * for COPY. Works on the UTF-8 bytes as the local database returns them: one pass, no strings built.
 */
export interface CopyLayout {
  /** The columns each line holds: the table's writable ones, in table order. */
  columns: string[];
  /**
   * Images joined by U+001E (string_agg's bytes) as COPY text, a line each; undefined when one of them is
   * not of the table's columns (an image from before a column change).
   */
  text(images: Uint8Array): Uint8Array | undefined;
}

/**
 * How a table's images turn into COPY lines; undefined for a table with array or composite columns, whose
 * JSON form (arrays, objects) is not their input text. Images are `to_json` output (no whitespace, keys in
 * column order, a json column's text as stored); anything else is no line.
 */
export function copyLayout(table: TableInfo): CopyLayout | undefined {
  if (table.columns.some((c) => c.jsonValue === "nested")) return undefined;
  const keys = table.columns.map((c, i) => utf8.encode(`${i === 0 ? "{" : ","}${JSON.stringify(c.name)}:`));
  const json = table.columns.map((c) => c.jsonValue === "json");
  const writable = table.columns.map((c) => table.writable.includes(c.name));
  return {
    columns: table.columns.filter((_, i) => writable[i]).map((c) => c.name),
    text(images) {
      const n = images.length;
      const out = Buffer.allocUnsafe(2 * n + 1); // escaping for COPY at most doubles a value
      let o = 0;
      let i = 0;
      for (;;) {
        let separator = false;
        for (let c = 0; c < keys.length; c++) {
          const key = keys[c]!;
          for (let k = 0; k < key.length; k++) if (images[i + k] !== key[k]) return undefined;
          i += key.length;
          // Written as it is read, in one pass; a column that is not written is taken back.
          const mark = o;
          if (separator) out[o++] = TAB;
          const start = o;
          if (json[c]) {
            const end = endOfJsonText(images, i);
            if (end < 0) return undefined;
            o = putJsonText(images, i, end, out, o);
            i = end;
          } else if (images[i] === QUOTE) {
            // A string's contents: JSON's \\ \n \r \t \b \f are COPY's escapes too; \" \/ and \u need decoding.
            const open = i;
            for (let b = images[++i]; b !== QUOTE; b = images[++i]) {
              if (b === BACKSLASH) {
                const escaped = images[i + 1];
                if (escaped === QUOTE || escaped === SLASH || escaped === LOWER_U) {
                  const end = endOfString(images, open);
                  if (end < 0) return undefined;
                  o =
                    start +
                    out.write(escapeText(JSON.parse(decoder.decode(images.subarray(open, end))) as string), start);
                  i = end - 1; // its closing quote
                  break;
                }
                out[o++] = b;
                b = escaped!;
                i++;
              } else if (b === undefined) return undefined;
              out[o++] = b;
            }
            i++;
          } else {
            // A number, true, false or null (\N); an object or array is not an ordinary column's value.
            for (let b = images[i]; b !== COMMA && b !== CLOSE_OBJECT; b = images[++i]) {
              if (b === undefined || b === OPEN_OBJECT || b === OPEN_ARRAY) return undefined;
              out[o++] = b;
            }
            if (o - start === 4 && out[start] === LOWER_N) o = putNull(out, start);
          }
          if (writable[c]) separator = true;
          else o = mark;
        }
        if (images[i++] !== CLOSE_OBJECT) return undefined;
        out[o++] = NEWLINE;
        if (i === n) return out.subarray(0, o);
        if (images[i++] !== RECORD_SEPARATOR) return undefined;
      }
    },
  };
}

const utf8 = new TextEncoder();
const decoder = new TextDecoder();

const TAB = 9;
const NEWLINE = 10;
const RETURN = 13;
const SPACE = 32;
const RECORD_SEPARATOR = 30;
const QUOTE = 34;
const COMMA = 44;
const SLASH = 47;
const OPEN_ARRAY = 91;
const BACKSLASH = 92;
const CLOSE_ARRAY = 93;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const LOWER_N = 110;
const LOWER_U = 117;
const UPPER_N = 78;

/** The end of the JSON value at s[i] (-1 if it does not end): a string, an object or array, or a bare token. */
function endOfValue(s: Uint8Array, i: number): number {
  const first = s[i];
  if (first === QUOTE) return endOfString(s, i);
  if (first === OPEN_OBJECT || first === OPEN_ARRAY) {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const d = s[j];
      if (d === QUOTE) {
        j = endOfString(s, j) - 1;
        if (j < 0) return -1;
      } else if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
      else if ((d === CLOSE_OBJECT || d === CLOSE_ARRAY) && --depth === 0) return j + 1;
    }
    return -1;
  }
  let j = i;
  while (j < s.length && s[j] !== COMMA && s[j] !== CLOSE_OBJECT && !isSpace(s[j]!)) j++;
  return j;
}

function endOfString(s: Uint8Array, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const d = s[j];
    if (d === BACKSLASH) j++;
    else if (d === QUOTE) return j + 1;
  }
  return -1;
}

/** A json column's value is its stored text, whitespace around it included. */
function endOfJsonText(s: Uint8Array, i: number): number {
  while (isSpace(s[i]!)) i++;
  let end = endOfValue(s, i);
  if (end < 0) return -1;
  while (isSpace(s[end]!)) end++;
  return end;
}

function isSpace(b: number): boolean {
  return b === SPACE || b === NEWLINE || b === RETURN || b === TAB;
}

/** Write a json column's text s[start, end) as COPY text: as written, escaped (JSON null is SQL NULL, see README). */
function putJsonText(s: Uint8Array, start: number, end: number, out: Buffer, o: number): number {
  let from = start;
  let to = end;
  while (isSpace(s[from]!)) from++;
  while (to > from && isSpace(s[to - 1]!)) to--;
  if (to - from === 4 && s[from] === LOWER_N) return putNull(out, o);
  for (let j = start; j < end; j++) {
    const b = s[j]!;
    const escape = ESCAPE_BYTE[b];
    if (escape === undefined) out[o++] = b;
    else {
      out[o++] = BACKSLASH;
      out[o++] = escape;
    }
  }
  return o;
}

function putNull(out: Buffer, o: number): number {
  out[o++] = BACKSLASH;
  out[o++] = UPPER_N;
  return o;
}

/** COPY text format: backslash, newline, carriage return and tab (the delimiter) escaped. */
const ESCAPE_BYTE: Record<number, number> = { [BACKSLASH]: BACKSLASH, [NEWLINE]: LOWER_N, [RETURN]: 114, [TAB]: 116 };
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeText(text: string): string {
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (ch) => ESCAPES[ch]!) : text;
}
