/**
 * Draining the change feed's slot into `_ominipg_feed` (remote/schema.ts), one bounded step at a time.
 *
 * A step is two remote transactions:
 * 1. Under the drain lock (a transaction-level advisory lock: one drainer at a time, PgBouncer-safe; a drainer
 *    that does not get it skips the step), the slot is PEEKED (`pg_logical_slot_peek_changes`, test_decoding,
 *    at most `chunk` rows of output: whole transactions, so a large one can make it more) through a SQL cursor,
 *    read in pieces; each decoded line is parsed here (core/decoding.ts) and reduced to the primary key of the
 *    row it changed (and, for a table with row-level security enabled, the row's image before an UPDATE or
 *    DELETE: readers' visibility is decided on it, remote/schema.ts). The keys of one remote transaction are
 *    written at its COMMIT line, at its commit LSN. The state row's `drained_upto` moves in the same
 *    transaction, so a reader's snapshot sees a transaction's keys all or not at all, and a transaction at or
 *    before it is skipped: peeking it again writes nothing twice. The step ends before a commit other sessions
 *    cannot see yet (stillRunning): it is read again, and written, by a later step.
 * 2. Then the slot is advanced past what was read (`pg_replication_slot_advance`), under the lock again, and only
 *    forwards: to the last commit read, or, when the peek read everything up to the step's target (its `upto_lsn`:
 *    the WAL flushed at the step's start, or the end of the WAL written, which the step flushes, WAL_UNFLUSHED),
 *    there, so that WAL of other databases is not decoded again and again (but for a few bytes, ADVANCE_GAP). A
 *    drainer killed between 1 and 2 leaves the slot where it was: the next step peeks the same transactions and
 *    skips them. Never `get_changes`, which consumes without a transaction.
 *
 * Keys are the values' text under the canonical settings (core/settings.ts), as the type's output function
 * prints them (a json or jsonb value as the JSON it is): a reader turns them back into typed values with
 * jsonb_populate_record. Primary keys are looked up in the catalog as it is now; a table no longer there, or
 * without a primary key, is skipped (it cannot be synced). A change whose key cannot be read (an unparseable line,
 * an out-of-line key value an UPDATE left unchanged, a DELETE without a replica identity, an UPDATE of a table
 * whose replica identity would not print a changed key: NOTHING, or an index without the key's columns) and a
 * TRUNCATE record the table as a whole (key NULL): readers then re-read that table. So does a transaction that
 * changed more than `maxKeys` rows of one table (a bulk load: a reader's diff is cheaper than fetching them key by
 * key, and the drainer's memory stays bounded).
 * Ominipg's own tables (public._ominipg_*) are skipped: the feed's own writes are decoded like any other.
 */
import { parseDecoded, TOAST, type DecodedTable } from "../core/decoding.js";
import { lsnValue } from "../core/feed.js";
import { CANONICAL_SETTINGS } from "../core/settings.js";
import { quoteLiteral } from "../core/sql.js";
import { transaction, type Sql } from "./connection.js";
import { FEED_OBJECTS, FEED_STATE } from "./schema.js";
import { SETUP_SHARED, refuseTooOld, usableFromSql, usableSql } from "./versions.js";
import { INSERT_SQL, jsonOf, keyOf, payload, tableId, Txn, type FeedRow } from "./feed-txn.js";

/**
 * The WAL position up to which a peek can read (logical decoding reads flushed WAL only): on a standby, the last
 * replayed one. A record that starts before it is read whole by both the peek and the slot's advance.
 */
const WAL_FLUSHED = `(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END)`;

