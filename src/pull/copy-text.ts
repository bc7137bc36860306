/**
 * Reading PostgreSQL's COPY text format (the default of `COPY ... TO STDOUT`), as much as the copy and feed
 * strategies need: rows end with a newline, fields are separated by tabs, `\N` is NULL, and a backslash escapes
 * a tab, newline, carriage return, backslash (and `\b \f \v`, octal `\123`, hex `\x1F`) inside a value, so a
 * raw tab or newline byte always ends a field or a row. Only the leading fields of rows are decoded (the key
 * columns, which the copy lists first; the feed's found flag); the rest of a row is never looked at.
 */

const NL = 0x0a;
const TAB = 0x09;
const BACKSLASH = 0x5c;
const T = 0x74;
const F = 0x66;

const decoder = new TextDecoder("utf-8", { fatal: false });

/** The number of rows in COPY text (each ends with a newline). */
export function rowCount(data: Uint8Array): number {
  let n = 0;
  for (let at = data.indexOf(NL); at !== -1; at = data.indexOf(NL, at + 1)) n++;
  return n;
}

/** The first `n` fields of the row starting at `start` (a value of each, unescaped; null for `\N`). */
export function leadingFields(data: Uint8Array, start: number, n: number): (string | null)[] {
  const out: (string | null)[] = [];
  let at = start;
  for (let i = 0; i < n; i++) {
    let end = at;
    while (end < data.length && data[end] !== TAB && data[end] !== NL) end++;
    if (end === at + 2 && data[at] === BACKSLASH && data[at + 1] === 0x4e)
      out.push(null); // \N
    else out.push(unescape(data.subarray(at, end)));
    if (end >= data.length || (data[end] === NL && i < n - 1)) throw new Error("COPY text row has too few fields");
    at = end + 1;
  }
  return out;
}

/** The leading `n` fields of the last row, or undefined for no rows. */
export function lastRowFields(data: Uint8Array, n: number): (string | null)[] | undefined {
  if (data.length === 0) return undefined;
  const end = data.length - 1; // the last row's own newline
  const start = end === 0 ? 0 : data.lastIndexOf(NL, end - 1) + 1;
  return leadingFields(data, start, n);
}

/** The leading `n` fields of every row: `columns[i][r]` is field i of row r. */
export function leadingColumns(data: Uint8Array, n: number): (string | null)[][] {
  const columns: (string | null)[][] = Array.from({ length: n }, () => []);
  for (let start = 0; start < data.length;) {
    const fields = leadingFields(data, start, n);
    for (let i = 0; i < n; i++) columns[i]!.push(fields[i]!);
    const nl = data.indexOf(NL, start);
    start = nl === -1 ? data.length : nl + 1;
  }
  return columns;
}

/** The rows of COPY text, each with its newline. */
export function rowsOf(data: Uint8Array): Uint8Array[] {
  const rows: Uint8Array[] = [];
  for (let start = 0, nl = data.indexOf(NL); nl !== -1; start = nl + 1, nl = data.indexOf(NL, start))
    rows.push(data.subarray(start, nl + 1));
  return rows;
}

/** One row of COPY text as a JSON object of its `columns`' values as text (null for NULL). */
export function rowImage(row: Uint8Array, columns: readonly string[]): string {
  const fields = leadingFields(row, 0, columns.length);
  return JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, fields[i]])));
}

/** Rows of COPY text, and how many. */
export interface CopyRows {
  data: Uint8Array;
  rows: number;
}

/**
 * The rows of COPY text parted by their first field, a boolean (`t` or `f`), which is dropped from them: the
 * feed's fetch (pull/feed-sql.ts) leads each row with whether the remote has one for the key.
 */
export function partByFlag(data: Uint8Array): { yes: CopyRows; no: CopyRows } {
  const yes: Uint8Array[] = [];
  const no: Uint8Array[] = [];
  for (let start = 0; start < data.length;) {
    const nl = data.indexOf(NL, start);
    if (nl === -1) throw new Error("COPY text ends inside a row");
    const flag = data[start];
    if (data[start + 1] !== TAB || (flag !== T && flag !== F))
      throw new Error("COPY text row does not lead with a boolean");
    (flag === T ? yes : no).push(data.subarray(start + 2, nl + 1));
    start = nl + 1;
  }
  return { yes: { data: Buffer.concat(yes), rows: yes.length }, no: { data: Buffer.concat(no), rows: no.length } };
}

/** A field's value from its escaped bytes. */
function unescape(field: Uint8Array): string {
  if (field.indexOf(BACKSLASH) === -1) return decoder.decode(field);
  const out = new Uint8Array(field.length);
  let o = 0;
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!;
    if (c !== BACKSLASH || i + 1 >= field.length) {
      out[o++] = c;
      continue;
    }
    const e = field[++i]!;
    const simple = ESCAPES[e];
    if (simple !== undefined) out[o++] = simple;
    else if (e >= 0x30 && e <= 0x37) {
      // \1 to \377: up to three octal digits
      let v = e - 0x30;
      for (let k = 0; k < 2 && i + 1 < field.length && field[i + 1]! >= 0x30 && field[i + 1]! <= 0x37; k++)
        v = v * 8 + (field[++i]! - 0x30);
      out[o++] = v & 0xff;
    } else if (e === 0x78 && i + 1 < field.length && isHex(field[i + 1]!)) {
      // \xF or \xFF
      let v = hexValue(field[++i]!);
      if (i + 1 < field.length && isHex(field[i + 1]!)) v = v * 16 + hexValue(field[++i]!);
      out[o++] = v;
    } else out[o++] = e; // any other character stands for itself (\\ included)
  }
  return decoder.decode(out.subarray(0, o));
}

/** \b \f \n \r \t \v */
const ESCAPES: Record<number, number> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10;
}
