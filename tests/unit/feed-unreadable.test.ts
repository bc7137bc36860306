// Which refusals of a table's feed read make the pull diff that table (FeedUnreadable) and which fail the pull.
import { describe, expect, it } from "vitest";
import { Carried } from "../../src/pull/context.js";
import { FeedUnreadable } from "../../src/pull/feed.js";

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe("FeedUnreadable.of", () => {
  it("takes a value the key no longer reads, and what a policy's function meets under search_path pg_catalog", () => {
    for (const [code, message] of [
      ["22P02", "invalid input syntax for type integer"],
      ["42883", "function me() does not exist"],
      ["42P01", 'relation "members" does not exist'],
      ["42501", "permission denied for function secret"],
    ]) {
      const out = FeedUnreadable.of('["public","t"]', pgError(code!, message!));
      expect(out).toBeInstanceOf(Carried);
      const inner = (out as Carried).error as FeedUnreadable;
      expect(inner.table).toBe('["public","t"]');
      expect(inner.reason).toContain(message);
      expect(inner.reason).toContain(code === "22P02" ? "no longer reads" : "search_path");
    }
  });

  it("leaves an outage, an internal error and a bug of the read as they are: the pull fails (or retries)", () => {
    for (const code of ["08006", "57P01", "XX000", "58030", "42601", "25P02"]) {
      const err = pgError(code, "boom");
      expect(FeedUnreadable.of('["public","t"]', err)).toBe(err);
    }
    const plain = new Error("socket hang up");
    expect(FeedUnreadable.of('["public","t"]', plain)).toBe(plain);
  });
});
