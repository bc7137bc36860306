import { columnList as cols, columnsEqual, qualified, quoteIdent, quoteLiteral } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { SLOT_NAME_SQL } from "../remote/feed.js";
import { partitionedSql } from "../remote/remote-target.js";
import { FEED, FEED_CLIENTS, FEED_OBJECTS, FEED_READ, FEED_STATE, IDENTITY_EXPRESSION } from "../remote/schema.js";
import { tooOld, usableFromSql, usableSql } from "../remote/versions.js";
import { allColumns, heldName, stageName } from "./sql.js";

/**
 * The SQL of the feed strategy (feed.ts). Remote statements run in the pull's snapshot, under the client's own
 * identity: the feed gives keys, the rows themselves are read from the tables, where row-level security applies.
 */

const R = "ominipg_r";

/**
 * Whether this role can read the feed at all (its tables exist and are granted: of the feed, the columns a reader
 * reads, not the images, remote/schema.ts; has_column_privilege cost ~20 catalog blocks more per idle pull), this
 * database's slot and its state.
 */
export const FEED_ACCESS_SQL = `SELECT coalesce(has_table_privilege(to_regclass('${FEED_STATE}'), 'SELECT'), false)
  AND coalesce(has_any_column_privilege(to_regclass('${FEED}'), 'SELECT'), false) AS readable,
  ${usableFromSql(FEED_OBJECTS)} AS usable_from,
  ${SLOT_NAME_SQL} AS slot, r.slot_name IS NOT NULL AS slot_found, r.wal_status::text AS wal_status
  FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots AS r ON r.slot_name = ${SLOT_NAME_SQL}`;

/** A row of FEED_ACCESS_SQL. */
export interface FeedAccess {
  readable: boolean;
  usable_from: number | null;
  slot: string;
  slot_found: boolean;
  wal_status: string | null;
}

/** Why this role may not read the feed FEED_ACCESS_SQL describes (its one row `a`); undefined if it may. */
export function unreadableFeed(a: FeedAccess): string | undefined {
  if (!a.readable) return "the change feed's tables are missing here, or not granted to this role";
  return tooOld(FEED_OBJECTS, a.usable_from);
}

/**
 * The partitions of the table `x.r` (all levels; none for a table that is not partitioned), by oid: a JSON array
 * of [oid, schema, name, whether this role may read it by its own name, whether it is UNLOGGED].
 */
const PARTITIONS =
  `(SELECT json_agg(json_build_array(p.relid::oid, n.nspname, c.relname, ` +
  `has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'), c.relpersistence = 'u') ORDER BY p.relid::oid) ` +
  `FROM pg_partition_tree(x.r) AS p JOIN pg_class AS c ON c.oid = p.relid ` +
  `JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE p.level > 0)`;

/**
 * Table `c` is UNLOGGED: it writes no WAL, so logical decoding never sees its changes (read by the view, per pull,
 * with its partitions': RemoteTable.unlogged).
 */
const UNLOGGED_SQL = (c: string) => `(SELECT k.relpersistence = 'u' FROM pg_class AS k WHERE k.oid = ${c})`;

/**
 * What decides which rows of the table `x.r` this role sees, and how the feed's rows of it are read; a change of
 * any of it changes no row the feed could list. Whether row-level security applies to this role and, where it
 * does, the replica identity (an update or delete drained without the row's old image cannot show a tenant that
 * the row left its sight) and the policies (their expressions as stored); the key columns' types (the feed's
 * older keys are read as the table's key type now); and its primary key constraint (a table without one has its
 * changes skipped by the drainer: one dropped and made again, what was written meanwhile is not in the feed; not
 * its index, which REINDEX CONCURRENTLY replaces). Lookups by oid, the row security ones only where it applies:
 * measured, ~3 catalog blocks a table where it does not apply (~9 on a connection's first use), ~10 where it
 * does (every pull reads it, idle or not).
 */
