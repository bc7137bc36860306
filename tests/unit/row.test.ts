// A Row (what resolvers see and return) back to a row image: the JSON text a statement populates the table from.
import { describe, expect, it } from "vitest";
import { imageText, rowToImage } from "../../src/core/row.js";

describe("rowToImage", () => {
  it("keeps -0, at the top and inside arrays (JSON.stringify writes 0), and bigint as its digits", () => {
    const image = rowToImage({ f: -0, fa: [-0, 1, [-0]], big: 9007199254740993n, n: null });
    expect(Object.fromEntries(image)).toEqual({ f: "-0", fa: "[-0,1,[-0]]", big: '"9007199254740993"', n: "null" });
  });

  it("writes an array's hole as null, as JSON.stringify does: the image stays JSON", () => {
    const sparse: unknown[] = [];
    sparse[1] = 2;
    const text = imageText(rowToImage({ fa: sparse, fns: [() => 1, undefined] }))!;
    expect(JSON.parse(text)).toEqual({ fa: [null, 2], fns: [null, null] });
  });
});