/**
 * The end of the last WAL record, when WAL was written past the flushed position and the step can flush it
 * (PostgreSQL 17+: `pg_logical_emit_message(..., flush)`; not on a standby): else null. WAL written without a
 * flush (a commit with synchronous_commit off; hint bits another session's scan set, with data checksums on) is
 * flushed by the WAL writer in whole pages every wal_writer_delay, so the flushed position may fall inside a
 * record, which the peek and the advance then wait for the WAL writer to flush whole: up to 200 ms (a peek of
 * 2,000 changes 80-180 ms instead of ~13, right after another session scanned the table they changed). The step
 * reads up to this end instead, after flushing it with one small logical message of its own (which the next step
 * reads and skips).
 */
const WAL_UNFLUSHED =
  `(CASE WHEN NOT pg_is_in_recovery() AND pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn() ` +
  `AND coalesce(has_function_privilege(to_regprocedure('pg_catalog.pg_logical_emit_message(boolean,text,text,boolean)'), 'EXECUTE'), false) ` +
  `THEN pg_current_wal_insert_lsn() END)`;

/** The logical message that flushes the WAL up to it (see WAL_UNFLUSHED). */
const FLUSH_MESSAGE_PREFIX = "ominipg_flush";

/**
 * Whether the step should write a record of the running transactions to the WAL (`pg_log_standby_snapshot()`,
 * PostgreSQL 16+, superusers or a role granted EXECUTE; not on a standby) because the slot's restart point lags
 * more than `RESTART_LAG` bytes behind what the step reads. Every peek and every advance decodes from the restart
 * point, which only moves to such a record: the server writes one every 15 s while it has WAL activity, so after
 * a burst of writes each step decoded all of it again (a slot 55 MB behind: a peek of 2,000 changes 70 ms instead
 * of 9, its advance 45 ms instead of 1.5). With the record written before the advance, the next step's advance
 * moves the restart point up to it.
 */
const RESTART_LAG = 256 * 1024;
/** Of the slot's row `r` of pg_replication_slots (none: false). */
const SNAPSHOT_DUE =
  `coalesce(pg_wal_lsn_diff(${WAL_FLUSHED}, r.restart_lsn) > ${RESTART_LAG}, false) ` +
  `AND NOT pg_is_in_recovery() AND coalesce(has_function_privilege(to_regprocedure('pg_catalog.pg_log_standby_snapshot()'), 'EXECUTE'), false)`;

/**
 * WAL past the slot's confirmed position below which a step that found no change leaves the slot where it is.
 * An advance is a decoding of its own (~60 catalog blocks, against ~22 for a whole idle pull), and it moves the
 * slot's catalog_xmin, which lets the next catalog reads prune pages: more WAL, for the next step to advance past
 * again. So a few bytes the drain itself wrote (the heartbeat's commit, a flush message) or such pruning made
 * three or four idle pulls in a row cost ~100 blocks each. The next peek reads these bytes again instead: no
 * change in them, and at most this much. Past it (other databases' writes) the slot moves, or it would keep
 * their WAL.
 */
const ADVANCE_GAP = 64n * 1024n;

/** The drain lock ("omfd"): one drainer at a time per database; also taken to create or replace the slot. */
export const FEED_LOCK = 0x6f6d6664;

export interface DrainOptions {
  /** Rows of decoded output per step (upto_nchanges; whole transactions, so a step may read more). */
  chunk: number;
  /** Keys of one table in one remote transaction beyond which the table is recorded as a whole. */
  maxKeys: number;
  /** With nothing to write, the state row's `drained_at` is still refreshed this often: readers see a live drainer. */
  heartbeatMs: number;
  /** Test hook: after the feed rows committed, before the slot advances. */
  afterInsert?: (() => void | Promise<void>) | undefined;
  /** Test hook: inside the step's transaction, after the slot was read, before the feed rows commit. */
  afterPeek?: (() => void | Promise<void>) | undefined;
}

