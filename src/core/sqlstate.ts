/**
 * The one table of PostgreSQL error codes Ominipg acts on, for push and pull alike:
 * - "row": the error refuses particular rows (bad data, a constraint, a trigger's RAISE): the other rows of
 *   the same statement may go through, so a refused batch is halved until the refused rows are found;
 * - "retryable": the same statement may succeed later (connection trouble, shutdown, lock or resource
 *   contention, serialization failure, a cancelled statement);
 * - "statement": everything else (permissions, a missing column, a syntax error...): it would refuse every
 *   row alike, so halving cannot help.
 */
export type SqlstateScope = "row" | "statement" | "retryable";

const ROW_CLASSES: Readonly<Record<string, string>> = {
  "22": "data exception",
  "23": "integrity constraint violation",
  "27": "triggered data change violation",
  "44": "WITH CHECK OPTION violation",
  "54": "program limit exceeded (a row too large)",
  P0: "PL/pgSQL RAISE",
};

const RETRYABLE_CLASSES: Readonly<Record<string, string>> = {
  "08": "connection exception",
  "53": "insufficient resources",
};

const RETRYABLE_CODES: Readonly<Record<string, string>> = {
  "57P01": "admin shutdown",
  "57P02": "crash shutdown",
  "57P03": "cannot connect now",
  "40001": "serialization failure",
  "40P01": "deadlock detected",
  "55P03": "lock not available",
  "57014": "query canceled",
};

/** The scope of a SQLSTATE (five characters); "statement" for anything unknown. */
export function sqlstateScope(code: string): SqlstateScope {
  const cls = code.slice(0, 2);
  if (cls in ROW_CLASSES) return "row";
  if (cls in RETRYABLE_CLASSES || code in RETRYABLE_CODES) return "retryable";
  return "statement";
}

/** The SQLSTATE of a PostgreSQL error (postgres.js or PGlite), or undefined for any other error. */
export function sqlstateOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; syscall?: unknown } | null | undefined;
  // A Node system error (EPIPE...) can have the shape of a SQLSTATE; it says which call failed.
  if (typeof e?.code !== "string" || e.syscall !== undefined) return undefined;
  return /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
}

/** Does the error refuse particular rows (see SqlstateScope)? */
export function isRowLevel(err: unknown): boolean {
  const code = sqlstateOf(err);
  return code !== undefined && sqlstateScope(code) === "row";
}
