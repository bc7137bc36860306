/**
 * PGlite runs a statement synchronously, so a loop of awaited statements (an import, a bulk load) runs in
 * microtasks only and never lets the event loop turn: timers and signal handlers wait until it ends (a
 * 3 s loop of 30,000 INSERTs ran no timer and no signal handler at all). Ominipg relies on both (background
 * syncs, status()'s time limit; with a directory open, checkpoints and the close on SIGTERM/SIGINT, which
 * otherwise would make Ctrl-C wait for the loop), so a statement yields to the event loop first when 100 ms
 * passed since the last yield, in memory too.
 */
const EVERY_MS = 100;
let lastYield = Date.now();

/** A promise to await before the next statement, or undefined when no yield is due. */
export function pace(): Promise<void> | undefined {
  const now = Date.now();
  if (now - lastYield < EVERY_MS) return undefined;
  lastYield = now;
  return new Promise((resolve) => setImmediate(resolve));
}
