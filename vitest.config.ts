import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/harness/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each test file runs in its own child process (PGlite is WASM and keeps
    // global state, so real process isolation is the safe default).
    pool: 'forks',
    fileParallelism: true,
    // Vitest's default is (cores - 1), i.e. a single worker on a 2-core box;
    // the tests mostly wait on PostgreSQL, so use at least 2.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
