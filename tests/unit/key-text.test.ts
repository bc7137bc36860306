// A row's identity in the log (core/key-text.ts): equal key values give one text whatever the writer's session.
import { describe, expect, it } from "vitest";
import { keyText } from "../../src/core/key-text.js";
import type { TableInfo } from "../../src/core/table.js";

function table(types: Record<string, string>): TableInfo {
  const names = Object.keys(types);
  return {
    oid: 1,
    schema: "public",
    name: "t",
    sql: `"public"."t"`,
    columns: names.map((name) => ({
      name,
      type: types[name]!,
      typeId: "",
      generated: false,
      identity: "",
      jsonValue: "text",
      // As the catalog says it (capture/catalog.ts), from the type these tests name.
      ...(/with time zone$/.test(types[name]!)
        ? { spelling: "timestamptz" as const }
        : types[name] === "numeric"
          ? { spelling: "numeric" as const }
          : {}),
    })),
    writable: names,
    updatable: names,
    primaryKey: names,
    logged: names,
    references: [],
  };
}

const key = (t: TableInfo, ...values: string[]) => keyText(t, new Map(t.primaryKey.map((c, i) => [c, values[i]!])));

describe("keyText", () => {
  const tz = table({ at: "timestamp with time zone" });

  it("spells one instant one way, whatever the offset it was printed with", () => {
    // to_json of 2024-01-01 10:00:00.12345 UTC under UTC, Europe/Berlin, Asia/Kolkata, America/St_Johns.
    const spellings = [
      '"2024-01-01T10:00:00.12345+00:00"',
      '"2024-01-01T11:00:00.12345+01:00"',
      '"2024-01-01T15:30:00.12345+05:30"',
      '"2024-01-01T06:30:00.12345-03:30"',
    ];
    expect(new Set(spellings.map((s) => key(tz, s))).size).toBe(1);
    expect(key(tz, '"2024-01-01T10:00:00.123451+00:00"')).not.toBe(key(tz, spellings[0]!));
    // Offsets in seconds (local mean time) and years before Christ.
    expect(key(tz, '"1850-01-01T05:53:28+05:53:28"')).toBe(key(tz, '"1850-01-01T00:00:00+00:00"'));
    expect(key(tz, '"0044-03-15T10:53:28+00:53:28 BC"')).toBe(key(tz, '"0044-03-15T10:00:00+00:00 BC"'));
    expect(key(tz, '"0044-03-15T10:00:00+00:00 BC"')).not.toBe(key(tz, '"0044-03-15T10:00:00+00:00"'));
    expect(key(table({ at: "timestamp(3) with time zone" }), '"2024-01-01T11:00:00+01:00"')).toBe(
      key(tz, '"2024-01-01T10:00:00+00:00"'),
    );
  });

  it("leaves what is not an instant as it is (infinity, years past a Date's range)", () => {
    expect(key(tz, '"infinity"')).toBe('"infinity"');
    expect(key(tz, '"-infinity"')).toBe('"-infinity"');
    expect(key(tz, '"290000-01-01T00:00:00+00:00"')).toBe('"290000-01-01T00:00:00+00:00"');
    expect(key(tz, "null")).toBe("null");
  });

  it("spells a numeric of any scale one way; a numeric with a typmod, and other types, as they are", () => {
    const n = table({ n: "numeric" });
    expect(key(n, "1.00")).toBe(key(n, "1"));
    expect(key(n, "1.50")).toBe("1.5");
    expect(key(n, "-0.000")).toBe("0");
    expect(key(n, "100")).toBe("100");
    expect(key(n, "10.01")).toBe("10.01");
    expect(key(n, '"NaN"')).toBe('"NaN"');
    expect(key(table({ n: "numeric(10,2)" }), "1.50")).toBe("1.50");
    expect(key(table({ k: "text", n: "numeric" }), '"a,b"', "2.0")).toBe('"a,b",2');
  });
});
