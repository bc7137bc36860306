/** Every code an `OminipgError` carries: callers can switch on it exhaustively. */
export type ErrorCode =
  | "CONFIG_INVALID"
  | "CLIENT_CLOSED"
  | "LOCAL_LOCKED"
  | "LOCAL_OPEN_FAILED"
  | "SCHEMA_FAILED"
  | "CAPTURE_UNSUPPORTED"
  | "CAPTURE_NO_PRIMARY_KEY"
  | "CAPTURE_INTERNAL"
  | "TRANSACTION_ACTIVE"
  | "TRANSACTION_NESTED"
  | "TRANSACTION_CLOSED"
  | "TRANSACTION_ABORTED"
  | "SYNC_NOT_CONFIGURED"
  | SyncErrorCode;

/** The codes of a `SyncError`: a remote operation that failed, and whether trying again may succeed. */
export type SyncErrorCode =
  | "SYNC_FAILED"
  | "PULL_FAILED"
  | "PULL_LOCAL_FAILED"
  | "VERIFY_FAILED"
  | "REMOTE_SETUP_FAILED"
  | "REMOTE_SCHEMA_CHECK_FAILED"
  | "REMOTE_SCHEMA_MISMATCH"
  | "REMOTE_LEDGER_FAILED"
  | "REMOTE_SEQUENCES_FAILED"
  | "REMOTE_PUSH_FAILED"
  | "REMOTE_REJECTED"
  | "TABLE_NOT_SYNCED"
  | "COLUMN_NOT_SYNCED"
  | "CONFLICT_RACE"
  | "CONFLICT_CHURN"
  | "CONFLICT_RESOLVER_FAILED"
  | "CONFLICT_RESOLUTION_INVALID"
  | "SEQUENCE_LEASE_FAILED"
  | "SEQUENCE_LEASE_EXHAUSTED"
  | "FEED_UNAVAILABLE";

/**
 * Library errors. Every error Ominipg itself raises is an `OminipgError` with a stable `code`;
 * errors from PostgreSQL (local or remote) pass through untouched, or sit in `cause`.
 */
export class OminipgError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Invalid options passed to `Ominipg.connect` or another method. */
export class ConfigError extends OminipgError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFIG_INVALID", message, options);
  }
}

/** A method was called on a client after `close()`. */
export class ClosedError extends OminipgError {
  constructor() {
    super("CLIENT_CLOSED", "the Ominipg client is closed");
  }
}

/** The persistent data directory could not be opened or is held by another live process. */
export class LocalDatabaseError extends OminipgError {
  constructor(code: "LOCAL_LOCKED" | "LOCAL_OPEN_FAILED", message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A `schemaSQL` statement failed; names its index and the side it ran on. */
export class SchemaError extends OminipgError {
  readonly index: number;
  readonly side: "local" | "remote";
  readonly statement: string;
  /** PostgreSQL's 1-based character position in the statement, when it reported one. */
  readonly position: number | undefined;
  constructor(index: number, side: "local" | "remote", statement: string, cause: unknown) {
    const pg = cause as { message?: string; position?: string | number };
    const position = pg?.position === undefined || pg.position === "" ? undefined : Number(pg.position);
    super(
      "SCHEMA_FAILED",
      `schemaSQL[${index}] failed on the ${side} database: ${pg?.message ?? String(cause)}` +
        (position === undefined ? "" : ` (at character ${position})`),
      { cause },
    );
    this.index = index;
    this.side = side;
    this.statement = statement;
    this.position = position;
  }
}

/** A statement Ominipg cannot capture for sync (it would write without being recorded). */
export class CaptureError extends OminipgError {
  constructor(
    code: "CAPTURE_UNSUPPORTED" | "CAPTURE_NO_PRIMARY_KEY" | "CAPTURE_INTERNAL",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** `sync()` (or another remote operation) failed; `retryable` says whether trying again may succeed. */
export class SyncError extends OminipgError {
  declare readonly code: SyncErrorCode;
  readonly retryable: boolean;
  constructor(code: SyncErrorCode, message: string, options: { cause?: unknown; retryable: boolean }) {
    super(code, message, options);
    this.retryable = options.retryable;
  }
}

/**
 * The local database could not be opened at `where`. PGlite's file system errors are not Errors and carry only an
 * errno: the message says that much instead of "[object Object]".
 */
export function openFailed(where: string, cause: unknown): LocalDatabaseError {
  const errno = (cause as { errno?: unknown } | null)?.errno;
  const text =
    cause instanceof Error
      ? cause.message
      : errno !== undefined
        ? `file system error (errno ${String(errno)})`
        : String(cause);
  return new LocalDatabaseError("LOCAL_OPEN_FAILED", `could not open ${where}: ${text}`, { cause });
}

/** A call that waits for the transaction to end, made inside a transaction() callback (it would wait for ever). */
export function inTransactionError(): OminipgError {
  return new OminipgError(
    "TRANSACTION_ACTIVE",
    "sync(), pull(), status(), verify() and syncSequences() cannot run inside a transaction() callback (they wait for the transaction to end): call them after it",
  );
}