export interface DrainStep {
  /** Another drainer holds the lock: nothing was done. */
  busy: boolean;
  /** Rows of decoded output read. */
  decoded: number;
  /** Feed rows written (keys, and tables recorded as a whole). */
  written: number;
  /** The position of the last commit read. */
  upto: string | undefined;
  /** Where the slot moved to: the last commit read, or its target when the step read all; undefined: not moved. */
  advanceTo?: string | undefined;
  /** The step read as much as it was allowed: more may be waiting. */
  full: boolean;
  /** The step found WAL written past the flushed position, flushed it and read up to its end (WAL_UNFLUSHED). */
  flushed: boolean;
}

/** Decoded lines per cursor read: a step's default chunk in one round trip (a line is ~100-200 bytes of key text). */
const FETCH = 10_000;
const FLUSH = 5000;

/**
 * Per table, looked up once per step: its primary-key columns, whether row-level security is enabled on it (its
 * changes then carry images), and whether its replica identity covers the key (DEFAULT, FULL, or an index holding
 * the key's columns): only then does an UPDATE that changed the key print the old one; null: not a table with a
 * primary key (now).
 */
type Keys = Map<
  string,
  { pk: string[]; rls: boolean; full: boolean; notNull: string[]; keyed: boolean; json: Set<string> } | null
>;

/**
 * The tables' primary keys and whether row-level security is on. The list goes in as a literal, as the step's
 * other statements' values do: postgres.js sends a statement with parameters in two round trips.
 */
const pkSql = (tables: { s: string; t: string }[]) =>
  `SELECT q.s, q.t, k.cols, j.json, coalesce(c.relrowsecurity, false) AS rls, ` +
  `coalesce(c.relreplident = 'f', false) AS full, (SELECT array_to_json(array_agg(n.attname::text))::text FROM pg_attribute AS n ` +
  `WHERE n.attrelid = c.oid AND n.attnum > 0 AND NOT n.attisdropped AND n.attnotnull AND n.attgenerated <> 'v') AS not_null, ` +
  `coalesce(c.relreplident IN ('d', 'f') OR ` +
  `(c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index r WHERE r.indrelid = c.oid AND r.indisreplident ` +
  `AND r.indkey::int2[] @> k.indkey)), false) AS keyed ` +
  `FROM jsonb_to_recordset(${quoteLiteral(JSON.stringify(tables))}::jsonb) AS q(s text, t text) ` +
  `LEFT JOIN pg_namespace n ON n.nspname = q.s LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = q.t ` +
  `LEFT JOIN LATERAL (SELECT i.indkey::int2[] AS indkey, ` +
  `array_to_json(array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)))::text AS cols ` +
  `FROM pg_index i JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey::int2[]) ` +
  `WHERE i.indrelid = c.oid AND i.indisprimary GROUP BY i.indkey) AS k ON true ` +
  // Columns of json and jsonb (or a domain over them): their values go into keys and images as JSON, not as text.
  `LEFT JOIN LATERAL (SELECT array_to_json(array_agg(a.attname::text))::text AS json FROM pg_attribute a ` +
  `JOIN pg_type ty ON ty.oid = a.atttypid WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ` +
  `AND (CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END) IN ('json'::regtype, 'jsonb'::regtype)) AS j ON true`;

async function lookUpKeys(tx: Sql, keys: Keys, tables: DecodedTable[]): Promise<void> {
  const missing = new Map<string, DecodedTable>();
  for (const t of tables) {
    const id = tableId(t);
    // Ominipg's own tables are not recorded (record): the feed's own rows, read by the step after the one that
    // wrote them, need no lookup (one catalog query, ~5 ms, at the first pull after every change).
    if (!own(t) && !keys.has(id)) missing.set(id, t);
  }
  if (missing.size === 0) return;
  const list = [...missing.values()].map((t) => ({ s: t.schema, t: t.name }));
  const rows = await tx.unsafe<
    {
      s: string;
      t: string;
      cols: string | null;
      json: string | null;
      rls: boolean;
      full: boolean;
      not_null: string | null;
      keyed: boolean;
    }[]
  >(pkSql(list));
  for (const r of rows) {
    const json = new Set(r.json === null ? [] : (JSON.parse(r.json) as string[]));
    keys.set(
      tableId({ schema: r.s, name: r.t }),
      r.cols === null
        ? null
        : {
            pk: JSON.parse(r.cols) as string[],
            rls: r.rls,
            full: r.full,
            notNull: r.not_null === null ? [] : (JSON.parse(r.not_null) as string[]),
            keyed: r.keyed,
            json,
          },
    );
  }
}

