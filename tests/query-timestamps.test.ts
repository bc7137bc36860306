// A timestamp (without time zone) written as a Date comes back as the same Date whatever the process's time zone:
// its wall time is read as UTC, the zone a Date parameter is sent in (PGlite and postgres.js read it in the
// process's zone, so every value came back shifted outside UTC). Checked in a child process run in New York.
// Direct mode reads it as postgres.js does, in the process's time zone (docs/API.md).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { fixtureArgs } from "./process-helpers.js";

const run = promisify(execFile);

describe("timestamp without time zone in a process outside UTC", () => {
  it("a Date comes back as written", async () => {
    const { stdout } = await run(process.execPath, fixtureArgs("timestamp-tz.mjs", ":memory:"), {
      env: { ...process.env, TZ: "America/New_York" },
    });
    expect(JSON.parse(stdout)).toEqual({
      ts: "2020-01-02T03:04:05.678Z",
      many: ["2020-01-02T03:04:05.678Z", "Infinity"],
      stored: "2020-01-02 03:04:05.678",
    });
  });
});
