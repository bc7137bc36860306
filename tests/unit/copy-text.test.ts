import { describe, expect, it } from "vitest";
import { lastRowFields, leadingColumns, leadingFields, partByFlag, rowCount } from "../../src/pull/copy-text.js";

const enc = (s: string) => new TextEncoder().encode(s);

describe("COPY text", () => {
  // As PostgreSQL's COPY TO writes them: a tab, newline, carriage return and backslash inside a value escaped.
  const text = enc("1\ta\\tb\tx\n2\tc\\\\d\\ne\t\\N\n3\tü \\r\\b\\f\\v end\ty\n");

  it("counts rows, and reads leading fields with their escapes undone", () => {
    expect(rowCount(text)).toBe(3);
    expect(rowCount(enc(""))).toBe(0);
    expect(leadingFields(text, 0, 2)).toEqual(["1", "a\tb"]);
    expect(leadingColumns(text, 2)).toEqual([
      ["1", "2", "3"],
      ["a\tb", "c\\d\ne", "ü \r\b\f\v end"],
    ]);
    expect(leadingColumns(text, 3)[2]).toEqual(["x", null, "y"]);
  });

  it("reads the last row's key, an empty value included", () => {
    expect(lastRowFields(text, 2)).toEqual(["3", "ü \r\b\f\v end"]);
    expect(lastRowFields(enc("\n"), 1)).toEqual([""]);
    expect(lastRowFields(enc("a\t\n"), 2)).toEqual(["a", ""]);
    expect(lastRowFields(enc(""), 1)).toBeUndefined();
  });

  it("undoes octal and hex escapes as bytes (COPY FROM accepts them)", () => {
    expect(leadingFields(enc("\\101\\x42\\x4\\7z\\q\n"), 0, 1)).toEqual(["AB\u0004\u0007zq"]);
    expect(leadingFields(enc("\\303\\274\n"), 0, 1)).toEqual(["ü"]);
  });

  it("refuses a row with fewer fields than asked for", () => {
    expect(() => leadingFields(enc("1\n"), 0, 2)).toThrow(/too few fields/);
  });

  it("parts rows by their leading boolean, which it drops, whatever the values hold", () => {
    const dec = (b: Uint8Array) => new TextDecoder().decode(b);
    // A value that is "t" or "f", or holds an escaped tab or newline, does not move a row.
    const { yes, no } = partByFlag(enc("t\t1\ta\\tf\\n\nf\t2\t\\N\nt\t3\tt\t\\N\nt\tf\t\n"));
    expect([yes.rows, dec(yes.data)]).toEqual([3, "1\ta\\tf\\n\n3\tt\t\\N\nf\t\n"]);
    expect([no.rows, dec(no.data)]).toEqual([1, "2\t\\N\n"]);
    expect(partByFlag(enc(""))).toEqual({
      yes: { data: Buffer.alloc(0), rows: 0 },
      no: { data: Buffer.alloc(0), rows: 0 },
    });
    expect(() => partByFlag(enc("t\t1\nx\t2\n"))).toThrow(/boolean/);
    expect(() => partByFlag(enc("t\t1"))).toThrow(/inside a row/);
  });
});
