// Conflict records keep rows as jsonb, which refuses two escapes valid json has (a json column may hold them):
// those become the text they are written as; everything else stays as it is.
import { describe, expect, it } from "vitest";
import { jsonbSafe } from "../../src/core/json-text.js";

describe("jsonbSafe", () => {
  it.each([
    [String.raw`{"a":"x\u0000y"}`, String.raw`{"a":"x\\u0000y"}`],
    [String.raw`"\ud83d"`, String.raw`"\\ud83d"`],
    [String.raw`"\ude00"`, String.raw`"\\ude00"`],
    [String.raw`["\udc00\ud800"]`, String.raw`["\\udc00\\ud800"]`],
    [String.raw`"\\\u0000"`, String.raw`"\\\\u0000"`],
  ])("%s -> %s", (text, safe) => {
    expect(jsonbSafe(text)).toBe(safe);
    expect(JSON.parse(safe)).toBeDefined();
  });

  it.each([String.raw`"\ud83d\ude00"`, String.raw`"\\u0000"`, String.raw`{"é": "\u00e9\n"}`, `[1, 2.50, null]`])(
    "%s is kept",
    (text) => expect(jsonbSafe(text)).toBe(text),
  );
});
