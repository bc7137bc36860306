/**
 * The change feed as a pull's snapshot sees it (its slot's state, and the pulled tables as the remote's catalog
 * has them), and each table's position in it, kept in the local meta table: whether the table can be pulled from
 * the feed from there, and which of the feed's rows it reads (feed.ts).
 */
import { SyncError } from "../core/errors.js";
import { lsnValue } from "../core/feed.js";
import type { Driver } from "../core/driver.js";
import type { TableInfo } from "../core/table.js";
import type { PartitionedTables } from "../remote/remote-target.js";
import { rereadPosition, type RereadPosition } from "../log/reread.js";
import { deleteMeta, getMeta, setMeta } from "../log/tables.js";
import type { PullContext } from "./context.js";
import { FEED_ACCESS_SQL, feedStateSql, unreadableFeed, type FeedAccess, type FeedRange } from "./feed-sql.js";

export interface FeedView {
  slot: string;
  epoch: string;
  drainedUpto: string;
  trimmedUpto: string;
  /** Why tables cannot be pulled from it now (they diff); undefined when it is usable. */
  unusable: string | undefined;
  /** The remote identity the pull reads under (role, and the claims' `sub`): it decides which rows the pull sees. */
  reader: string;
  /** The pulled tables as the remote has them (by tableKey). */
  remote: Map<string, RemoteTable>;
}

/** A pulled table as the snapshot's catalog has it. */
export interface RemoteTable {
  /**
   * Its oid and its partitions' oids and names: a table dropped and made again, or a partition attached,
   * detached, dropped or replaced, changes its rows with no change the feed could list.
   */
  identity: string;
  /** What decides which rows this role sees of it, and its key's types (feed-sql.ts SECURITY): the same. */
  security: string;
  /** The names the drainer lists its changes under, its partitions' (partitioned on the remote). */
  partitions: [string, string][];
  /** A partition this role may not read by its own name: the feed's rows listed under it are hidden from it. */
  unreadable: boolean;
  /** Its key columns as a column definition list (feed-sql.ts KEY_COLUMNS; null: none serves). */
  keys: string | null;
  /** Partitioned on the remote: read whole, not ONLY (remote/remote-target.ts). */
  partitioned: boolean;
  /** UNLOGGED, or a partition of it: logical decoding never sees its changes (feed.ts BLIND). */
  unlogged: boolean;
}

/**
 * A table's position in the feed: every change up to `lsn` of epoch `epoch` is applied locally; and in the log,
 * what the pull must read again since then although the remote did not change it (log/reread.ts).
 */
export interface FeedCursor {
  epoch: string;
  lsn: string;
  reread?: RereadPosition;
  /** The remote table's identity and security then (RemoteTable): when not the same now, the table diffs once. */
  identity?: string;
  security?: string;
  /** The remote identity it was read under (FeedView): another one sees other rows, the table diffs once. */
  reader?: string;
  /** The local table then (localShape): made again, or a column added, it lacks what earlier changes brought. */
  local?: string;
}

/** The local table's oid and columns: a column added to it after the remote's has the remote's values only so. */
function localShape(t: TableInfo): string {
  return JSON.stringify([t.oid, t.columns.map((c) => [c.name, c.typeId])]);
}

/** The feed as the pull's snapshot sees it; `absent`: why there is none for this role. */
export async function readFeedView(
  ctx: PullContext,
  staleMs: number,
  tables: readonly TableInfo[],
): Promise<{ view: FeedView; absent?: undefined } | { view?: undefined; absent: string }> {
  const a = (await ctx.tx.unsafe<FeedAccess[]>(FEED_ACCESS_SQL))[0]!; // always one row
  const unreadable = unreadableFeed(a);
  if (unreadable !== undefined) return { absent: unreadable };
  const [s] = await ctx.tx.unsafe<
    { epoch: string; drained_upto: string; trimmed_upto: string; age_ms: number; reader: string; remote: string }[]
  >(feedStateSql(a.slot, tables));
  if (!s) return { absent: `no change feed is set up on this database (slot ${a.slot})` };
  const age = Number(s.age_ms);
  const unusable = !a.slot_found
    ? `its slot ${a.slot} is missing`
    : a.wal_status === "lost"
      ? `its slot ${a.slot} was invalidated by the server (wal_status lost: max_slot_wal_keep_size)`
      : age > staleMs
        ? `no drainer has run for ${Math.round(age / 1000)} s (a client with REPLICATION, or \`ominipg feed\`)`
        : undefined;
  type Row = {
    s: string;
    t: string;
    oid: number;
    parts: [number, string, string, boolean, boolean][] | null;
    security: unknown;
    keys: string | null;
    partitioned: boolean;
    unlogged: boolean;
  };
  const remote = new Map(
    (JSON.parse(s.remote) as Row[]).map((r): [string, RemoteTable] => {
      const parts = r.parts ?? [];
      const unlogged = r.unlogged || parts.some(([, , , , partUnlogged]) => partUnlogged);
      return [
        tableKey({ schema: r.s, name: r.t }),
        {
          // UNLOGGED (its changes never listed: it diffs) and back: diffed once more, for what came in between.
          identity: JSON.stringify([
            r.oid,
            parts.map(([oid, schema, name]) => [oid, schema, name]),
            ...(unlogged ? ["unlogged"] : []),
          ]),
          security: JSON.stringify(r.security),
          partitions: parts.map(([, schema, name]): [string, string] => [schema, name]),
          unreadable: parts.some(([, , , readable]) => !readable),
          keys: r.keys,
          partitioned: r.partitioned,
          unlogged,
        },
      ];
    }),
  );
  const { epoch, drained_upto: drainedUpto, trimmed_upto: trimmedUpto, reader } = s;
  return { view: { slot: a.slot, epoch, drainedUpto, trimmedUpto, unusable, reader, remote } };
}

