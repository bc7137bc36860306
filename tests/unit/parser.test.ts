// The planner's parse (capture/parser.ts): invalid SQL runs as-is for PostgreSQL to report, but any other failure
// of the parser must stop the statement (a write run as-is would not be captured).
import { describe, expect, it } from "vitest";
import { loadParser, parseIfValid } from "../../src/capture/parser.js";

describe("parseIfValid", () => {
  it("throws while the parser is not loaded, instead of calling the text invalid", () => {
    expect(() => parseIfValid("INSERT INTO t VALUES (1)")).toThrow(/not loaded/);
  });

  it("gives the statements of valid SQL, undefined for a syntax error", async () => {
    await loadParser();
    expect(parseIfValid("INSERT INTO t VALUES (1); SELECT 2")).toHaveLength(2);
    for (const sql of ["SELEC 1", "INSERT INTO t VALUES (1", "SELECT 'abc", "SELECT 1; DELET FROM t"])
      expect(parseIfValid(sql), sql).toBeUndefined();
  });
});
