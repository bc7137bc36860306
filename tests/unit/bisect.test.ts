// The isolation of refused rows (src/core/bisect.ts): a unit that fails is halved until the rows the database
// refuses stand alone; every other row goes through exactly once, in order, in O(bad * log n) attempts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { halves, isolateRefused } from "../../src/core/bisect.js";
import { isRowLevel } from "../../src/core/sqlstate.js";

/** A PostgreSQL error as postgres.js raises it. */
function pgError(code: string, message = `error ${code}`): Error {
  return Object.assign(new Error(message), { code, severity: "ERROR" });
}

/**
 * A remote that applies a unit of items atomically: all of them, or (if any is bad) none, failing with a
 * row-level error (23505) naming nothing in particular.
 */
function remote(bad: ReadonlySet<number>) {
  const applied: number[] = [];
  const refused: { unit: number[]; err: unknown }[] = [];
  let calls = 0;
  const refusal = pgError("23505");
  return {
    applied,
    refused,
    get calls() {
      return calls;
    },
    apply: async (unit: number[]) => {
      calls++;
      if (unit.some((i) => bad.has(i))) throw refusal;
      applied.push(...unit);
    },
    refuse: async (unit: number[], err: unknown) => {
      refused.push({ unit, err });
    },
  };
}

const split = (unit: number[], err: unknown) => (isRowLevel(err) ? halves(unit) : undefined);

describe("halves", () => {
  it("splits a list into two halves, the first one larger when odd; nothing for one item or none", () => {
    expect(halves([])).toBeUndefined();
    expect(halves([1])).toBeUndefined();
    expect(halves([1, 2])).toEqual([[1], [2]]);
    expect(halves([1, 2, 3])).toEqual([[1, 2], [3]]);
    expect(halves([1, 2, 3, 4])).toEqual([
      [1, 2],
      [3, 4],
    ]);
    fc.assert(
      fc.property(fc.array(fc.integer(), { minLength: 2, maxLength: 200 }), (items) => {
        const [a, b] = halves(items)!;
        expect([...a, ...b]).toEqual(items);
        expect(a.length - b.length).toBe(items.length % 2);
      }),
      { numRuns: 300 },
    );
  });

  it("does not change its input", () => {
    const items = [1, 2, 3];
    halves(items);
    expect(items).toEqual([1, 2, 3]);
  });
});

describe("isolateRefused", () => {
  it("refuses exactly the bad items, applies every good one once and in order, in O(bad * log n) attempts", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 300 })
          .chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.nat(n - 1), { maxLength: Math.min(n, 12) }))),
        async ([n, badList]) => {
          const items = Array.from({ length: n }, (_, i) => i);
          const bad = new Set(badList);
          const r = remote(bad);
          await isolateRefused(items, r.apply, split, r.refuse);
          expect(r.applied).toEqual(items.filter((i) => !bad.has(i)));
          expect(r.refused.map((x) => x.unit)).toEqual(items.filter((i) => bad.has(i)).map((i) => [i]));
          expect(r.refused.every((x) => (x.err as { code: string }).code === "23505")).toBe(true);
          // Every failing attempt at depth d holds a bad item and has at most ceil(n / 2^d) items, so at most
          // `bad` attempts fail per level, over ceil(log2 n) levels that can still be halved; each failure
          // adds two attempts.
          const levels = Math.ceil(Math.log2(n));
          expect(r.calls).toBeLessThanOrEqual(1 + 2 * bad.size * levels);
          if (bad.size === 0) expect(r.calls).toBe(1);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("with every item bad, tries each node of the halving tree once (2n - 1 attempts)", async () => {
    for (const n of [1, 2, 3, 7, 64, 100]) {
      const items = Array.from({ length: n }, (_, i) => i);
      const r = remote(new Set(items));
      await isolateRefused(items, r.apply, split, r.refuse);
      expect(r.refused.map((x) => x.unit)).toEqual(items.map((i) => [i]));
      expect(r.calls).toBe(2 * n - 1);
    }
  });

  it("keeps a unit whole when the error is not row-level (statement-level or retryable)", async () => {
    for (const code of ["42501", "42P01", "08006", "40001"]) {
      const items = [1, 2, 3, 4];
      let calls = 0;
      const refused: number[][] = [];
      await isolateRefused(
        items,
        async () => {
          calls++;
          throw pgError(code);
        },
        split,
        async (unit) => {
          refused.push(unit);
        },
      );
      expect(calls).toBe(1);
      expect(refused).toEqual([items]);
    }
  });

  it("stops at the first refusal that throws, leaving the later parts untried", async () => {
    const r = remote(new Set([1, 5]));
    const stop = new Error("stop");
    await expect(
      isolateRefused([0, 1, 2, 3, 4, 5, 6, 7], r.apply, split, async () => {
        throw stop;
      }),
    ).rejects.toBe(stop);
    expect(r.applied).toEqual([0]); // [0,1,2,3] -> [0,1] -> [0] applied, [1] refused: stop
  });

  it("splits a unit into as many parts as `split` gives", async () => {
    const r = remote(new Set([4]));
    const thirds = (unit: number[]) =>
      unit.length < 2 ? undefined : [unit.slice(0, 1), unit.slice(1, 2), unit.slice(2)];
    await isolateRefused([1, 2, 3, 4, 5], r.apply, thirds, r.refuse);
    expect(r.applied).toEqual([1, 2, 3, 5]);
    expect(r.refused.map((x) => x.unit)).toEqual([[4]]);
  });
});