export function tableKey(t: { schema: string; name: string }): string {
  return JSON.stringify([t.schema, t.name]);
}

/** The tables the view says the remote holds as partitioned (RemoteTable.partitioned). */
export function partitionedTables(view: FeedView, tables: readonly TableInfo[]): PartitionedTables {
  return new Set(tables.filter((t) => view.remote.get(tableKey(t))?.partitioned).map((t) => t.sql));
}

/** The table's changes in the feed after the cursor, up to what the view says is complete. */
export function rangeOf(t: TableInfo, view: FeedView, cursor: FeedCursor): Omit<FeedRange, "again"> {
  const remote = view.remote.get(tableKey(t));
  const tables: [string, string][] = [[t.schema, t.name], ...(remote?.partitions ?? [])];
  // Not in the remote's catalog: the table is missing there, and its read fails as such.
  const keys = remote?.keys ?? null;
  return { schema: t.schema, name: t.name, tables, after: cursor.lsn, upto: view.drainedUpto, keys };
}

function cursorKey(t: TableInfo): string {
  return `feed_cursor:${tableKey(t)}`;
}

export async function readCursor(ctx: PullContext, t: TableInfo): Promise<FeedCursor | undefined> {
  const value = await ctx.local((d) => getMeta(d, cursorKey(t)));
  return value === undefined ? undefined : (JSON.parse(value) as FeedCursor);
}

/**
 * Move the table's cursor to what the view says is complete, and past the log as it is (in the caller's local
 * transaction; no push runs during a pull, so the log's rejections and settlements are those the pull saw).
 */
export async function saveCursor(d: Driver, t: TableInfo, view: FeedView): Promise<void> {
  const remote = view.remote.get(tableKey(t));
  const reread = await rereadPosition(d, t);
  const cursor: FeedCursor = {
    epoch: view.epoch,
    lsn: view.drainedUpto,
    reread,
    ...(remote === undefined ? {} : { identity: remote.identity, security: remote.security }),
    reader: view.reader,
    local: localShape(t),
  };
  await setMeta(d, cursorKey(t), JSON.stringify(cursor));
}

/** Forget the table's cursor: its next pull diffs (a row it refused is read again then). */
export async function dropCursor(d: Driver, t: TableInfo): Promise<void> {
  await deleteMeta(d, cursorKey(t));
}

/** Why the table cannot be pulled from the feed from `cursor` on (it diffs); undefined when it can. */
export function cursorProblem(view: FeedView, cursor: FeedCursor | undefined, t: TableInfo): string | undefined {
  if (view.unusable) return view.unusable;
  if (!cursor) return "the table has no position in the feed yet";
  if (cursor.epoch !== view.epoch) return "the table's position is of an older slot";
  if (cursor.local !== localShape(t))
    return cursor.local === undefined
      ? "the table's position does not say which local table it is of yet"
      : "the local table was made again, or its columns changed, since its last pull: the feed's earlier changes " +
          "did not bring what it holds now";
  const remote = view.remote.get(tableKey(t));
  if (remote?.unreadable)
    return (
      "this role may not read every partition of the remote table by its own name (SELECT on each, USAGE on its " +
      "schema): the feed lists a change under the partition that holds the row"
    );
  if (cursor.reader !== view.reader)
    return cursor.reader === undefined
      ? "the table's position does not say which remote identity read it yet"
      : "the table was last pulled under another remote identity (role, or claims' sub), which sees other rows";
  if (cursor.identity !== remote?.identity)
    return cursor.identity === undefined
      ? "the table's position does not say which remote table it is of yet"
      : "the remote table was made again, or its partitions changed (attached, detached, dropped), or it was made " +
          "LOGGED or UNLOGGED, since its last pull";
  if (cursor.security !== remote?.security)
    return cursor.security === undefined
      ? "the table's position does not say which row-level security set-up it is of yet"
      : "what decides which rows this role sees of the remote table (row-level security, its policies, the replica " +
          "identity), its key's types or its primary key changed since its last pull";
  if (lsnValue(cursor.lsn) < lsnValue(view.trimmedUpto)) return "the feed was trimmed past the table's position";
  return undefined;
}

/** A pull that must use the feed but cannot. */
export function feedRequired(reason: string): SyncError {
  return new SyncError("FEED_UNAVAILABLE", `the change feed is required (sync.feed "require") but ${reason}`, {
    retryable: false,
  });
}
