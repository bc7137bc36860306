/**
 * The text of json columns (json, not jsonb), kept byte for byte on every path.
 *
 * PostgreSQL stores a json value as the text it was given: whitespace, key order, duplicate keys, escapes and
 * the spelling of numbers are part of it. Capture's row images (`to_json` of the row) hold that text, and the
 * push's COPY keeps it; but whatever reads a value out of JSON in SQL (`json_populate_record`, `->`) drops the
 * whitespace around it, and jsonb rewrites all of it. So wherever rows travel as JSON for SQL to read, a json
 * column's value travels as a JSON string holding its text ("encoded"), which SQL decodes (`field`):
 * - an image (column -> JSON text, core/image.ts) holds the text itself; `encodeImage` writes the JSON a
 *   statement reads, and `fields` decodes what it populates;
 * - `rowJsonb` renders a row as jsonb with its json columns as strings of their text: as canonical as
 *   `to_jsonb` for every other type, exact for json (pulled rows, their hashes and verify() use it).
 * JSON null in a json column counts as SQL NULL, as in a row image, which cannot tell them apart; except in rows
 * the pull reads, which keep it. Rows the pull reads as JSON, and the remote rows a push's conflicts are settled
 * against (`rowJsonb(t, row, true)`), also carry the columns whose JSON form loses something as strings of their
 * text (`carriedColumns`): jsonb and json domains (JSON null would be read as SQL NULL), floats (-0), arrays and
 * composites (array bounds; a null element of a jsonb array; what their elements lose), and domains over any of
 * them. json_populate_record reads such a string with the type's input function; a jsonb or json domain one is
 * decoded like json (`fields(t, row, true)`).
 */
import { joinImage, type Image } from "./image.js";
import { quoteIdent, quoteLiteral } from "./sql.js";
import type { TableInfo } from "./table.js";

const columnsOf = new WeakMap<TableInfo, readonly string[]>();

/** The table's json columns (not jsonb), in table order. */
export function jsonColumns(t: TableInfo): readonly string[] {
  let columns = columnsOf.get(t);
  if (columns === undefined) {
    columns = t.columns.filter((c) => c.type === "json").map((c) => c.name);
    columnsOf.set(t, columns);
  }
  return columns;
}

const carriedOf = new WeakMap<TableInfo, readonly string[]>();

/**
 * The columns whose `to_jsonb` form loses something, in table order: jsonb and domains over json or jsonb (JSON
 * null, a json domain's text), floats and domains over them (-0), arrays, composites and domains over them (array
 * bounds, a nested float's -0 or json's text, a null element of a jsonb array).
 */
export function carriedColumns(t: TableInfo): readonly string[] {
  let columns = carriedOf.get(t);
  if (columns === undefined) {
    columns = t.columns
      .filter((c) => c.jsonValue === "nested" || isJsonLike(c) || c.spelling === "float")
      .map((c) => c.name);
    carriedOf.set(t, columns);
  }
  return columns;
}

/** A jsonb column, or a domain over json or jsonb: carried as a JSON string of its text, decoded as JSON. */
function isJsonLike(c: TableInfo["columns"][number]): boolean {
  return c.jsonValue === "json" && c.type !== "json";
}

/** The image as the JSON a statement reads (of `columns`, all when omitted), its json columns encoded. */
export function encodeImage(t: TableInfo, image: Image, columns?: Iterable<string>): string {
  const json = jsonColumns(t);
  if (json.length === 0) return joinImage(image, columns);
  const encoded = new Map(image);
  for (const c of json) {
    const value = image.get(c);
    if (value !== undefined && value.trim() !== "null") encoded.set(c, JSON.stringify(value));
  }
  return joinImage(encoded, columns);
}

/**
 * SQL: the row (an alias, or a row-valued expression like `x.r`) as jsonb, its json columns as strings of
 * their text (and, with `carry`, its carriedColumns); `to_jsonb(row)` for a table without such columns. The other
 * columns' object is made without them: `to_jsonb` turns a json value into jsonb, which refuses some valid json
 * (`"\u0000"`).
 */
