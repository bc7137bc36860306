// The one SQLSTATE table (src/core/sqlstate.ts) and the one retry policy (src/remote/retry.ts), for push and
// pull alike.
import { describe, expect, it } from "vitest";
import { errorScope, isRowLevel, sqlstateOf, sqlstateScope, type SqlstateScope } from "../../src/core/sqlstate.js";
import { backoffDelay, isRetryable, withRetry, type RetryPolicy } from "../../src/remote/retry.js";
import { ConfigError, SyncError } from "../../src/core/errors.js";

/** A PostgreSQL error as postgres.js (or PGlite) raises it. */
function pgError(code: string, message = `error ${code}`, routine?: string): Error {
  return Object.assign(new Error(message), { code, severity: "ERROR", ...(routine ? { routine } : {}) });
}

/** A Node.js system or TLS error. */
function nodeError(code: string): Error {
  return Object.assign(new Error(`node ${code}`), { code });
}

const SQLSTATES: [code: string, scope: SqlstateScope, what: string][] = [
  // Row-level: the other rows of the statement may go through.
  ["22001", "row", "string data right truncation"],
  ["22003", "row", "numeric value out of range"],
  ["22P02", "row", "invalid text representation"],
  ["22007", "row", "invalid datetime format"],
  ["23502", "row", "not null violation"],
  ["23503", "row", "foreign key violation"],
  ["23505", "row", "unique violation"],
  ["23514", "row", "check violation"],
  ["23P01", "row", "exclusion violation"],
  ["27000", "row", "triggered data change violation"],
  ["44000", "row", "WITH CHECK OPTION violation"],
  ["54000", "row", "program limit exceeded"],
  ["54001", "row", "statement too complex"],
  ["P0001", "row", "RAISE EXCEPTION"],
  ["P0004", "row", "assert failure"],
  // Retryable: the same statement may succeed later.
  ["08000", "retryable", "connection exception"],
  ["08003", "retryable", "connection does not exist"],
  ["08006", "retryable", "connection failure"],
  ["53000", "retryable", "insufficient resources"],
  ["53100", "retryable", "disk full"],
  ["53300", "retryable", "too many connections"],
  ["57P01", "retryable", "admin shutdown"],
  ["57P02", "retryable", "crash shutdown"],
  ["57P03", "retryable", "cannot connect now"],
  ["40001", "retryable", "serialization failure"],
  ["25006", "retryable", "read-only SQL transaction (a standby during a failover)"],
  ["25P03", "retryable", "idle-in-transaction session timeout"],
  ["40P01", "retryable", "deadlock detected"],
  ["55P03", "retryable", "lock not available"],
  ["57014", "retryable", "query canceled"],
  // Statement-level: every row alike, halving cannot help, retrying neither.
  ["42501", "statement", "insufficient privilege"],
  ["42P01", "statement", "undefined table"],
  ["42703", "statement", "undefined column"],
  ["42601", "statement", "syntax error"],
  ["42804", "statement", "datatype mismatch"],
  ["0A000", "statement", "feature not supported"],
  ["40002", "statement", "transaction integrity constraint violation"],
  ["55000", "statement", "object not in prerequisite state"],
  ["57000", "statement", "operator intervention"],
  ["XX000", "statement", "internal error"],
  ["XX001", "statement", "data corrupted"],
];

describe("the SQLSTATE table", () => {
  it.each(SQLSTATES)("%s is %s (%s)", (code, scope) => {
    expect(sqlstateScope(code)).toBe(scope);
    expect(isRowLevel(pgError(code))).toBe(scope === "row");
    expect(isRetryable(pgError(code))).toBe(scope === "retryable");
  });

  // 42501 is both "permission denied" (the statement) and a row-level security policy refusing a row: what
  // the error says decides, for push (batch-pusher) and pull (apply) alike, through isRowLevel.
  it.each([
    ['new row violates row-level security policy for table "notes"', "ExecWithCheckOptions", "row"],
    ['new row violates row-level security policy (USING expression) for table "notes"', "ExecWithCheckOptions", "row"],
    ['new row violates row-level security policy "own" for table "notes"', "ExecWithCheckOptions", "row"],
    ['target row violates row-level security policy (USING expression) for table "notes"', undefined, "row"],
    // Another language (lc_messages): the routine still says it is the policy check.
    ["la nueva fila viola la política de seguridad de registros para la tabla «notes»", "ExecWithCheckOptions", "row"],
    // Without a routine (an error relayed without it), the English message.
    ['new row violates row-level security policy for table "notes"', undefined, "row"],
    ["permission denied for table notes", "aclcheck_error", "statement"],
    ["permission denied for table notes", undefined, "statement"],
    ["permission denied for schema app", "aclcheck_error", "statement"],
    ['query would be affected by row-level security policy for table "notes"', "check_enable_rls", "statement"],
    ['query would be affected by row-level security policy for table "notes"', undefined, "statement"],
  ] as const)("42501 %j (routine %s) is %s", (message, routine, scope) => {
    const err = pgError("42501", message, routine);
    expect(errorScope(err)).toBe(scope);
    expect(isRowLevel(err)).toBe(scope === "row");
    expect(isRetryable(err)).toBe(false);
    expect(sqlstateScope("42501", { message, routine })).toBe(scope);
  });

  it("the error's text decides only for codes that need it", () => {
    // A row-level code stays row-level, a statement-level one statement-level, whatever the message.
    expect(errorScope(pgError("23505", "permission denied for table x", "aclcheck_error"))).toBe("row");
    expect(errorScope(pgError("42P01", "violates row-level security policy", "ExecWithCheckOptions"))).toBe(
      "statement",
    );
    expect(sqlstateScope("42501")).toBe("statement");
    expect(errorScope(new Error("new row violates row-level security policy"))).toBeUndefined();
  });

  it("reads the SQLSTATE of PostgreSQL errors only", () => {
    expect(sqlstateOf(pgError("23505"))).toBe("23505");
    expect(sqlstateOf({ code: "P0001" })).toBe("P0001");
    for (const notOne of [
      nodeError("ECONNRESET"),
      { code: 23505 },
      { code: "2350" },
      { code: "23505x" },
      { code: "p0001" },
      new Error("x"),
      null,
      undefined,
      "str",
      42,
    ]) {
      expect(sqlstateOf(notOne), String(JSON.stringify(notOne))).toBeUndefined();
      expect(isRowLevel(notOne)).toBe(false);
    }
  });
});

