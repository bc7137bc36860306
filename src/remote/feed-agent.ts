/**
 * A client's (or a drainer's) side of the change feed's upkeep: when the role may (superuser or REPLICATION, on a
 * server with wal_level=logical), set the feed up, drain it, replace a lost slot, trim it, and say when the slot
 * holds back too much WAL. Nothing here fails a pull or a sync: problems become `warning`s (a pull then finds the
 * feed not drained and diffs, or fails in "require" mode with the reason).
 *
 * Pacing: what the role may do is asked once a minute (and again after a failure); a failed set-up is tried
 * again after a minute, not at every pull; trimming runs at most once a minute.
 */
import type { ResolvedFeed } from "../core/feed.js";
import type { OminipgWarning, WarningCode } from "../core/warnings.js";
import { errorText, type Sql } from "./connection.js";
import { cannotSetUp, ensureFeed, slotGone, slotHealth, trimFeed, type SlotHealth } from "./feed.js";
import { drainStep, type DrainOptions } from "./feed-drain.js";

export interface FeedAgentOptions {
  settings: ResolvedFeed;
  /** Runs remote work as the login role (Remote.asLogin). */
  run: <T>(fn: (sql: Sql) => Promise<T>) => Promise<T>;
  warn: (warning: OminipgWarning) => void;
  /** Redacts a message that may hold the remote URL. */
  redact?: (text: string) => string;
  drain?: Partial<DrainOptions>;
  /** How long creating the slot may wait for the transactions running then. Default 10 s. */
  createTimeoutMs?: number;
}

export interface DrainReport {
  /** This role drained (or tried to). */
  drained: boolean;
  /** Why it did not, when it did not. */
  reason?: string;
  decoded: number;
  written: number;
  health?: SlotHealth;
}

const MINUTE = 60_000;
const WARN_EVERY: Partial<Record<WarningCode, number>> = {
  FEED_WAL_RETAINED: 10 * MINUTE,
  FEED_UNAVAILABLE: 10 * MINUTE,
  FEED_DRAIN_FAILED: MINUTE,
  FEED_SLOT_REPLACED: 0,
  FEED_REGISTER_FAILED: 10 * MINUTE,
};

export class FeedAgent {
  #health: { at: number; value: SlotHealth } | undefined;
  #setUpFailedAt = -Infinity;
  #trimmedAt = -Infinity;
  readonly #warned = new Map<string, number>();
  readonly #drain: DrainOptions;

  constructor(private readonly options: FeedAgentOptions) {
    this.#drain = { chunk: 10_000, maxKeys: 100_000, heartbeatMs: 5_000, ...options.drain };
  }

  get settings(): ResolvedFeed {
    return this.options.settings;
  }

  /** The slot's health (cached for a minute unless `fresh`). */
  async health(fresh = false): Promise<SlotHealth> {
    const now = Date.now();
    if (!fresh && this.#health && now - this.#health.at < MINUTE) return this.#health.value;
    const value = await this.options.run(slotHealth);
    this.#health = { at: now, value };
    if (value.retainedBytes !== null && value.retainedBytes > this.settings.warnRetainedBytes) {
      this.warn({
        code: "FEED_WAL_RETAINED",
        message: `the change feed's slot ${value.slot} holds back ${mib(value.retainedBytes)} of WAL (over ${mib(this.settings.warnRetainedBytes)}): is a drainer running? See docs/SYNC.md ("The change feed") to bound it (max_slot_wal_keep_size) or drop it`,
        retainedBytes: value.retainedBytes,
      });
    }
    return value;
  }

  /**
   * Drain what waits, for at most about `budgetMs`, when this role may. With `setUp`, a missing feed is set up
   * (pull() and the drainer do; sync() only drains a feed that exists).
   */
  async drain(setUp: boolean, budgetMs: number): Promise<DrainReport> {
    const report: DrainReport = { drained: false, decoded: 0, written: 0 };
    if (this.settings.mode === "off") return { ...report, reason: 'sync.feed is "off"' };
    try {
      let health = await this.health();
      report.health = health;
      const why = cannotSetUp(health);
      if (why) return { ...report, reason: why };
      if (slotGone(health)) {
        if (!setUp) return { ...report, reason: "no change feed is set up on this database" };
        health = await this.#setUp(health);
        report.health = health;
        if (!health.found) return { ...report, reason: "the change feed could not be set up" };
      }
      report.drained = true;
      const started = Date.now();
      for (let retried = false; ;) {
        try {
          const step = await this.options.run((sql) => drainStep(sql, health.slot, this.#drain));
          report.decoded += step.decoded;
          report.written += step.written;
          if (step.busy || !step.full || Date.now() - started > budgetMs) break;
        } catch (err) {
          // The slot went away or was invalidated since the health check: set it up again, once, and step again.
          // A slot still there (another drainer's new one, or the failure was the step's own, e.g. a feed this
          // version may no longer use) is stepped again without a set-up.
          if (retried || !setUp) throw err;
          retried = true;
          health = await this.health(true);
          if (slotGone(health)) health = await this.#setUp(health);
          if (!health.found) throw err;
        }
      }
      if (Date.now() - this.#trimmedAt > MINUTE) {
        this.#trimmedAt = Date.now();
        await this.options.run((sql) =>
          trimFeed(sql, this.settings.retentionMs, Math.min(5 * MINUTE, this.settings.retentionMs)),
        );
      }
      return report;
    } catch (err) {
      this.#health = undefined;
      const message = this.#redact(errorText(err));
      this.warn({ code: "FEED_DRAIN_FAILED", message: `draining the change feed failed: ${message}` });
      return { ...report, drained: false, reason: message };
    }
  }

  /** A warning, unless the same code was given lately. */
  warn(warning: OminipgWarning): void {
    const last = this.#warned.get(warning.code) ?? -Infinity;
    if (Date.now() - last < (WARN_EVERY[warning.code] ?? 0)) return;
    this.#warned.set(warning.code, Date.now());
    this.options.warn(warning);
  }

  async #setUp(health: SlotHealth): Promise<SlotHealth> {
    if (Date.now() - this.#setUpFailedAt < MINUTE) return health;
    try {
      const { replaced } = await this.options.run((sql) => ensureFeed(sql, this.options.createTimeoutMs ?? 10_000));
      if (replaced)
        this.warn({
          code: "FEED_SLOT_REPLACED",
          message: `the change feed's slot ${health.slot} was ${health.walStatus === "lost" ? "invalidated by the server (max_slot_wal_keep_size)" : "missing"} and was replaced: every client diffs its tables once`,
        });
      return await this.health(true);
    } catch (err) {
      this.#setUpFailedAt = Date.now();
      const message = this.#redact(errorText(err));
      this.warn({ code: "FEED_UNAVAILABLE", message: `the change feed could not be set up: ${message}` });
      return health;
    }
  }

  #redact(text: string): string {
    return this.options.redact ? this.options.redact(text) : text;
  }
}

function mib(bytes: number): string {
  return `${Math.round(bytes / (1 << 20))} MiB`;
}
