// Where the suite keeps its temporary files (tests/harness/memory-tmpdir.ts): on /dev/shm where it is a usable
// tmpfs and TMPDIR is not set; never over a TMPDIR the user set.
import os from "node:os";
import { describe, expect, it } from "vitest";
import { shmIsExecutableTmpfs, useMemoryTmpdir } from "../harness/memory-tmpdir.js";

// Mounted as a tmpfs (not noexec): where the other conditions (writable, room) hold as they do on a usual machine.
const shm = process.platform === "linux" && shmIsExecutableTmpfs();

describe("the suite's temporary directory", () => {
  it("leaves a TMPDIR the user set as it is", () => {
    const env: NodeJS.ProcessEnv = { TMPDIR: "/var/tmp" };
    expect(useMemoryTmpdir(env)).toBeUndefined();
    expect(env).toEqual({ TMPDIR: "/var/tmp" });
  });

  it.skipIf(!shm)("is /dev/shm on a machine where it is a tmpfs (this one): for the suite too", () => {
    const env: NodeJS.ProcessEnv = {};
    expect(useMemoryTmpdir(env)).toBe("/dev/shm");
    expect(env).toEqual({ TMPDIR: "/dev/shm" });
    // vitest.config.ts made the same choice before this worker started, unless TMPDIR was set for the run.
    if (process.env["TMPDIR"] === "/dev/shm") expect(os.tmpdir()).toBe("/dev/shm");
  });
});
