import type { Writable } from "node:stream";
import type { TableInfo } from "../capture/catalog.js";
import type { Sql } from "../remote/connection.js";
import { quoteIdent } from "../sql.js";
import { endOfValue } from "./image.js";

/**
 * COPY `lines` (COPY text, see copyLayout) into the remote table. postgres.js hands an error the server
 * reports after the data has ended (a duplicate key, a constraint) only to the query, whose promise has
 * already resolved with the stream, and the stream never finishes: the query's reject is wrapped to see it.
 * (tests/sync-copy.test.ts has such failures: they would hang, not pass, if this stopped working.)
 */
export async function copyRows(sql: Sql, table: TableInfo, columns: string[], lines: string[]): Promise<void> {
  const query = sql.unsafe(`COPY ${table.sql} (${columns.map(quoteIdent).join(", ")}) FROM STDIN`) as unknown as { reject: (err: unknown) => void; writable(): Promise<Writable> };
  const failed = new Promise<never>((_, fail) => {
    const reject = query.reject;
    query.reject = (err) => {
      fail(err);
      reject(err);
    };
  });
  failed.catch(() => {}); // a COPY refused at once rejects writable() too
  const stream = await query.writable();
  const finished = new Promise<void>((resolve, reject) => {
    stream.once("error", reject);
    stream.once("finish", resolve);
    stream.end(`${lines.join("\n")}\n`);
  });
  await Promise.race([finished, failed]);
}

/**
 * Row images (`to_json` of a row) as lines of COPY text, for pushing created rows with COPY instead of an
 * upsert statement. A value becomes the input text json_populate_record would give the column's type (a
 * JSON string: its contents; any other JSON value: its text), escaped for COPY. One pass over the image
 * text, no objects per value.
 */
export interface CopyLayout {
  /** The columns each line holds: the table's writable ones, in table order. */
  columns: string[];
  /** The image as one line (no newline), or undefined when its columns are not the table's (DDL since). */
  line(image: string): string | undefined;
}

/**
 * How a table's images turn into COPY lines; undefined for a table with array or composite columns, whose
 * JSON form (arrays, objects) is not their input text. Images are `to_json` output (no whitespace, keys in
 * column order); anything else is no line.
 */
export function copyLayout(table: TableInfo): CopyLayout | undefined {
  if (table.columns.some((c) => c.jsonValue === "nested")) return undefined;
  const keys = table.columns.map((c, i) => `${i === 0 ? "{" : ","}${JSON.stringify(c.name)}:`);
  const json = table.columns.map((c) => c.jsonValue === "json");
  const writable = table.columns.map((c) => table.writable.includes(c.name));
  return {
    columns: table.columns.filter((_, i) => writable[i]).map((c) => c.name),
    line(image) {
      let out = "";
      let separator = "";
      let i = 0;
      for (let c = 0; c < keys.length; c++) {
        const key = keys[c]!;
        if (!image.startsWith(key, i)) return undefined;
        const start = i + key.length;
        const end = endOfValue(image, start);
        if (writable[c]) {
          out += separator + valueText(image, start, end, json[c]!);
          separator = "\t";
        }
        i = end;
      }
      return i === image.length - 1 && image.charCodeAt(i) === CLOSE ? out : undefined;
    },
  };
}

const QUOTE = 34;
const BACKSLASH = 92;
const CLOSE = 125;

/** The COPY text of the JSON value at image[start, end). */
function valueText(image: string, start: number, end: number, json: boolean): string {
  if (image.charCodeAt(start) !== QUOTE) {
    const text = image.slice(start, end);
    return text === "null" ? "\\N" : json ? escape(text) : text;
  }
  if (json) return escape(image.slice(start, end));
  for (let j = start + 1; j < end - 1; j++) {
    if (image.charCodeAt(j) === BACKSLASH) return escape(JSON.parse(image.slice(start, end)) as string);
  }
  return image.slice(start + 1, end - 1);
}

const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** COPY text format: backslash, newline, carriage return and tab (the delimiter) escaped. */
function escape(text: string): string {
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (ch) => ESCAPES[ch]!) : text;
}
