// A read of the log as one value (log/queue.ts) that is too large for one value or one JavaScript string is
// made again with half as many ids, down to one: a queue of large rows (thousands of rows of a few hundred KB,
// past 1 GB together) is pushed in smaller pieces instead of failing every sync. Measured end to end in the
// session that found it (5,000 rows of 250 KB: every sync failed with 53200, now pushed); here, the rule.
import { describe, expect, it } from "vitest";
import { fewerIfTooLarge } from "../../src/log/queue.js";

const pgError = (code: string) => Object.assign(new Error("out of memory"), { code, severity: "ERROR" });

describe("fewerIfTooLarge", () => {
  it.each([
    ["53200 (a value past 1 GB)", pgError("53200")],
    ["54000 (a program limit)", pgError("54000")],
    ["a string past what JavaScript holds", new RangeError("Invalid string length")],
  ])("%s: halves the ids read until the read passes", async (_, error) => {
    const tried: number[] = [];
    const read = (size: number) => {
      tried.push(size);
      return size > 600 ? Promise.reject(error) : Promise.resolve(`read ${size}`);
    };
    expect(await fewerIfTooLarge(5000, read)).toBe("read 313");
    expect(tried).toEqual([5000, 2500, 1250, 625, 313]);
  });

  it("gives up at one id, and passes any other failure at once", async () => {
    await expect(fewerIfTooLarge(4, () => Promise.reject(pgError("53200")))).rejects.toMatchObject({ code: "53200" });
    const tried: number[] = [];
    const other = pgError("42P01");
    await expect(
      fewerIfTooLarge(5000, (size) => {
        tried.push(size);
        return Promise.reject(other);
      }),
    ).rejects.toBe(other);
    expect(tried).toEqual([5000]);
  });
});
