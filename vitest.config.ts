import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";

// Two projects: `npx vitest run` runs both (npm test); `npx vitest run --project unit` runs only the pure
// unit and model tests, in about a second, without starting PostgreSQL.
export default defineConfig({
  test: {
    fileParallelism: true,
    // Vitest's default is (cores - 1), i.e. a single worker on a 2-core box;
    // the tests mostly wait on PostgreSQL, so use at least 2.
    maxWorkers: Math.max(2, availableParallelism() - 1),
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
          // Each test file runs in its own child process (PGlite is WASM and keeps
          // global state, so real process isolation is the safe default).
          pool: "forks",
        },
      },
    ],
  },
});