describe("isRetryable", () => {
  it.each([
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "ENOTFOUND",
    "EAI_AGAIN",
    "CONNECT_TIMEOUT",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
  ])("Node / postgres.js %s: retryable", (code) => {
    expect(isRetryable(nodeError(code))).toBe(true);
  });

  // Node's EPIPE has the shape of a SQLSTATE (five capital letters): the Node codes are checked first.
  it("Node EPIPE (write to a closed socket): retryable", () => {
    const epipe = Object.assign(new Error("write EPIPE"), { code: "EPIPE", errno: -32, syscall: "write" });
    expect(sqlstateOf(epipe)).toBeUndefined();
    expect(isRetryable(epipe)).toBe(true);
  });

  it.each([
    "CERT_HAS_EXPIRED",
    "ERR_TLS_CERT_ALTNAME_INVALID",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "CERT_UNTRUSTED",
  ])("TLS certificate refused (%s): not retryable", (code) => {
    expect(isRetryable(nodeError(code))).toBe(false);
  });

  it("Ominipg's own errors say it themselves", () => {
    expect(isRetryable(new SyncError("REMOTE_PUSH_FAILED", "x", { retryable: true }))).toBe(true);
    expect(isRetryable(new SyncError("REMOTE_SCHEMA_MISMATCH", "x", { retryable: false }))).toBe(false);
    // even when the cause would be retryable
    expect(isRetryable(new SyncError("SYNC_FAILED", "x", { retryable: false, cause: nodeError("ECONNRESET") }))).toBe(
      false,
    );
    expect(isRetryable(new ConfigError("bad option"))).toBe(false);
  });

  it("other errors: a plain Error is the network, most likely; a PostgreSQL error without SQLSTATE or a non-error is not", () => {
    expect(isRetryable(new Error("socket hang up"))).toBe(true);
    expect(isRetryable(Object.assign(new Error("odd"), { severity: "FATAL" }))).toBe(false);
    expect(isRetryable("a string")).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
    expect(isRetryable(null)).toBe(false);
  });
});

describe("backoffDelay", () => {
  const retry = { baseDelayMs: 100, maxDelayMs: 1000 };
  it("full jitter under an exponential bound, capped", () => {
    expect([1, 2, 3, 4, 5, 6, 20].map((a) => backoffDelay(a, retry, () => 1))).toEqual([
      100, 200, 400, 800, 1000, 1000, 1000,
    ]);
    expect([1, 2, 5].map((a) => backoffDelay(a, retry, () => 0))).toEqual([0, 0, 0]);
    expect(backoffDelay(3, retry, () => 0.5)).toBe(200);
    for (let a = 1; a < 12; a++) {
      const d = backoffDelay(a, retry);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** (a - 1)));
    }
  });
});

describe("withRetry", () => {
  const policy: RetryPolicy = { attempts: 3, baseDelayMs: 0, maxDelayMs: 0 };

  /** A step failing with `errors` in turn, then returning 'ok'. */
  function step(errors: unknown[]) {
    let calls = 0;
    const fn = async () => {
      const err = errors[calls++];
      if (err !== undefined) throw err;
      return "ok";
    };
    return { fn, calls: () => calls };
  }

  it("returns the first success", async () => {
    const s = step([]);
    await expect(withRetry(policy, s.fn)).resolves.toBe("ok");
    expect(s.calls()).toBe(1);
  });

  it("tries a retryable failure again, up to `attempts` times", async () => {
    const s = step([pgError("40001"), nodeError("ECONNRESET")]);
    await expect(withRetry(policy, s.fn)).resolves.toBe("ok");
    expect(s.calls()).toBe(3);
  });

  it("throws the last error, as it is, once attempts run out", async () => {
    const last = pgError("57P01");
    const s = step([pgError("08006"), nodeError("ECONNRESET"), last, pgError("08006")]);
    await expect(withRetry(policy, s.fn)).rejects.toBe(last);
    expect(s.calls()).toBe(3);
  });

  it("does not retry what cannot pass", async () => {
    for (const err of [
      pgError("23505"),
      pgError("42501"),
      nodeError("CERT_HAS_EXPIRED"),
      new SyncError("REMOTE_SCHEMA_MISMATCH", "x", { retryable: false }),
    ]) {
      const s = step([err]);
      await expect(withRetry(policy, s.fn)).rejects.toBe(err);
      expect(s.calls()).toBe(1);
    }
  });

  it("one attempt means no retry", async () => {
    const err = nodeError("ECONNRESET");
    const s = step([err]);
    await expect(withRetry({ ...policy, attempts: 1 }, s.fn)).rejects.toBe(err);
    expect(s.calls()).toBe(1);
  });
});
