import { OminipgError, SchemaError, SyncError, type SyncErrorCode } from "../core/errors.js";
import { sqlstateOf, sqlstateScope } from "../core/sqlstate.js";
import { errorText } from "./connection.js";
import { LEDGER_OBJECTS } from "./schema.js";
import { tooOldRaised } from "./versions.js";

/** How often and how patiently a remote step is tried (`sync.retry`). */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

const RETRYABLE_NODE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/** Node's codes for a server certificate that TLS verification refused (sslmode verify-ca / verify-full). */
export const TLS_REFUSED = /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_\w+|\w*CERT\w*|SELF_SIGNED\w*)$/;

/**
 * A remote operation's failure as a SyncError of `code` ("<what>: <the failure>", both redacted), retryable as
 * the failure is; a SyncError or SchemaError passes through.
 */
export function remoteFailure(
  code: SyncErrorCode,
  what: string,
  cause: unknown,
  redact: (text: string) => string,
): SyncError {
  if (cause instanceof SyncError || cause instanceof SchemaError) return cause as SyncError;
  const tooOld = tooOldRaised(cause, LEDGER_OBJECTS);
  if (tooOld) return tooOld;
  const tls = TLS_REFUSED.test(String((cause as { code?: unknown })?.code ?? ""))
    ? "TLS: the server's certificate was refused: "
    : "";
  return new SyncError(code, `${redact(what)}: ${tls}${redact(errorText(cause))}`, {
    cause,
    retryable: isRetryable(cause),
  });
}

/** May the same remote step succeed if tried again? */
export function isRetryable(err: unknown): boolean {
  // Ominipg's own errors say it themselves (a schema mismatch or a SchemaError is not worth retrying).
  if (err instanceof OminipgError) return err instanceof SyncError && err.retryable;
  const code = String((err as { code?: unknown } | null | undefined)?.code ?? "");
  if (TLS_REFUSED.test(code)) return false; // trying again cannot fix a certificate
  // Before the SQLSTATE: a Node code such as EPIPE has the shape of one.
  if (RETRYABLE_NODE.has(code)) return true;
  const sqlstate = sqlstateOf(err);
  if (sqlstate) return sqlstateScope(sqlstate) === "retryable";
  return err instanceof Error && !("severity" in err); // not a PostgreSQL error: the network, most likely
}

/** The wait after failed attempt number `attempt` (1-based): full jitter under an exponential, capped bound. */
export function backoffDelay(
  attempt: number,
  retry: { baseDelayMs: number; maxDelayMs: number },
  random: () => number = Math.random,
): number {
  return random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
}

/**
 * The one retry policy of every remote step, push and pull alike: run `fn`, and while it fails with an error
 * that may pass (isRetryable) and attempts are left (and the work was not `stopped`: close() ended it), wait
 * (backoffDelay) and run it again. The last error is thrown as it is.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: () => Promise<T>,
  stopped: () => boolean = () => false,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err) || attempt >= policy.attempts || stopped()) throw err;
      await new Promise((r) => setTimeout(r, backoffDelay(attempt, policy)));
    }
  }
}
