// The CLI's remote URL argument: where a bad one came from is named (--remote or $OMINIPG_REMOTE_URL).
import { afterEach, describe, expect, it } from "vitest";
import { remoteArg } from "../../src/cli/args.js";

const before = process.env["OMINIPG_REMOTE_URL"];
afterEach(() => {
  if (before === undefined) delete process.env["OMINIPG_REMOTE_URL"];
  else process.env["OMINIPG_REMOTE_URL"] = before;
});

describe("remoteArg", () => {
  it("blames --remote for a bad --remote, and $OMINIPG_REMOTE_URL for a bad variable", () => {
    process.env["OMINIPG_REMOTE_URL"] = "mysql://u@h/db";
    expect(() => remoteArg("status", undefined, false)).toThrow(
      "$OMINIPG_REMOTE_URL must be a postgres:// or postgresql:// URL",
    );
    expect(() => remoteArg("status", "mysql://u@h/db", false)).toThrow("--remote must be a postgres://");
    expect(remoteArg("status", "postgres://u@h/db", false)).toBe("postgres://u@h/db");
  });
});