const SECURITY =
  `json_build_array(row_security_active(x.r), (SELECT json_build_array(c.relreplident, (SELECT md5(string_agg(` +
  `concat_ws(' ', quote_ident(p.polname), p.polcmd, p.polpermissive, p.polroles::text, p.polqual::text), ',' ` +
  `ORDER BY p.polname)) FROM pg_policy AS p WHERE p.polrelid = c.oid)) FROM pg_class AS c ` +
  `WHERE c.oid = x.r AND row_security_active(x.r)), (SELECT json_agg(json_build_array(a.attname, a.atttypid::oid, ` +
  `a.atttypmod) ORDER BY a.attname) FROM pg_attribute AS a WHERE a.attrelid = x.r AND a.attnum > 0 ` +
  `AND a.attname = ANY (x.k)), (SELECT k.oid FROM pg_constraint AS k WHERE k.conrelid = x.r AND k.contype = 'p'))`;

/**
 * The key columns of table `x.r` with their types, as a column definition list (`jsonb_to_record`): the feed's
 * keys are read as the key alone. Read as a row of the table (`jsonb_populate_record`), a key left the other
 * columns NULL, which a NOT NULL domain of one of them refuses: every read of the table's feed failed. Null where
 * a list cannot serve: a key type in a schema this role may not use (naming a type needs USAGE there, reading a
 * column of it does not), or a key column no longer there; the keys are read as a row of the table then.
 */
const KEY_COLUMNS =
  `(SELECT CASE WHEN count(*) = cardinality(x.k) AND bool_and(has_schema_privilege(ty.typnamespace, 'USAGE')) ` +
  `THEN string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ') END ` +
  `FROM pg_attribute AS a JOIN pg_type AS ty ON ty.oid = a.atttypid ` +
  `WHERE a.attrelid = x.r AND a.attnum > 0 AND a.attname = ANY (x.k))`;

/**
 * The slot's state row, as of the snapshot: its epoch, how far the feed is complete and trimmed, its age. With
 * `tables`: also the identity the snapshot reads under (`reader`, as the feed's readers are registered), and
 * `remote`, those of the tables the remote has, each with its oid, partitions and security set-up (a JSON
 * array of {s, t, oid, parts, security, keys, partitioned}; `partitioned`: remote/remote-target.ts).
 */
export function feedStateSql(
  slot: string,
  tables?: readonly { schema: string; name: string; primaryKey: readonly string[] }[],
): string {
  const list = JSON.stringify((tables ?? []).map((t) => ({ s: t.schema, t: t.name, k: t.primaryKey })));
  const remote = tables
    ? `, ${IDENTITY_EXPRESSION} AS reader, (SELECT coalesce(json_agg(json_build_object('s', x.s, 't', x.t, 'oid', x.r::oid, ` +
      `'parts', ${PARTITIONS}, 'security', ${SECURITY}, 'keys', ${KEY_COLUMNS}, 'partitioned', ${partitionedSql("x.r")}, 'unlogged', ${UNLOGGED_SQL("x.r")})), '[]') FROM ` +
      `(SELECT q.s, q.t, q.k, to_regclass(format('%I.%I', q.s, q.t)) AS r FROM jsonb_to_recordset(${quoteLiteral(list)}::jsonb) AS q(s text, t text, k name[])) AS x ` +
      `WHERE x.r IS NOT NULL)::text AS remote`
    : "";
  return (
    `SELECT epoch::text AS epoch, drained_upto::text AS drained_upto, trimmed_upto::text AS trimmed_upto, ` +
    `floor(extract(epoch FROM now() - drained_at) * 1000)::int8 AS age_ms${remote} FROM ${FEED_STATE} WHERE slot_name = ${quoteLiteral(slot)}`
  );
}

/**
 * A policy of table `c` reads another table (a membership list, say): a row's visibility then changes with no
 * change of the row, which the feed would list.
 */
const POLICY_READS_OTHERS =
  `EXISTS (SELECT 1 FROM pg_policy AS p JOIN pg_depend AS d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid ` +
  `WHERE p.polrelid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid)`;

/**
 * Table `c` has a VIRTUAL generated column (PostgreSQL 18): not in the WAL, nor computed in the row images a
 * policy is judged on (the feed's read policy), so a policy reading it would see NULL there.
 */
const VIRTUAL_COLUMN =
  `EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ` +
  `AND a.attgenerated = 'v')`;

