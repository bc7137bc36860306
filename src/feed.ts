/**
 * The change feed at the facade (docs/SYNC.md, "The change feed"): a client's link to it (drain after a sync
 * when its role may, watch it for `sync.pull: "live"`, report it in status()), and the long-lived drainer of
 * `Ominipg.feed()` / `ominipg feed` for deployments whose clients may not read a slot themselves.
 */
import fs from "node:fs";
import { ClosedError, ConfigError, OminipgError } from "./core/errors.js";
import { TypedEmitter } from "./core/emitter.js";
import { resolveFeed, type FeedMode, type FeedOptions, type ResolvedFeed } from "./core/feed.js";
import { checkRemoteUrl, type TestHooks } from "./core/options.js";
import { isPostgresUrl, redact, secretsOf } from "./core/url.js";
import type { OminipgWarning } from "./core/warnings.js";
import { FEED_ACCESS_SQL, feedStateSql, unreadableFeed, type FeedAccess } from "./pull/feed-sql.js";
import type { PullResult } from "./pull/types.js";
import { openRemote, type Sql } from "./remote/connection.js";
import { backoffDelay, remoteFailure } from "./remote/retry.js";
import { FeedAgent } from "./remote/feed-agent.js";
import { cannotSetUp, ensureFeed, feedUnavailable, slotHealth } from "./remote/feed.js";
import type { Remote } from "./remote/remote.js";
import type { FeedStatus } from "./types.js";

/** How often a live client looks for new changes in the feed while idle. */
const LIVE_POLL_MS = 500;

/** How a drainer that cannot drain, or a live client whose polls fail, waits between tries (on top of its pause). */
const FAILED_BACKOFF = { baseDelayMs: 250, maxDelayMs: 5_000 };

/** One client's link to the feed (none when `sync.feed` is "off"). */
export class FeedLink {
  readonly agent: FeedAgent;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The feed position the last pull reached (null: it found no feed). */
  #pulled: string | null | undefined;
  #readable: { at: number; slot: string | undefined } | undefined;

  constructor(
    private readonly remote: Remote,
    settings: ResolvedFeed,
    warn: (w: OminipgWarning) => void,
    hooks: TestHooks = {},
  ) {
    this.agent = new FeedAgent({
      settings,
      run: (fn) => remote.asLogin(fn),
      warn,
      redact: (text) => remote.redact(text),
      drain: { afterInsert: hooks.afterFeedInsert },
    });
  }

  /** After a push, a role that may drains the feed (so that other clients see the push soon); never throws. */
  async afterSync(): Promise<void> {
    await this.agent.drain(false, 2_000);
  }

  /** What a pull found in the feed. */
  pulled(result: PullResult): void {
    this.#pulled = result.feed?.position ?? null;
    this.#readable = undefined; // the pull may have set the feed up: asked again at the next tick
  }