function own(t: DecodedTable): boolean {
  return t.schema === "public" && t.name.startsWith("_ominipg_");
}

/** One drain step on `slot` (see above). */
export async function drainStep(sql: Sql, slot: string, options: DrainOptions): Promise<DrainStep> {
  let snapshotDue = false; // the slot's restart point lags (see RESTART_LAG)
  const step = await transaction(sql, async (tx): Promise<DrainStep> => {
    const [lock] = await tx.unsafe<{ got: boolean }[]>(
      `SELECT ${SETUP_SHARED}, pg_try_advisory_xact_lock(${FEED_LOCK}) AS got`,
    );
    if (!lock?.got) return { busy: true, decoded: 0, written: 0, upto: undefined, full: false, flushed: false };
    await tx.unsafe(CANONICAL_SETTINGS).simple();
    // The drain lock is what keeps other drainers (and the slot's replacement) out: no row lock, so a step that
    // writes nothing takes no transaction id and writes no WAL (but the flush of WAL_UNFLUSHED).
    const [state] = await tx.unsafe<
      {
        drained_upto: string;
        flushed: string;
        unflushed: string | null;
        snapshot: boolean;
        confirmed: string | null;
        usable_from: number | null;
        xmax: string;
        xip: string;
      }[]
    >(
      `SELECT s.drained_upto::text, ${WAL_FLUSHED}::text AS flushed, ${WAL_UNFLUSHED}::text AS unflushed, ` +
        `${SNAPSHOT_DUE} AS snapshot, r.confirmed_flush_lsn::text AS confirmed, ` +
        `${usableFromSql(FEED_OBJECTS)} AS usable_from, running.xmax, running.xip FROM ${FEED_STATE} AS s ` +
        `LEFT JOIN pg_replication_slots AS r ON r.slot_name = s.slot_name CROSS JOIN ${RUNNING_SQL} ` +
        `WHERE s.slot_name = ${quoteLiteral(slot)}`,
    );
    if (!state) throw new Error(`the change feed of slot ${slot} is not set up (no row in ${FEED_STATE})`);
    // A newer set-up this version may not write (versions.ts: none runs now, and this statement sees any before).
    refuseTooOld(FEED_OBJECTS, state.usable_from);
    snapshotDue = state.snapshot;
    if (state.unflushed !== null)
      await tx.unsafe(`SELECT pg_catalog.pg_logical_emit_message(false, $1::text, ''::text, true)`, [
        FLUSH_MESSAGE_PREFIX,
      ]);
    const target = state.unflushed ?? state.flushed;
    await tx.unsafe(
      `DECLARE ominipg_peek NO SCROLL CURSOR FOR SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_changes(` +
        `${quoteLiteral(slot)}, ${quoteLiteral(target)}::pg_lsn, ${Math.max(1, Math.floor(options.chunk))}, 'include-xids', '1', 'skip-empty-xacts', '1')`,
    );
    const drainedUpto = lsnValue(state.drained_upto);
    const keys: Keys = new Map();
    let txn: Txn | undefined;
    let batch: FeedRow[] = [];
    let decoded = 0;
    let changes = 0; // lines that changed a table (any: ours, one without a key, one read before)
    let written = 0;
    let upto: string | undefined;
    let last: string | undefined; // the position of the last line read
    const flush = async () => {
      if (batch.length === 0) return;
      const rows = batch;
      batch = [];
      await tx.unsafe(INSERT_SQL, [payload(rows)]);
      written += rows.length;
    };
    let waiting = false; // a commit read is not visible yet: the step ends before it
    const running = stillRunning(state);
    for (;;) {
      const rows = await tx.unsafe<{ lsn: string; data: string }[]>(`FETCH ${FETCH} FROM ominipg_peek`);
      decoded += rows.length;
      last = rows.at(-1)?.lsn ?? last;
      const parsed = rows.map((r) => ({ lsn: r.lsn, data: r.data, change: parseDecoded(r.data) }));
      await lookUpKeys(
        tx,
        keys,
        parsed.flatMap(({ change: c }) =>
          c.kind === "row" || c.kind === "unreadable" ? [c.table] : c.kind === "truncate" ? c.tables : [],
        ),
      );
      for (const { lsn, data, change } of parsed) {
        if (data.startsWith("BEGIN")) txn = new Txn();
        else if (data.startsWith("COMMIT")) {
          // Written by a step whose slot advance did not happen (a drainer killed between the two): skipped.
          if (txn && txn.entries.length > 0 && lsnValue(lsn) > drainedUpto) {
            if (running(data.slice("COMMIT ".length).trim())) {
              waiting = true;
              break;
            }
            batch.push(...txn.rows(lsn));
          }
          txn = undefined;
          upto = lsn;
          if (batch.length >= FLUSH) await flush();
        } else if (change.kind !== "other") {
          changes++;
          if (txn) record(txn, change, keys, options.maxKeys);
        }
      }
      if (waiting || rows.length < FETCH) break;
    }
    await flush();
    await tx.unsafe(`CLOSE ominipg_peek`);
    await options.afterPeek?.();
    // Only writes move drained_upto: a step that found only Ominipg's own writes (the feed's, of the step
    // before) must not write again, or every step would give the next one something to decode.
    const wrote = written > 0 ? "true" : "false";
    await tx.unsafe(
      `UPDATE ${FEED_STATE} SET drained_upto = CASE WHEN ${wrote} THEN greatest(drained_upto, ${quoteLiteral(upto ?? "0/0")}::pg_lsn) ELSE drained_upto END, ` +
        `drained_at = now() WHERE slot_name = ${quoteLiteral(slot)} AND (${wrote} OR drained_at < now() - ${Math.floor(options.heartbeatMs)} * interval '1 millisecond')`,
    );
    const full = !waiting && decoded >= options.chunk;
    // A peek that stopped at the target read every record before it: the slot may move there even when none was
    // of this database (other databases' WAL, empty transactions), or it would decode that WAL again each step;
    // unless that is only a few bytes without a change (ADVANCE_GAP).
    const near = state.confirmed !== null && lsnValue(target) - lsnValue(state.confirmed) < ADVANCE_GAP;
    const idle = !full && changes === 0 && !snapshotDue && near;
    return {
      busy: false,
      decoded,
      written,
      upto,
      full,
      flushed: state.unflushed !== null,
      // A full step without a COMMIT read logical messages alone (the peek ends on whole transactions): past them.
      advanceTo: waiting ? upto : idle ? undefined : full ? (upto ?? last) : target,
    };
  });
  if (step.busy || step.advanceTo === undefined) return step;
  await options.afterInsert?.();
  await advance(sql, slot, step.advanceTo, snapshotDue);
  return step;
}

