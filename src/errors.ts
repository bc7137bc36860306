/**
 * Library errors. Every error Ominipg itself raises is an `OminipgError` with a stable `code`;
 * errors from PostgreSQL (local or remote) pass through untouched, or sit in `cause`.
 */
export class OminipgError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
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
  constructor(code: "CAPTURE_UNSUPPORTED" | "CAPTURE_NO_PRIMARY_KEY" | "CAPTURE_INTERNAL", message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** `sync()` (or another remote operation) failed; `retryable` says whether trying again may succeed. */
export class SyncError extends OminipgError {
  readonly retryable: boolean;
  constructor(code: string, message: string, options: { cause?: unknown; retryable: boolean }) {
    super(code, message, options);
    this.retryable = options.retryable;
  }
}