/**
 * How many keys of the table changed in the range, whether the table must be read whole (a TRUNCATE...), and
 * why the feed cannot serve the table, if it cannot (FeedProbe.blind; an UNLOGGED one the view says): row-level
 * security applies and the feed is blind to rows entering or leaving this role's sight: a policy reads another
 * table, or a virtual generated column, or without REPLICA IDENTITY FULL the server does not log the rows' images
 * an UPDATE or DELETE started from (nor, for a partitioned table, does the drainer keep them: it keeps them for a
 * partition whose own row security is on).
 */
export function feedCountSql(r: Omit<FeedRange, "again">): string {
  return (
    `SELECT count(*)::int8 AS n, coalesce(bool_or(key IS NULL), false) AS whole, ` +
    `(SELECT CASE WHEN NOT row_security_active(c.oid) THEN NULL ` +
    `WHEN ${POLICY_READS_OTHERS} THEN 'policy' WHEN ${VIRTUAL_COLUMN} THEN 'virtual' ` +
    `WHEN c.relkind = 'p' THEN 'partitioned' WHEN c.relreplident <> 'f' THEN 'identity' END FROM pg_class AS c ` +
    `WHERE c.oid = to_regclass(format('%I.%I', ${quoteLiteral(r.schema)}::text, ${quoteLiteral(r.name)}::text))) AS blind ` +
    `FROM ${rangeRows(r, "ominipg_f")}`
  );
}

/** Where one table's feed is read from: its changes after `after` up to `upto`, and the keys to read again. */
export interface FeedRange {
  schema: string;
  name: string;
  /** The names its changes are listed under: its own, and its partitions' (feed-view.ts RemoteTable). */
  tables: [string, string][];
  after: string;
  upto: string;
  /** Its key columns as a column definition list (KEY_COLUMNS); null: its keys are read as a row of the table. */
  keys: string | null;
  /** A JSON array of keys to read again (log/reread.ts). */
  again: string;
}

/**
 * The feed rows of the range (a FROM item), by the index: those of the table and, when it is partitioned on the
 * remote, of its partitions (the drainer lists a change under the partition that holds the row). All as literals:
 * statements of a pull's few round trips take no parameters (postgres.js sends a statement with parameters in two:
 * it asks for their types first), and COPY takes none at all.
 */
function rangeRows(r: Omit<FeedRange, "again">, alias: string): string {
  const tables = r.tables.map(
    ([schema, name]) => `(schema_name = ${quoteLiteral(schema)} AND table_name = ${quoteLiteral(name)})`,
  );
  return (
    `(SELECT ${FEED_READ} FROM ${FEED} WHERE (${tables.join(" OR ")}) ` +
    `AND lsn > ${quoteLiteral(r.after)}::pg_lsn AND lsn <= ${quoteLiteral(r.upto)}::pg_lsn) AS ${alias}`
  );
}

/**
 * Each distinct changed key of the range, and of the keys to read again, typed by the table's key columns
 * (KEY_COLUMNS: each value's text through its type's input function), with the row the table holds
 * for it now, or none (deleted, or not visible to this role), as COPY text: `ominipg_found`, then every column
 * (a key's columns from the key, the others null when there is no row). COPY takes no parameters: the range is
 * spliced in as literals (rangeRows).
 */
export function feedCopySql(t: TableInfo, from: string, r: FeedRange): string {
  const p = "ominipg_p";
  // The key as the remote row spells it (1.10, not the feed's 1.1 of an equal numeric); a gone key's as the feed's.
  const columns = t.columns.map((c) =>
    t.primaryKey.includes(c.name)
      ? `coalesce(${R}.${quoteIdent(c.name)}, ominipg_k.${quoteIdent(c.name)})`
      : `${R}.${quoteIdent(c.name)}`,
  );
  return (
    `COPY (WITH ominipg_k AS (SELECT DISTINCT ${cols(t.primaryKey, p)} FROM (SELECT key FROM ${rangeRows(r, "ominipg_fr")} WHERE key IS NOT NULL ` +
    `UNION ALL SELECT value FROM jsonb_array_elements(${quoteLiteral(r.again)}::jsonb)) AS ominipg_f ` +
    `CROSS JOIN LATERAL ${r.keys === null ? `jsonb_populate_record(NULL::${t.sql}, ominipg_f.key) AS ${p}` : `jsonb_to_record(ominipg_f.key) AS ${p}(${r.keys})`}) ` +
    `SELECT ${R}.${quoteIdent(t.primaryKey[0]!)} IS NOT NULL, ${columns.join(", ")} ` +
    `FROM ominipg_k LEFT JOIN (SELECT ${cols(allColumns(t))} FROM ${from}) AS ${R} ` +
    `ON ${columnsEqual(t.primaryKey, R, "ominipg_k")}) TO STDOUT`
  );
}

