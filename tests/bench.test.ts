// Keeps the benchmark (bench/, `npm run bench`) working: compiles it and runs it in its tiny mode
// (a few hundred rows, one run of each section) as a short-lived child process: its figures are not read.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { SHORT_LIVED } from "./process-helpers.js";

const root = path.resolve(import.meta.dirname, "..");
// A separate output directory, so the test never races an `npm run bench` writing build/bench.
const outDir = path.join(root, "build", "bench-test");

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SHORT_LIVED, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("bench", () => {
  it("runs in tiny mode, prints the tables and writes a results file", async () => {
    const tsc = path.join(
      path.dirname(createRequire(import.meta.url).resolve("typescript-native/package.json")),
      "bin",
      "tsc",
    );
    const build = spawnSync(process.execPath, [tsc, "-p", "bench/tsconfig.json", "--outDir", outDir], {
      cwd: root,
      encoding: "utf8",
    });
    expect(build.stdout + build.stderr, "bench/ compiles").toBe("");
    expect(build.status).toBe(0);

    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ominipg-bench-test-"));
    const out = path.join(tmp, "RESULTS.md");
    try {
      const { code, stdout, stderr } = await run(
        [path.join(outDir, "bench", "run.js"), "--tiny", "--out", out],
        // ~60 s alone; 140-150 s on 2 cores beside the two other workers' files (vitest.config.ts).
        240_000,
      );
      expect(code, stderr.slice(-3000)).toBe(0);
      for (const title of [
        "HEADLINE",
        "1. Single-row statements",
        "2. Bulk statements",
        "3. Transactions",
        "4. Push",
        "5. Memory",
        "6. Opening a database",
        "7. Pull from PostgreSQL",
        "8. Wide rows",
        "8b. Wide rows: bytes each change adds to the change log",
        "8c. Wide rows: memory",
      ]) {
        expect(stdout).toContain(title);
      }
      expect(stdout).toMatch(/tiny mode finished in [\d.]+ s/);
      const md = fs.readFileSync(out, "utf8");
      expect(md).toContain("<!-- headline:start -->");
      expect(md).toContain("<!-- headline:end -->");
      expect(md).toContain("| d Ominipg + capture |"); // the durability settings table
      expect(md).toMatch(/\| Wide rows: change-log row data of a one-column UPDATE .*\| ≤ 2\.0x \|/); // issue 18's targets
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 270_000);
});
