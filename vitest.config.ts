import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { useMemoryTmpdir } from "./tests/harness/memory-tmpdir.js";

// Before the shared server starts and the workers fork: they and every child inherit TMPDIR (see memory-tmpdir.ts).
useMemoryTmpdir();

/** The slowest files (each 35-100 s on a 2-core machine), slowest first. */
const SLOWEST = ["bench", "conflicts", "init-cache", "reliability-crash", "security-url-corpus"];

/**
 * Starts the slowest files first. Vitest orders files by the durations it cached in an earlier run; without them
 * (a fresh clone, CI) by size, which started bench.test.ts, a short file running for ~90 s, last of all.
 */
class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = SLOWEST.findIndex((name) => f.moduleId.endsWith(`/tests/${name}.test.ts`));
      return i < 0 ? SLOWEST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b)); // stable: the rest keep vitest's order
  }
}

// Two projects: `npx vitest run` runs both (npm test); `npx vitest run --project unit` runs only the pure
// unit and model tests, in about a second, without starting PostgreSQL.
export default defineConfig({
  test: {
    fileParallelism: true,
    sequence: { sequencer: SlowestFirst },
    // Vitest's default is (cores - 1), i.e. a single worker on a 2-core box. The workers also wait on PostgreSQL
    // and on child processes: on 2 cores, 3 workers ran the suite in 362-373 s, 2 in 380-394, 4 in 425.
    maxWorkers: Math.max(3, availableParallelism() - 1),
    projects: [
      {
        test: {
          name: "unit",
          // Pure modules only: no server, no PGlite, no globalSetup.
          include: ["tests/unit/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["tests/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "tests/unit/**"],
          globalSetup: ["tests/harness/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Child processes (PGlite's WASM memory stays out of vitest's own process), each running its share of
          // the files one after another in the same module graph: a new process per file compiled and warmed
          // PGlite's WASM and the SQL parser again every time (a quarter of the suite's CPU). Files clean up what
          // they change (process.env, listeners, databases).
          pool: "forks",
          isolate: false,
        },
      },
    ],
  },
});
