import { afterEach } from "vitest";

/**
 * Registers, for the calling test file, clean-ups run after each test, last added first, errors ignored
 * (closing clients, dropping databases). Returns the function that adds one.
 */
export function cleanupAfterEach(): (fn: () => Promise<unknown> | unknown) => void {
  let fns: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const fn of fns.reverse())
      await Promise.resolve()
        .then(fn)
        .catch(() => {});
    fns = [];
  });
  return (fn) => void fns.push(fn);
}
