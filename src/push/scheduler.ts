import PQueue from "p-queue";
import type { ResolvedSync } from "../core/options.js";

/** Where a sync's remote batches wait their turn: `concurrency` at once, at most `intervalCap` per `interval`. */
export function scheduler(options: ResolvedSync): PQueue {
  const limited = options.interval > 0 && Number.isFinite(options.intervalCap);
  return new PQueue({
    concurrency: options.concurrency,
    ...(limited ? { interval: options.interval, intervalCap: options.intervalCap } : {}),
  });
}
