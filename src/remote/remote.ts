import { LEDGER_DDL } from "../apply/ledger.js";
import { SchemaError, SyncError } from "../errors.js";
import { openRemote, type Sql } from "./connection.js";
import { passwordOf, redact } from "./url.js";

/** SQLSTATE classes and codes worth retrying: connection trouble, shutdowns, lock and resource contention. */
const RETRYABLE_SQLSTATE = /^(08|53|57P0[1-3]|40001|40P01|55P03|57014)/;
const RETRYABLE_NODE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "CONNECT_TIMEOUT", "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED"]);

export function isRetryable(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? "");
  if (RETRYABLE_NODE.has(code)) return true;
  if (/^[0-9A-Z]{5}$/.test(code)) return RETRYABLE_SQLSTATE.test(code);
  return err instanceof Error && !("severity" in err); // not a PostgreSQL error: the network, most likely
}

/**
 * The remote server: a lazily connecting postgres.js pool, and the one-time set-up done at the first
 * successful contact (schemaSQL, the ledger table). Nothing here runs at connect().
 */
export class Remote {
  readonly sql: Sql;
  #ready: Promise<void> | undefined;
  #secrets: string[];

  constructor(
    readonly url: string,
    private readonly schemaSQL: readonly string[],
    private readonly applySchema: boolean,
    poolSize: number,
  ) {
    this.sql = openRemote(url, { max: poolSize, prepare: false });
    this.#secrets = [passwordOf(url)].filter((p): p is string => !!p);
  }

  /** Set up the remote side once; a failed attempt is retried at the next call. */
  ensureReady(): Promise<void> {
    this.#ready ??= this.#setup().catch((err) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  /** A message safe to show: the remote URL's password is never in it. */
  redact(text: string): string {
    return redact(text, this.#secrets);
  }

  /** Wrap a failure of a remote operation as a SyncError with a redacted message. */
  error(code: string, what: string, cause: unknown): SyncError {
    if (cause instanceof SyncError || cause instanceof SchemaError) return cause as SyncError;
    const message = this.redact(`${what}: ${(cause as Error)?.message ?? String(cause)}`);
    return new SyncError(code, message, { cause, retryable: isRetryable(cause) });
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }

  async #setup(): Promise<void> {
    if (this.applySchema && this.schemaSQL.length > 0) {
      await this.sql.begin(async (tx) => {
        for (let i = 0; i < this.schemaSQL.length; i++) {
          try {
            await tx.unsafe(this.schemaSQL[i]!).simple();
          } catch (err) {
            const wrapped = new SchemaError(i, "remote", this.schemaSQL[i]!, err);
            wrapped.message = this.redact(wrapped.message);
            throw isRetryable(err) ? err : wrapped;
          }
        }
      });
    }
    await this.sql.unsafe(LEDGER_DDL);
  }
}
