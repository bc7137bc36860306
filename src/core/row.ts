import { joinImage, splitImage, type Image } from "./image.js";
import type { Row } from "./conflicts.js";

/** A row image (jsonb text split by column) as a Row: values parsed, inexact numbers kept as their text. */
export function imageToRow(image: Image): Row {
  const row: Row = {};
  for (const [column, text] of image) row[column] = parseValue(text);
  return row;
}

export function textToRow(text: string | null): Row | null {
  return text === null ? null : imageToRow(splitImage(text));
}

/** A Row back to an image; bigint values become their digits, -0 stays -0. */
export function rowToImage(row: Row): Image {
  const image: Image = new Map();
  for (const [column, value] of Object.entries(row)) if (value !== undefined) image.set(column, valueText(value));
  return image;
}

/**
 * A value as JSON text. JSON.stringify writes -0 as 0: a float's -0, or a float array's element (a remote row's,
 * handed back by a resolver), would be lost; arrays are written element by element for it.
 */
function valueText(value: unknown): string {
  if (Object.is(value, -0)) return "-0";
  if (Array.isArray(value)) return `[${Array.from(value, valueText).join(",")}]`; // a hole as null, as JSON.stringify
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "null";
}

export function imageText(image: Image | null): string | null {
  return image === null ? null : joinImage(image);
}

function parseValue(text: string): unknown {
  const value: unknown = JSON.parse(text);
  // JSON numbers that do not survive the trip through a double are given as they were written.
  if (typeof value === "number" && !sameNumber(String(value), text)) return text;
  return value;
}

function sameNumber(printed: string, text: string): boolean {
  if (printed === text) return true;
  // 1.50 and 1.5, 1e3 and 1000: equal as numbers; only digits lost matter.
  return Number(printed) === Number(text) && significant(printed) === significant(text);
}

function significant(text: string): string {
  const [mantissa] = text.toLowerCase().split("e");
  return mantissa!.replace(/[-+.]/g, "").replace(/^0+/, "").replace(/0+$/, "");
}
