/**
 * The remote change feed's slot: what a client can learn about it (probe), setting it up (the feed's tables,
 * the logical replication slot, the state row with a new epoch), replacing a slot the server invalidated,
 * trimming, and its health (the WAL it holds back). Draining is feed-drain.ts; reading is pull/feed.ts.
 *
 * One slot per database, `ominipg_feed_<database oid>` (slot names are server-wide), with the test_decoding
 * plugin, which ships with PostgreSQL and needs no publication (so no table ownership or superuser to maintain
 * one: REPLICATION is enough); docs/SYNC.md gives its measured cost against pgoutput.
 *
 * A slot keeps every WAL segment from its restart point on until it is advanced: a slot nobody drains fills
 * the disk (bounded by `max_slot_wal_keep_size`, past which the server invalidates it: `wal_status` 'lost').
 * A lost or missing slot is replaced by a new one with a new epoch; readers whose cursor is of another epoch
 * diff, then read the new feed.
 */
import { SyncError } from "../core/errors.js";
import { transaction, type Sql } from "./connection.js";
import { FEED_LOCK } from "./feed-drain.js";
import {
  FEED,
  FEED_CLIENTS,
  FEED_DDL,
  FEED_OBJECTS,
  FEED_STATE,
  FEED_TABLES_STATE_SQL,
  FEED_VERSION,
} from "./schema.js";
import { SETUP_LOCK, SETUP_SHARED, refuseTooOld, tooOld, usableFromSql } from "./versions.js";

/** This database's slot name (an SQL expression). */
export const SLOT_NAME_SQL = `('ominipg_feed_' || (SELECT oid FROM pg_database WHERE datname = current_database()))`;

/** The WAL position now (on a standby, the last replayed one). */
const WAL_NOW = `(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)`;

export interface SlotHealth {
  slot: string;
  /** The server's wal_level: the feed needs "logical". */
  walLevel: string;
  /** The oldest set-up version that may drain the feed, as a newer Ominipg set it up (versions.ts); null: any. */
  usableFrom: number | null;
  /** The role may read slots (superuser or REPLICATION). */
  mayDrain: boolean;
  found: boolean;
  /** pg_replication_slots.wal_status: reserved, extended, unreserved, lost; null without a slot. */
  walStatus: string | null;
  /** WAL the slot holds back (now - restart_lsn), bytes; null without a slot. */
  retainedBytes: number | null;
}

const HEALTH_SQL = `SELECT ${SLOT_NAME_SQL} AS slot, current_setting('wal_level') AS wal_level,
  ${usableFromSql(FEED_OBJECTS)} AS usable_from,
  coalesce((SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user), false) AS may_drain,
  r.slot_name IS NOT NULL AS found, r.wal_status::text AS wal_status,
  pg_wal_lsn_diff(${WAL_NOW}, r.restart_lsn)::int8 AS retained
  FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots AS r ON r.slot_name = ${SLOT_NAME_SQL}`;

export async function slotHealth(sql: Sql): Promise<SlotHealth> {
  const [r] = await sql.unsafe<
    {
      slot: string;
      wal_level: string;
      usable_from: number | null;
      may_drain: boolean;
      found: boolean;
      wal_status: string | null;
      retained: number | null;
    }[]
  >(HEALTH_SQL);
  return {
    slot: r!.slot,
    walLevel: r!.wal_level,
    usableFrom: r!.usable_from,
    mayDrain: r!.may_drain,
    found: r!.found,
    walStatus: r!.wal_status,
    retainedBytes: r!.retained === null ? null : Number(r!.retained),
  };
}

/** Whether the slot must be made (again): it is missing, or the server invalidated it. */
export function slotGone(h: SlotHealth): boolean {
  return !h.found || h.walStatus === "lost";
}

/** Why the feed cannot be set up by this role on this server, or undefined if it can. */
export function cannotSetUp(h: SlotHealth): string | undefined {
  if (h.walLevel !== "logical") return `the server runs with wal_level=${h.walLevel}, the feed needs wal_level=logical`;
  if (!h.mayDrain) return "the role is neither a superuser nor has REPLICATION, which reading a slot needs";
  return tooOld(FEED_OBJECTS, h.usableFrom);
}

/** A failure to set the feed up that says what to do; not retryable by the retry policy. */
export function feedUnavailable(message: string, cause?: unknown): SyncError {
  return new SyncError("FEED_UNAVAILABLE", message, { retryable: false, cause });
}