export function rowJsonb(t: TableInfo, row: string, carry = false): string {
  const json = jsonColumns(t);
  const carried = carry ? carriedColumns(t) : [];
  if (json.length === 0 && carried.length === 0) return `to_jsonb(${row})`;
  // Carried (a pulled row), a json value keeps its JSON null apart from SQL NULL too.
  const pairs = [
    ...json.map(
      (c) =>
        `${quoteLiteral(c)}, ${carry ? `(${row}).${quoteIdent(c)}::text` : jsonText(`(${row}).${quoteIdent(c)}`, "json")}`,
    ),
    ...carried.map((c) => `${quoteLiteral(c)}, (${row}).${quoteIdent(c)}::text`),
  ];
  const objects: string[] = [];
  // jsonb_build_object takes at most 100 arguments.
  for (let i = 0; i < pairs.length; i += 50) objects.push(`jsonb_build_object(${pairs.slice(i, i + 50).join(", ")})`);
  const apart = new Set([...json, ...carried]);
  const others = t.columns
    .filter((c) => !apart.has(c.name))
    .map((c) => `(${row}).${quoteIdent(c.name)} AS ${quoteIdent(c.name)}`);
  const rest =
    others.length === 0
      ? `'{}'::jsonb`
      : `(SELECT to_jsonb(ominipg_o) FROM (SELECT ${others.join(", ")}) AS ominipg_o)`;
  return `(${rest} || ${objects.join(" || ")})`;
}

/**
 * SQL: the text of a json or jsonb value, NULL for JSON null (it counts as SQL NULL, as in a row image). Cast to
 * `type` first: the other side's column may be of another type, e.g. when verify() compares differing schemas.
 */
export function jsonText(value: string, type: "json" | "jsonb"): string {
  return `CASE WHEN ${type}_typeof(${value}::${type}) = 'null' THEN NULL ELSE ${value}::${type}::text END`;
}

/** SQL: a column of a row populated from JSON with json columns encoded (`json_populate_record`), decoded. */
export function field(t: TableInfo, row: string, column: string): string {
  const value = `(${row}).${quoteIdent(column)}`;
  return jsonColumns(t).includes(column) ? `(${value} #>> '{}')::json` : value;
}

/** SQL: `"a" = <field a>, ...`: an UPDATE's SET list taking `columns` from such a row. */
export function assignments(t: TableInfo, columns: readonly string[], row: string): string {
  return columns.map((c) => `${quoteIdent(c)} = ${field(t, row, c)}`).join(", ");
}

/**
 * SQL: every column of such a row, decoded, as a select list (table order, the table's column names); with
 * `carried`, of a row made by `rowJsonb(t, row, true)` (its jsonb columns decoded too).
 */
export function fields(t: TableInfo, row: string, carried = false): string {
  return t.columns
    .map((c) => {
      // A carried jsonb (or json domain) value is a JSON string of its text, like a json one (carriedColumns holds
      // every such column); the other carried ones are read from their string by their type's input function.
      const value =
        carried && isJsonLike(c) ? `((${row}).${quoteIdent(c.name)} #>> '{}')::${c.type}` : field(t, row, c.name);
      return `${value} AS ${quoteIdent(c.name)}`;
    })
    .join(", ");
}

/**
 * JSON text that jsonb takes: the escapes it refuses in valid json (`\u0000`, a surrogate that is not part of a
 * pair) written as the text they are (their backslash escaped), all else as it is. For records of rows kept as
 * jsonb (conflicts): a json column may hold them.
 */
export function jsonbSafe(text: string): string {
  let pairEnd = -1; // where the low half of a pair kept whole ends
  return text.replace(/\\(?:u([0-9a-fA-F]{4})|[\s\S])/g, (escape, hex: string | undefined, at: number) => {
    if (hex === undefined) return escape;
    const code = parseInt(hex, 16);
    if (code >= 0xd800 && code <= 0xdbff && /^\\u[dD][c-fC-F][0-9a-fA-F]{2}/.test(text.slice(at + 6, at + 12))) {
      pairEnd = at + 12;
      return escape;
    }
    if (code === 0 || (code >= 0xd800 && code <= 0xdfff && at + 6 !== pairEnd)) return `\\${escape}`;
    return escape;
  });
}
