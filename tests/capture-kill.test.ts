// Kill-after-commit: a child process commits captured writes on a persistent directory, says so, and is killed
// with SIGKILL at once, with one more transaction open. Reopening the directory shows every committed change in _sync_queue, and nothing of the
// transaction it had open. Runs the built library (dist/): build it first (`npm run build`).
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, expect, inject, it } from "vitest";
import { Ominipg } from "../src/index.js";
import {
  closeAll,
  expectReplayGives,
  logSince,
  opsOf,
  snapshot,
  tablesWithKeys,
  type Snapshot,
} from "./capture-helpers.js";
import { tempDir, unreachableUrl } from "./harness/index.js";
import { fixtureArgs } from "./process-helpers.js";

afterAll(closeAll);

it("every change committed before SIGKILL is in the log after reopening, and nothing uncommitted", async () => {
  const dir = path.join(tempDir("ominipg-capture-kill-"), "db");
  const child = spawn(
    process.execPath,
    fixtureArgs("capture-kill.mjs", dir, unreachableUrl(), inject("ominipgPgliteTemplate")),
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(signal ?? code)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      // "open" comes right after the last commit, with a transaction still open: kill at once.
      if (d.toString().includes("open")) {
        child.kill("SIGKILL");
        resolve();
      }
    });
    void exited.then((how) => reject(new Error(`child exited (${String(how)}) before committing`)));
  });
  expect(await exited).toBe("SIGKILL");

  const db = await Ominipg.connect({ url: dir });
  try {
    const tables = await tablesWithKeys(db);
    expect(tables.map((t) => t.name)).toEqual(["k", "k2"]);
    const after = await snapshot(db, tables);
    const entries = await logSince(db);
    const empty: Snapshot = new Map([...after.keys()].map((k) => [k, new Map()]));
    expectReplayGives(empty, entries, after, tables);
    expect([...after.get("public.k")!.values()].map((r) => JSON.parse(r))).toEqual(
      expect.arrayContaining([
        { id: 3, v: "v19" },
        { id: 10, v: "ten" },
      ]),
    );
    expect(after.get("public.k")!.size).toBe(2);
    expect([...after.get("public.k2")!.keys()]).toEqual(["[100]"]);
    const ops = opsOf(entries);
    expect(ops.slice(0, 6)).toEqual([
      "I public.k",
      "I public.k",
      "I public.k",
      "U public.k",
      "I public.k2",
      "D public.k",
    ]);
    expect(ops.length).toBe(6 + 49 + 2 + 20);
    expect(entries.some((e) => e.new?.includes("never committed"))).toBe(false);
  } finally {
    await db.close();
  }
});
