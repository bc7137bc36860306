import type { Driver } from "../core/driver.js";
import type { Step } from "./planner.js";

type PgError = Error & {
  position?: string;
  query?: string;
  params?: unknown;
  internalPosition?: string;
  internalQuery?: string;
};

/**
 * The caller's view of an error from a rewritten statement. If it was raised while planning (it has a position in
 * our text), the original statement yields the same error with the caller's positions: that one is returned
 * (outside a failed transaction, where the original can be described).
 */
export async function originalError(
  driver: Driver,
  err: unknown,
  original: string,
  step: Step,
  params: readonly unknown[],
): Promise<unknown> {
  if (step.sql === original || !(err instanceof Error)) return err;
  const pgErr = err as PgError;
  if (pgErr.position && driver.txStatus !== "failed") {
    try {
      await driver.describe(original);
    } catch (originalErr) {
      return Object.assign(originalErr as object, { params });
    }
  }
  if (pgErr.position) {
    // In a failed transaction the original cannot be described again: the position is one in the rewritten text,
    // which PostgreSQL's own fields for an internally generated command hold, not in the caller's.
    pgErr.internalPosition = pgErr.position;
    pgErr.internalQuery = step.sql;
    delete pgErr.position;
  }
  pgErr.query = original;
  return pgErr;
}