/**
 * Set the feed up where it is not (its tables, the slot, the state row), or replace a lost slot; by a role that
 * may (cannotSetUp). Creating a slot waits until the transactions running then have ended (at most
 * `timeoutMs`). Returns whether a new slot (a new epoch) was made.
 */
export async function ensureFeed(sql: Sql, timeoutMs: number): Promise<{ created: boolean; replaced: boolean }> {
  await transaction(sql, async (tx) => {
    await tx.unsafe(`SELECT pg_advisory_xact_lock(${SETUP_LOCK})`);
    const [t] =
      await tx.unsafe<
        { found: boolean; version: number; usable_from: number | null; owns: boolean; may_create: boolean }[]
      >(FEED_TABLES_STATE_SQL);
    refuseTooOld(FEED_OBJECTS, t?.usable_from);
    // A newer Ominipg's tables too are used as they are: setting them up as this version knows them would undo it.
    if (t && t.version >= FEED_VERSION) return;
    if (!t || !(t.found ? t.owns : t.may_create))
      throw feedUnavailable(
        `Ominipg's change feed tables (${FEED}) are ${t?.found ? "from an older version" : "missing"} and this role may not set them up: run \`ominipg setup <url>\` once as their owner`,
      );
    await tx.unsafe(FEED_DDL).simple();
  });
  return transaction(sql, async (tx) => {
    await tx.unsafe(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    await tx.unsafe(`SELECT ${SETUP_SHARED}, pg_advisory_xact_lock(${FEED_LOCK})`);
    const [s] = await tx.unsafe<
      { slot: string; wal_status: string | null; state: boolean; usable_from: number | null }[]
    >(
      `SELECT ${SLOT_NAME_SQL} AS slot, (SELECT wal_status::text FROM pg_replication_slots WHERE slot_name = ${SLOT_NAME_SQL}) AS wal_status, ` +
        `EXISTS (SELECT 1 FROM ${FEED_STATE} WHERE slot_name = ${SLOT_NAME_SQL}) AS state, ${usableFromSql(FEED_OBJECTS)} AS usable_from`,
    );
    const { slot, wal_status: status, state } = s!;
    refuseTooOld(FEED_OBJECTS, s!.usable_from); // a set-up since the first
    if (status !== null && status !== "lost") {
      if (state) return { created: false, replaced: false };
      // A slot without a state row (the feed's tables were dropped): start a new epoch at its position.
      await newEpoch(tx, slot, `(SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1)`);
      return { created: false, replaced: true };
    }
    if (status === "lost") await tx.unsafe(`SELECT pg_drop_replication_slot($1)`, [slot]);
    const [made] = await tx.unsafe<{ lsn: string }[]>(
      `SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'test_decoding')`,
      [slot],
    );
    await newEpoch(tx, slot, `$2::text::pg_lsn`, made!.lsn);
    return { created: true, replaced: status === "lost" || state };
  });
}

/** The state row of a new slot: a new epoch from `start` on; the rows of the old one are of no use to anyone. */
async function newEpoch(tx: Sql, slot: string, start: string, lsn?: string): Promise<void> {
  await tx.unsafe(`DELETE FROM ${FEED}`);
  await tx.unsafe(
    `INSERT INTO ${FEED_STATE} (slot_name, epoch, drained_upto, drained_at, trimmed_upto) ` +
      `SELECT $1, gen_random_uuid(), p, now(), p FROM (SELECT ${start} AS p) AS s ` +
      `ON CONFLICT (slot_name) DO UPDATE SET epoch = EXCLUDED.epoch, drained_upto = EXCLUDED.drained_upto, ` +
      `drained_at = now(), trimmed_upto = EXCLUDED.trimmed_upto, trimmed_at = now(), created_at = now()`,
    lsn === undefined ? [slot] : [slot, lsn],
  );
}

/**
 * Trim feed rows that every reader registered in this epoch (seen within the retention) has passed and that
 * were drained more than `graceMs` ago (a reader that just started has not registered yet), and rows drained
 * more than `retentionMs` ago whoever still needs them (those readers diff). Forgets readers not seen within
 * the retention. Returns the rows removed.
 */
export async function trimFeed(sql: Sql, retentionMs: number, graceMs: number): Promise<number> {
  return transaction(sql, async (tx) => {
    const [lock] = await tx.unsafe<{ got: boolean }[]>(
      `SELECT ${SETUP_SHARED}, pg_try_advisory_xact_lock(${FEED_LOCK}) AS got`,
    );
    if (!lock?.got) return 0;
    const [v] = await tx.unsafe<{ usable_from: number | null }[]>(
      `SELECT ${usableFromSql(FEED_OBJECTS)} AS usable_from`,
    );
    refuseTooOld(FEED_OBJECTS, v?.usable_from);
    const ms = (p: string) => `now() - ${p}::int8 * interval '1 millisecond'`;
    const [r] = await tx.unsafe<{ trimmed: number }[]>(
      `WITH ominipg_s AS (SELECT epoch, drained_upto FROM ${FEED_STATE} WHERE slot_name = ${SLOT_NAME_SQL}), ` +
        `ominipg_c AS (SELECT min(c.lsn) AS lsn FROM ${FEED_CLIENTS} AS c, ominipg_s AS s WHERE c.epoch = s.epoch AND c.seen_at > ${ms("$1")}), ` +
        `ominipg_passed AS (SELECT max(f.lsn) AS lsn FROM ${FEED} AS f, ominipg_s AS s, ominipg_c AS c ` +
        `WHERE f.lsn <= least(coalesce(c.lsn, s.drained_upto), s.drained_upto) AND f.drained_at < ${ms("$2")}), ` +
        `ominipg_expired AS (SELECT max(f.lsn) AS lsn FROM ${FEED} AS f WHERE f.drained_at < ${ms("$1")}), ` +
        `ominipg_h AS (SELECT greatest(p.lsn, e.lsn) AS lsn FROM ominipg_passed AS p, ominipg_expired AS e), ` +
        `ominipg_d AS (DELETE FROM ${FEED} AS f USING ominipg_h AS h WHERE f.lsn <= h.lsn RETURNING 1), ` +
        `ominipg_u AS (UPDATE ${FEED_STATE} AS st SET trimmed_upto = greatest(st.trimmed_upto, h.lsn), trimmed_at = now() ` +
        `FROM ominipg_h AS h WHERE st.slot_name = ${SLOT_NAME_SQL} AND h.lsn IS NOT NULL RETURNING 1), ` +
        `ominipg_gone AS (DELETE FROM ${FEED_CLIENTS} AS c WHERE c.seen_at < ${ms("$1")} ` +
        `OR c.epoch IS DISTINCT FROM (SELECT epoch FROM ominipg_s) RETURNING 1) ` +
        `SELECT (SELECT count(*) FROM ominipg_d)::int8 AS trimmed, (SELECT count(*) FROM ominipg_u) + (SELECT count(*) FROM ominipg_gone) AS other`,
      [retentionMs, graceMs],
    );
    return Number(r?.trimmed ?? 0);
  });
}

/** Drop this database's slot and the feed's state (`ominipg feed --drop`): readers diff from then on. */
export async function dropFeed(sql: Sql): Promise<boolean> {
  return transaction(sql, async (tx) => {
    await tx.unsafe(`SELECT ${SETUP_SHARED}, pg_advisory_xact_lock(${FEED_LOCK})`);
    const [r] = await tx.unsafe<{ found: boolean; usable_from: number | null }[]>(
      `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = ${SLOT_NAME_SQL}) AS found, ` +
        `${usableFromSql(FEED_OBJECTS)} AS usable_from`,
    );
    refuseTooOld(FEED_OBJECTS, r?.usable_from);
    if (r?.found) await tx.unsafe(`SELECT pg_drop_replication_slot(${SLOT_NAME_SQL})`);
    const [t] = await tx.unsafe<{ found: boolean }[]>(`SELECT to_regclass('${FEED_STATE}') IS NOT NULL AS found`);
    if (t?.found) {
      await tx.unsafe(`DELETE FROM ${FEED_STATE} WHERE slot_name = ${SLOT_NAME_SQL}`);
      await tx.unsafe(`DELETE FROM ${FEED}`);
    }
    return Boolean(r?.found);
  });
}

/**
 * Tables with row-level security enabled and a primary key whose replica identity is not FULL: tenants whose
 * pulls of them the feed cannot serve (pull/feed-sql.ts, feedCountSql), as `schema.name`.
 */
export async function tablesBlindToTenants(sql: Sql): Promise<string[]> {
  const rows = await sql.unsafe<{ name: string }[]>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND c.relreplident <> 'f'
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
       AND NOT (n.nspname = 'public' AND c.relname LIKE '\\_ominipg\\_%')
       AND EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.oid AND i.indisprimary)
     ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}
