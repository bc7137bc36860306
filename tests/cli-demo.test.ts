import { execFile } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";

const CLI = path.join(import.meta.dirname, "..", "dist", "cli", "main.js");

it("ominipg demo runs the guide's todo example end to end and exits 0", async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>(
    (resolve, reject) => {
      execFile(process.execPath, [CLI, "demo"], { timeout: 50_000 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== "number") return reject(new Error(`ominipg demo: ${err.message}\n${stderr}`));
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      });
    },
  );
  expect(stderr).toBe("");
  expect(code).toBe(0);
  expect(stdout).toContain("✅ Synced 3 changes");
  expect(stdout).toMatch(/1\s+Buy groceries\s+done/);
  expect(stdout).toMatch(/2\s+Write documentation\s+open/);
  expect(stdout).toMatch(/public\.orders\s+priority 1\s+1 change\n\s+public\.todos\s+priority 0\s+1 change/);
  expect(stdout).toMatch(/arrived on the remote: orders in transaction \d+, then todos in transaction \d+/);
  expect(stdout).toContain("local and remote match");
}, 60_000);
