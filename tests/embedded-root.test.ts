import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./harness/index.js";

/**
 * As root the embedded PostgreSQL runs as the OS user "postgres". Where that user cannot go, what is left
 * is one line that says what to do: from `ominipg demo`, and from the test suite's set-up (never vitest's
 * "No test files found"). A private TMPDIR stands for such a place. (That a private checkout or project
 * works is tests/packaging.test.ts's demo, run from a private directory.)
 */
const root = path.resolve(import.meta.dirname, "..");
const asRoot = process.getuid?.() === 0;

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeout = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root, env, timeout }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(new Error(`${args.join(" ")}: ${err.message}\n${stderr}`));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** The environment with TMPDIR in a directory (mode 0700) the user "postgres" cannot enter. */
function privateTmp(): NodeJS.ProcessEnv {
  const dir = tempDir("ominipg-private-");
  fs.chmodSync(dir, 0o700);
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^VITEST/.test(name)));
  return { ...env, TMPDIR: dir };
}

describe.skipIf(!asRoot)("as root, where the user postgres cannot go (skipped: not root)", () => {
  it("ominipg demo fails in one line that says what to do", async () => {
    const { code, stderr } = await run([path.join(root, "dist", "cli", "main.js"), "demo"], privateTmp());
    expect(code).toBe(1);
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ominipg: running as root, PostgreSQL runs as the user "postgres", which /);
    expect(lines[0]).toContain("set TMPDIR to a directory every user can enter");
  });

  it("the test suite's set-up fails in one line that says what to do, not with 'No test files found'", async () => {
    const vitest = path.join(root, "node_modules", "vitest", "vitest.mjs");
    const { code, stdout, stderr } = await run(
      [vitest, "run", "--project", "integration", "tests/harness.test.ts"],
      privateTmp(),
      120_000,
    );
    expect(code).toBe(1);
    expect(stdout + stderr).not.toContain("No test files found");
    const lines = stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ominipg tests: could not start the test PostgreSQL server: running as root, /);
    expect(lines[0]).toContain("set TMPDIR to a directory every user can enter");
    expect(lines[0]).toContain("OMINIPG_TEST_REMOTE_URL");
  }, 120_000);
});