/** Whether this version may write the feed's tables (versions.ts): where not, (un)registering does nothing. */
const USABLE = usableSql(FEED_OBJECTS);

/** This client's position in the feed ($1 client id, $2 epoch, $3 position), as its own identity's row. */
export const REGISTER_SQL = `INSERT INTO ${FEED_CLIENTS} (client_id, epoch, lsn) SELECT $1::uuid, $2::uuid, $3::text::pg_lsn
  WHERE ${USABLE} ON CONFLICT (owner, client_id) DO UPDATE SET epoch = EXCLUDED.epoch, lsn = EXCLUDED.lsn, seen_at = now()`;

/** Forget this client's position (unregister()). */
export const UNREGISTER_SQL = `DELETE FROM ${FEED_CLIENTS} WHERE client_id = $1::uuid AND owner = public._ominipg_identity() AND ${USABLE}`;

/** The local temp table of the keys the remote no longer has a row for (deleted, or out of this role's sight). */
export function goneName(t: TableInfo): string {
  return qualified("pg_temp", `ominipg_gone_${t.oid}`);
}

/**
 * The gone keys' temp table, after the stage: its key columns, the others as text (a gone key's row from
 * `feedCopySql` is nulls but for the key, and is copied in as it comes: the stage's NOT NULL constraints and domains
 * refusing NULL would refuse it), keyed.
 */
export function createGoneSql(t: TableInfo): string {
  const columns = allColumns(t).map((c) =>
    t.primaryKey.includes(c) ? quoteIdent(c) : `NULL::text AS ${quoteIdent(c)}`,
  );
  return (
    `${dropGoneSql(t)}; CREATE TEMP TABLE ${goneName(t)} AS SELECT ${columns.join(", ")} FROM ${stageName(t)} WITH NO DATA; ` +
    `ALTER TABLE ${goneName(t)} ADD PRIMARY KEY (${cols(t.primaryKey)})`
  );
}

export function dropGoneSql(t: TableInfo): string {
  return `DROP TABLE IF EXISTS ${goneName(t)}`;
}

/**
 * COPY of `feedCopySql`'s rows, their leading `ominipg_found` dropped (copy-text.ts, partByFlag), into the stage
 * (found) or the gone keys (not found).
 */
export function fetchedInSql(t: TableInfo, found: boolean): string {
  return `COPY ${found ? stageName(t) : goneName(t)} (${cols(allColumns(t))}) FROM STDIN`;
}

/** Delete the local rows of the gone keys, unless held (pending local changes). */
export function deleteGoneSql(t: TableInfo): string {
  return (
    `WITH ominipg_d AS (DELETE FROM ${t.sql} AS ominipg_x USING ${goneName(t)} AS ominipg_g WHERE ${columnsEqual(t.primaryKey, "ominipg_x", "ominipg_g")} ` +
    `AND NOT EXISTS (SELECT 1 FROM ${heldName(t)} AS ominipg_k WHERE ${columnsEqual(t.primaryKey, "ominipg_k", "ominipg_x")}) RETURNING 1) ` +
    `SELECT count(*)::int AS deleted FROM ominipg_d`
  );
}

/** The pending-change check's scope (conflicts.ts): keys the feed fetched, with a row (the stage) or without (gone). */
export function fetchedKey(t: TableInfo, alias: string): string {
  const eq = (other: string) =>
    `EXISTS (SELECT 1 FROM ${other} AS ominipg_e WHERE ${columnsEqual(t.primaryKey, "ominipg_e", alias)})`;
  return `(${eq(stageName(t))} OR ${eq(goneName(t))})`;
}
