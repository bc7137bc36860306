/**
 * The one table of PostgreSQL error codes Ominipg acts on, for push and pull alike:
 * - "row": the error refuses particular rows (bad data, a constraint, a trigger's RAISE, a row-level security
 *   policy): the other rows of the same statement may go through, so a refused batch is halved until the
 *   refused rows are found;
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

/**
 * Codes PostgreSQL uses both for a refusal of rows and for one of the whole statement: what the error says
 * decides. 42501 is "permission denied for table" (every row alike) and also a row-level security policy
 * refusing a row ("new row violates row-level security policy ...", also "(USING expression)" for an
 * `ON CONFLICT DO UPDATE` of a row the role may not update, and MERGE's "target row violates ..."). The
 * policy check is the executor's `ExecWithCheckOptions`, which the error names as its routine whatever the
 * server's language; without a routine, the English message. ("query would be affected by row-level
 * security policy", with row_security off, refuses the statement: it says no "violates".)
 */
const ROW_WHEN: Readonly<Record<string, { what: string; routine: string; message: RegExp }>> = {
  "42501": {
    what: "a row-level security policy refused the row",
    routine: "ExecWithCheckOptions",
    message: /violates row-level security policy/,
  },
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
  // A standby's refusal (a failover under way: the address soon leads to the new primary), and a session the
  // server ended for idling in a transaction: the next connection can do it.
  "25006": "read-only SQL transaction",
  "25P03": "idle-in-transaction session timeout",
};

/** What an error says beyond its code (postgres.js and PGlite errors have both fields). */
export interface ErrorText {
  message?: unknown;
  routine?: unknown;
}

/**
 * The scope of a SQLSTATE (five characters); "statement" for anything unknown. `error`: the error itself, for
 * the codes whose scope depends on what it says (ROW_WHEN); without it they are "statement".
 */
export function sqlstateScope(code: string, error?: ErrorText): SqlstateScope {
  const cls = code.slice(0, 2);
  if (cls in ROW_CLASSES) return "row";
  const when = ROW_WHEN[code];
  if (when && error && (error.routine === when.routine || when.message.test(String(error.message ?? "")))) {
    return "row";
  }
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

/** The scope of a PostgreSQL error (postgres.js or PGlite), from its code and what it says; undefined for any other error. */
export function errorScope(err: unknown): SqlstateScope | undefined {
  const code = sqlstateOf(err);
  return code === undefined ? undefined : sqlstateScope(code, err as ErrorText);
}

/** Does the error refuse particular rows (see SqlstateScope)? Push and pull decide with this one function. */
export function isRowLevel(err: unknown): boolean {
  return errorScope(err) === "row";
}

/** Did a row-level security policy refuse the row (42501 as ROW_WHEN tells it from a refused permission)? */
export function isPolicyRefusal(err: unknown): boolean {
  return sqlstateOf(err) === "42501" && isRowLevel(err);
}

/** Codes of a name the statement's search_path does not find, or a privilege it lacks, in what it runs. */
const UNRESOLVED: Readonly<Record<string, string>> = {
  "42883": "undefined function",
  "42P01": "undefined table",
  "42703": "undefined column",
  "42501": "insufficient privilege",
};

/** Did a statement fail on a table or function that does not exist (where it looks)? */
export function isMissingRelationOrFunction(err: unknown): boolean {
  const code = sqlstateOf(err);
  return code === "42P01" || code === "42883";
}

/**
 * Did a statement fail on a name it (or a function it runs, a policy's) does not find where it looks, or may not
 * use? The change feed's read runs tenants' policies with search_path pg_catalog (pull/feed.ts FeedUnreadable).
 */
export function isUnresolved(err: unknown): boolean {
  const code = sqlstateOf(err);
  return code !== undefined && code in UNRESOLVED;
}

/**
 * Did one read fail for its size alone: a value past PostgreSQL's 1 GB (out of memory, 53200: "Cannot enlarge
 * string buffer"; a program limit, 54000), or a string past what JavaScript holds (a RangeError)? The same
 * read of fewer rows may succeed.
 */
export function isTooLarge(err: unknown): boolean {
  const code = sqlstateOf(err);
  return code === "53200" || code === "54000" || err instanceof RangeError;
}