/**
 * Whether a transaction (its 32-bit id, as the decoded lines print it) is still running for other sessions.
 * Decoding reads a commit once its record is flushed, but other sessions see the transaction only later: after a
 * synchronous standby confirmed it, or a moment later without one; meanwhile snapshots hold it as running (in
 * their list, or at or past their xmax, which has not moved past it yet). Such a commit must not be recorded: a
 * reader's snapshot would miss its rows and still move its cursor past it. Read from a snapshot the step takes in
 * its state query, before its peek (RUNNING_SQL): a commit that snapshot holds as running waits for the next step,
 * at worst one step too early (one round trip less than a snapshot of its own after the peek).
 */
function stillRunning(row: { xmax: string; xip: string }): (xid: string) => boolean {
  const xmax = Number(row.xmax);
  const xip = new Set(row.xip ? row.xip.split(",") : []);
  // Ids wrap around at 2^32: at or past xmax when the difference, as a signed 32-bit number, is not negative.
  return (xid) => ((Number(xid) - xmax) | 0) >= 0 || xip.has(xid);
}

/** What stillRunning reads, a FROM item `running`: the current snapshot's xmax and running ids, as 32-bit ids. */
const RUNNING_SQL =
  `(SELECT (pg_snapshot_xmax(cs)::text::numeric % 4294967296)::text AS xmax, coalesce((SELECT ` +
  `string_agg((x::text::numeric % 4294967296)::text, ',') FROM pg_snapshot_xip(cs) AS x), '') AS xip ` +
  `FROM pg_current_snapshot() AS cs) AS running`;

