import type { Image } from "./image.js";
import type { ColumnInfo, TableInfo } from "./table.js";

/**
 * A row's identity in the change log: its key values as text, spelled one way for equal values. A log image holds
 * each value as `to_json` printed it in the writer's session: a timestamptz with the session's time zone offset
 * (one instant, spelled differently after a `SET TimeZone`), an unconstrained numeric with the scale it was
 * written with (1.0 = 1.00). The coalescing of a row's changes compares keys as text: such spellings made one row
 * two (two writes of one key in one statement, refused for good), or a delete and an insert of the same key
 * two rows (the delete, applied after the insert, removed the row remotely); so did a float's -0 and 0, and a
 * domain over these types alike (ColumnInfo.spelling). Values of other types print one way already, but for a few
 * equal in their type's comparison only (an interval's 1 mon and 30 days).
 */

type Canonical = (text: string) => string;

/** `to_json` of a timestamptz: "Y-MM-DDTHH:MM:SS[.frac]±HH:MM[:SS][ BC]" (or "infinity", "-infinity"). */
const ISO = /^"(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-])(\d\d):(\d\d)(?::(\d\d))?( BC)?"$/;

/** The instant in UTC, as milliseconds since 1970 and microseconds; the text as it is where it is not an instant. */
function instant(text: string): string {
  const m = ISO.exec(text);
  if (!m) return text;
  const [, y, mo, d, h, mi, s, frac = "", sign, oh, om, os = "0", bc] = m;
  const date = new Date(0);
  date.setUTCFullYear(bc ? 1 - Number(y) : Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s), 0);
  const offset = (sign === "-" ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os)) * 1000;
  const ms = date.getTime() - offset;
  return Number.isFinite(ms) ? `${ms}.${frac.padEnd(6, "0")}` : text; // past what a Date holds: as it is
}

/** A numeric's digits without trailing fractional zeros (and -0 as 0). */
function digits(text: string): string {
  if (!/^-?\d+\.\d+$/.test(text)) return text === "-0" ? "0" : text;
  const trimmed = text.replace(/\.?0+$/, "");
  return trimmed === "-0" ? "0" : trimmed;
}

/** A float's -0 as 0 (equal, printed apart). */
function unsigned(text: string): string {
  return text === "-0" ? "0" : text;
}

const SPELLINGS: Record<NonNullable<ColumnInfo["spelling"]>, Canonical> = {
  timestamptz: instant,
  numeric: digits,
  float: unsigned,
};

const keys = new WeakMap<TableInfo, (Canonical | undefined)[]>();

function canonicalOf(t: TableInfo): (Canonical | undefined)[] {
  let list = keys.get(t);
  if (!list) {
    list = t.primaryKey.map((name) => {
      const spelling = t.columns.find((c) => c.name === name)?.spelling;
      return spelling === undefined ? undefined : SPELLINGS[spelling];
    });
    keys.set(t, list);
  }
  return list;
}

/** The key of `image` (column -> JSON text) as one text, the same for equal key values. */
export function keyText(t: TableInfo, image: ReadonlyMap<string, string>): string {
  const canonical = canonicalOf(t);
  return t.primaryKey
    .map((c, i) => {
      const text = image.get(c) ?? "null";
      return canonical[i] ? canonical[i](text) : text;
    })
    .join(",");
}

/** The key's values as the log spells them, for messages (keyText is the row's identity). */
export function keyLabel(table: TableInfo, image: Image): string {
  return table.primaryKey.map((c) => image.get(c) ?? "null").join(",");
}

/** The key's columns of an image. */
export function keyImage(table: TableInfo, image: Image): Image {
  return new Map(table.primaryKey.map((c) => [c, image.get(c) ?? "null"]));
}

/**
 * The key with the columns refusing NULL (TableInfo.refusingNull) of `image`, the row it is the key of: what is
 * read back as a row of the table (json_populate_record would run their absence through the domain as NULL).
 */
export function readableKey(table: TableInfo, key: Image, image: Image | null): Image {
  if (!table.refusingNull || !image) return key;
  const out = new Map(key);
  for (const c of table.refusingNull) if (!out.has(c) && image.has(c)) out.set(c, image.get(c)!);
  return out;
}