  /**
   * `sync.pull: "live"`: every LIVE_POLL_MS while `idle()`, drain (when this role may) and read the feed's
   * position (one indexed row); a position the last pull did not reach starts a pull. Polling, not LISTEN:
   * notifications do not cross PgBouncer in transaction mode.
   */
  watch(pull: () => Promise<unknown>, idle: () => boolean): void {
    let failures = 0;
    const tick = async () => {
      if (this.#stopped) return;
      try {
        if (idle()) {
          await this.agent.drain(false, 1_000);
          const position = await this.#position();
          if (position !== undefined && position !== this.#pulled && idle()) await pull();
          failures = 0;
        }
      } catch {
        // A failed pull reports itself (error event). The server down, or the pull refused: polled less and less
        // often, as a drainer that cannot drain is.
        failures++;
      }
      const wait = failures === 0 ? LIVE_POLL_MS : backoffDelay(failures, FAILED_BACKOFF) + LIVE_POLL_MS;
      if (!this.#stopped) this.#timer = setTimeout(() => void tick(), wait).unref();
    };
    this.#timer = setTimeout(() => void tick(), LIVE_POLL_MS).unref();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** The feed's position as this client's role may read it; undefined without one. */
  async #position(): Promise<string | undefined> {
    if (!this.#readable || Date.now() - this.#readable.at > 30_000) {
      const a = (await this.remote.session((sql) => sql.unsafe<FeedAccess[]>(FEED_ACCESS_SQL)))[0]!; // always one row
      this.#readable = { at: Date.now(), slot: unreadableFeed(a) ? undefined : a.slot };
    }
    const { slot } = this.#readable;
    if (slot === undefined) return undefined;
    const [s] = await this.remote.session((sql) => sql.unsafe<{ drained_upto: string }[]>(feedStateSql(slot)));
    return s?.drained_upto;
  }

  /** For status(): the slot's health and the feed's state, as this client sees them. */
  async status(): Promise<FeedStatus> {
    const { settings } = this.agent;
    const out: FeedStatus = {
      mode: settings.mode,
      slot: null,
      walStatus: null,
      retainedBytes: null,
      drainedAgoMs: null,
    };
    if (settings.mode === "off") return out;
    try {
      const h = await this.agent.health(true);
      Object.assign(out, {
        slot: h.slot,
        walLevel: h.walLevel,
        walStatus: h.walStatus,
        retainedBytes: h.retainedBytes,
      });
      out.drainer = cannotSetUp(h) === undefined;
      this.#readable = undefined;
      const state = await this.remote.session(async (sql) => {
        const a = (await sql.unsafe<FeedAccess[]>(FEED_ACCESS_SQL))[0]!; // always one row
        if (unreadableFeed(a)) return undefined;
        const [s] = await sql.unsafe<{ drained_upto: string; age_ms: number }[]>(feedStateSql(a.slot));
        return s;
      });
      if (state) out.drainedAgoMs = Number(state.age_ms);
      if (this.#pulled !== undefined) out.pulledTo = this.#pulled;
    } catch (err) {
      out.error = this.remote.describe(err);
    }
    return out;
  }
}

export interface FeedDrainerOptions extends FeedOptions {
  /** Pause between drain steps when caught up, ms. Default 250. */
  intervalMs?: number;
  /** @internal Fault injection for Ominipg's own tests. */
  testHooks?: TestHooks;
}

export interface FeedDrainerEvents {
  /** A drain step wrote feed rows. */
  drain: (report: { decoded: number; written: number }) => void;
  warning: (warning: OminipgWarning) => void;
}

/**
 * A long-lived drainer (`Ominipg.feed()`, `ominipg feed`): sets the feed up if need be (its role must be a
 * superuser or have REPLICATION, the server run with wal_level=logical), then drains it every `intervalMs`,
 * trims it and warns about retained WAL, until stop().
 */
export class FeedDrainer extends TypedEmitter<FeedDrainerEvents> {
  readonly #sql: Sql;
  readonly #redact: (text: string) => string;
  readonly #agent: FeedAgent;
  readonly #intervalMs: number;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> = Promise.resolve();
  #replaced = false;

  /**
   * Whether the start found the feed's slot invalidated by the server (max_slot_wal_keep_size) or missing, and
   * replaced it: every client diffs its tables once. (Told here: no "warning" listener is attached yet.)
   */
  get replaced(): boolean {
    return this.#replaced;
  }

  private constructor(
    url: string,
    readonly settings: ResolvedFeed,
    options: FeedDrainerOptions,
  ) {
    super();
    this.#sql = openRemote(url, { max: 2 });
    const secrets = secretsOf(url, process.env);
    this.#redact = (text) => redact(text, secrets);
    this.#intervalMs = options.intervalMs ?? 250;
    this.#agent = new FeedAgent({
      settings,
      run: (fn) => fn(this.#sql),
      warn: (w) => this.emit("warning", w),
      redact: this.#redact,
      drain: { afterInsert: options.testHooks?.afterFeedInsert },
    });
  }

  /**
   * Start draining `url`'s database; fails with CONFIG_INVALID for a URL connect() would refuse too, and with
   * FEED_UNAVAILABLE when the feed cannot be set up there by this role.
   */
  static async start(url: string, options: FeedDrainerOptions = {}): Promise<FeedDrainer> {
    if (typeof url !== "string" || !isPostgresUrl(url))
      throw new ConfigError("url must be a postgres:// or postgresql:// URL");
    checkRemoteUrl("url", url, (file) => fs.readFileSync(file));
    const { intervalMs, testHooks, ...feed } = options;
    if (intervalMs !== undefined && (!Number.isInteger(intervalMs) || intervalMs < 1))
      throw new ConfigError(`the drainer's intervalMs must be a whole number >= 1, got ${String(intervalMs)}`);
    const drainer = new FeedDrainer(url, resolveFeed({ ...feed, mode: "auto" }, "feed"), { intervalMs, testHooks });
    try {
      const health = await slotHealth(drainer.#sql);
      const why = cannotSetUp(health);
      if (why) throw feedUnavailable(`cannot drain the change feed here: ${why}`);
      drainer.#replaced = (await ensureFeed(drainer.#sql, 30_000)).replaced;
    } catch (err) {
      await drainer.#sql.end({ timeout: 0 });
      throw drainer.#failed(err);
    }
    drainer.#loop = drainer.#run();
    return drainer;
  }

  /** The slot's health now. */
  async status(): Promise<Awaited<ReturnType<typeof slotHealth>>> {
    if (this.#stopped) throw new ClosedError();
    return slotHealth(this.#sql).catch((err: unknown) => {
      throw this.#failed(err);
    });
  }

  /** A failure reaching the server as FEED_UNAVAILABLE (retryable as the cause is), its text redacted. */
  #failed(err: unknown): OminipgError {
    return err instanceof OminipgError
      ? err
      : remoteFailure("FEED_UNAVAILABLE", "the change feed's server", err, this.#redact);
  }

  /** Stop after the step in flight, and close the connection. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    await this.#sql.end({ timeout: 5 });
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      const r = await this.#agent.drain(true, 5_000);
      if (r.written > 0) this.emit("drain", { decoded: r.decoded, written: r.written });
      if (this.#stopped) break;
      failures = r.drained ? 0 : failures + 1;
      // A role that may no longer drain here (its REPLICATION taken away) is told of now and then; the agent reports
      // the other failures itself.
      const why = r.health && cannotSetUp(r.health);
      if (why) this.#agent.warn({ code: "FEED_UNAVAILABLE", message: `the change feed cannot be drained: ${why}` });
      // Not drained (the server down, the role's rights gone): tried again less and less often, up to every 5 s.
      const wait = failures === 0 ? this.#intervalMs : backoffDelay(failures, FAILED_BACKOFF) + this.#intervalMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

export type { FeedMode, FeedOptions };
