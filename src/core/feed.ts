import { ConfigError } from "./errors.js";

/**
 * The remote change feed's options (`sync.feed`, `Ominipg.feed()`): whether pulls use it, and how drainers keep it.
 * docs/SYNC.md ("The change feed") says what each costs.
 */
export type FeedMode = "auto" | "off" | "require";

export interface FeedOptions {
  /**
   * "auto" (default): with a role that may (superuser or REPLICATION) on a server with `wal_level=logical`, set
   * the feed up and drain it during pull() and sync(); pull from it wherever it is usable, else diff. "off": never
   * touch it (pulls diff). "require": a pull fails (FEED_UNAVAILABLE) rather than diff because the feed is
   * missing, not drained or lost, or cannot serve a table at any pull (docs/SYNC.md); a table's one-time re-read
   * (new, trimmed past, its visibility changed) is still diffed.
   */
  mode?: FeedMode;
  /** Feed rows are trimmed this long after they were drained, even if a registered reader has not passed them. Default 1 day. */
  retentionMs?: number;
  /** A feed no drainer has refreshed for this long counts as not drained: pulls diff. Default 30 s. */
  staleMs?: number;
  /** A `warning` event when the slot holds back more WAL than this. Default 1 GiB. */
  warnRetainedBytes?: number;
}

export interface ResolvedFeed {
  mode: FeedMode;
  retentionMs: number;
  staleMs: number;
  warnRetainedBytes: number;
}

export const FEED_DEFAULTS: ResolvedFeed = {
  mode: "auto",
  retentionMs: 24 * 3600_000,
  staleMs: 30_000,
  warnRetainedBytes: 1 << 30,
};

const MODES: readonly FeedMode[] = ["auto", "off", "require"];
const KEYS = new Set(["mode", "retentionMs", "staleMs", "warnRetainedBytes"]);

/** `sync.feed`: a mode, or the options object. */
export function resolveFeed(value: FeedMode | FeedOptions | undefined, where = "sync.feed"): ResolvedFeed {
  if (value === undefined) return { ...FEED_DEFAULTS };
  const options: FeedOptions = typeof value === "string" ? { mode: value } : value;
  if (options === null || typeof options !== "object" || Array.isArray(options))
    throw new ConfigError(`${where} must be "auto", "off", "require" or an object of feed options`);
  for (const key of Object.keys(options)) if (!KEYS.has(key)) throw new ConfigError(`unknown ${where} option "${key}"`);
  if (options.mode !== undefined && !MODES.includes(options.mode))
    throw new ConfigError(`${where} mode must be "auto", "off" or "require", got ${String(options.mode)}`);
  const ms = (v: unknown, name: string, fallback: number) => {
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      throw new ConfigError(`${where}.${name} must be a whole number >= 1, got ${String(v)}`);
    return v;
  };
  return {
    mode: options.mode ?? FEED_DEFAULTS.mode,
    retentionMs: ms(options.retentionMs, "retentionMs", FEED_DEFAULTS.retentionMs),
    staleMs: ms(options.staleMs, "staleMs", FEED_DEFAULTS.staleMs),
    warnRetainedBytes: ms(options.warnRetainedBytes, "warnRetainedBytes", FEED_DEFAULTS.warnRetainedBytes),
  };
}

/** An LSN's text (`16/B374D848`) as a number. */
export function lsnValue(text: string): bigint {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}