function record(txn: Txn, change: ReturnType<typeof parseDecoded>, keys: Keys, maxKeys: number): void {
  const of = (t: DecodedTable) => keys.get(tableId(t));
  if (change.kind === "truncate") {
    for (const t of change.tables) if (!own(t) && of(t)) txn.add(t, null, maxKeys);
    return;
  }
  if (change.kind === "other") return;
  const { table } = change;
  const known = of(table);
  if (own(table) || !known) return;
  if (change.kind === "unreadable") return txn.add(table, null, maxKeys);
  const { pk, rls, full, notNull, keyed, json } = known;
  // No old key printed, and the identity does not say the key stayed: it may have changed, the old key unknown.
  if (change.op === "UPDATE" && !change.old && !keyed) return txn.add(table, null, maxKeys);
  const old = keyOf(change.old, pk, json);
  // The row before the change, for who could see it: whole (identity FULL; NULL columns are left out, so a row
  // logged with the key alone, before the identity became FULL, lacks a NOT NULL column; one with any other column
  // was logged whole), and as it was before the transaction (Txn). Readers would judge a partial row on NULLs.
  const loggedWhole =
    [...(change.old?.keys() ?? [])].some((c) => !pk.includes(c)) || notNull.every((c) => change.old?.has(c));
  const whole = full && change.old && loggedWhole && ![...change.old.values()].includes(TOAST);
  if (rls && whole) txn.add(table, old, maxKeys, jsonOf(change.old!, json));
  if (change.op === "DELETE") return txn.add(table, old, maxKeys);
  const now = keyOf(change.new, pk, json);
  txn.add(table, now, maxKeys);
  // A row this transaction made (an INSERT, a key change's new key): no reader saw any state of it before.
  if (now !== null && (change.op === "INSERT" || (old !== null && old !== now))) txn.made(table, now);
  if (change.old) txn.add(table, old, maxKeys); // a key change: the old key is gone
}

/**
 * Move the slot forwards to `upto` (never back: another drainer may have gone further meanwhile), after writing a
 * record of the running transactions when the step found the restart point lagging (see RESTART_LAG).
 */
async function advance(sql: Sql, slot: string, upto: string, snapshot: boolean): Promise<void> {
  await transaction(sql, async (tx) => {
    await tx.unsafe(`SELECT ${SETUP_SHARED}, pg_advisory_xact_lock(${FEED_LOCK})`); // waits for a step in flight
    if (snapshot) await tx.unsafe(`SELECT pg_catalog.pg_log_standby_snapshot()`);
    const to = `${quoteLiteral(upto)}::pg_lsn`;
    // Not where a newer set-up this version may not use came in since the step (versions.ts).
    await tx.unsafe(
      `SELECT pg_replication_slot_advance(slot_name, ${to}) FROM pg_replication_slots ` +
        `WHERE slot_name = ${quoteLiteral(slot)} AND confirmed_flush_lsn < ${to} ` +
        `AND ${usableSql(FEED_OBJECTS)}`,
    );
  });
}
