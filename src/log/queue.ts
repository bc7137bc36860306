import type { Driver } from "../core/driver.js";
import { isTooLarge } from "../core/sqlstate.js";
import { inLocalTransaction } from "../local/transaction.js";
import { CONFLICTS_TABLE, QUEUE_TABLE, REREAD_TABLE } from "./tables.js";

/**
 * Reading and draining the change log for a push. Every query reads a range of ids (see idRange), never a
 * LIMIT page: the planner scans it by the primary key with or without statistics (PGlite runs no
 * autovacuum; without them a LIMIT page sorted every entry after the cursor), and ids left unused by
 * rolled-back writes cost nothing.
 */

/** A captured change as the log holds it: its row images are json text (`to_json` of the row). */
export interface LogEntry {
  id: number;
  schema: string;
  table: string;
  op: "I" | "U" | "D" | "T";
  priority: number;
  oldRow: string | null;
  newRow: string | null;
}

/** What a sync starts from: the last id, the number of entries, the prioritized tables, where the first run of inserts ends. */
export interface LogExtent {
  maxId: number;
  total: number;
  /** "schema.table" of every table with a prioritized entry. */
  priorityTables: string[];
  /** The id of the first entry other than an insert (maxId + 1 if none): what is before it is a run of inserts. */
  firstRunEnd: number;
}

/** Ids a window page reads, from its first entry on. */
const PAGE = 5000;

export async function logExtent(d: Driver): Promise<LogExtent> {
  // max(id) on its own is an index lookup; in the scan it would cost a third of it.
  const top = await d.query<{ max: number }>(`SELECT coalesce(max(id), 0)::int8 AS max FROM ${QUEUE_TABLE}`, [], {
    prepare: false,
  });
  const { rows } = await d.query<{ n: number; prioritized: number; change: number | null }>(
    `SELECT count(*)::int8 AS n, count(*) FILTER (WHERE priority > 0)::int8 AS prioritized,
            min(id) FILTER (WHERE op <> 'I')::int8 AS change FROM ${QUEUE_TABLE}`,
    [],
    { prepare: false },
  );
  const max = Number(top.rows[0]!.max);
  const { n, prioritized, change } = rows[0]!;
  const priority =
    Number(prioritized) === 0
      ? []
      : (
          await d.query<{ s: string; t: string }>(
            `SELECT DISTINCT schema_name AS s, table_name AS t FROM ${QUEUE_TABLE} WHERE priority > 0`,
            [],
            { prepare: false },
          )
        ).rows;
  return {
    maxId: max,
    total: Number(n),
    priorityTables: priority.map((r) => `${r.s}.${r.t}`),
    firstRunEnd: change === null ? max + 1 : Number(change),
  };
}

/** The id of the first entry queued for any of `tables` ("schema.table"); undefined when none is. */
export async function firstQueuedId(d: Driver, tables: readonly string[]): Promise<number | undefined> {
  if (tables.length === 0) return undefined;
  const { rows } = await d.query<{ id: number | null }>(
    `SELECT min(id)::int8 AS id FROM ${QUEUE_TABLE} WHERE schema_name || '.' || table_name = ANY($1::text[])`,
    [tables],
    { prepare: false },
  );
  const id = rows[0]?.id;
  return id === null || id === undefined ? undefined : Number(id);
}

/**
 * A read of `size` ids of the log as one value (readPage, readInsertRuns), with half as many while that is too
 * large (isTooLarge: a few thousand entries of rows of a few hundred KB pass 1 GB), down to one entry: a
 * queue of large rows is read in smaller pieces instead of failing every sync.
 */
export async function fewerIfTooLarge<T>(size: number, read: (size: number) => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await read(size);
    } catch (err) {
      if (size <= 1 || !isTooLarge(err)) throw err;
      size = Math.ceil(size / 2);
    }
  }
}

/**
 * The SQL that reads a range of the log's ids: a CTE `bounds (hi)`, from the first entry after $1 (of those
 * `filter` keeps) to $3 - 1 ids past it and no further than $2, and the condition for the entries in it.
 */
function idRange(filter = ""): { bounds: string; within: string } {
  return {
    bounds: `WITH bounds AS (SELECT least($2::int8, min(id) + $3::int8 - 1) AS hi FROM ${QUEUE_TABLE} WHERE id > $1::int8 ${filter})`,
    within: `id > $1::int8 AND id <= (SELECT hi FROM bounds) ${filter}`,
  };
}

/**
 * One page of the log: the entries after `after` (of the `only` tables, "schema.table", if given), PAGE ids
 * from the first of them and no further than `maxId`; and `hi`, the end of that range (`maxId` when the log
 * ends within it). The entries come as ONE text value: PGlite's JS protocol parsing per row and per column
 * costs far more than the query (4-5x on 100,000 entries). Fields are joined with the unit separator and
 * entries with the record separator: json text escapes control characters and the names are JSON-quoted,
 * so neither occurs.
 */
export async function readPage(
  d: Driver,
  after: number,
  maxId: number,
  only: string[] | undefined,
): Promise<{ entries: LogEntry[]; hi: number }> {
  const { bounds, within } = idRange(
    only ? "AND (schema_name || '.' || table_name) = ANY($4::text[])" : "AND $4::text[] IS NULL",
  );
  const { rows } = await fewerIfTooLarge(PAGE, (size) =>
    d.query<{ hi: number; page: string | null }>(
      `${bounds}
     SELECT (SELECT hi FROM bounds)::int8 AS hi,
            string_agg(concat_ws(E'\\x1f', id, to_json(schema_name)::text, to_json(table_name)::text, op, priority,
                                 coalesce(old_row::text, ''), coalesce(new_row::text, '')), E'\\x1e' ORDER BY id) AS page
       FROM ${QUEUE_TABLE} WHERE ${within}`,
      [after, maxId, size, only ?? null],
    ),
  );
  const { hi, page } = rows[0]!;
  if (!page) return { entries: [], hi: maxId };
  const entries = page.split("\x1e").map((record) => {
    const [id, schema, table, op, priority, oldRow, newRow] = record.split("\x1f") as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    return {
      id: Number(id),
      schema: JSON.parse(schema) as string,
      table: JSON.parse(table) as string,
      op: op as LogEntry["op"],
      priority: Number(priority),
      oldRow: oldRow === "" ? null : oldRow,
      newRow: newRow === "" ? null : newRow,
    };
  });
  return { entries, hi: Number(hi) };
}

/**
 * The last id, up to `maxId`, of the statement that wrote entry `id`: the entries after it with its `txid` and
 * `created_at` (the statement's start, log/tables.ts). Read only where a window needs it (push/windows.ts), not
 * with every page: a field of its own cost ~35% more per page.
 */
export async function statementEnd(d: Driver, id: number, maxId: number): Promise<number> {
  const { rows } = await d.query<{ last: number }>(
    `SELECT coalesce((SELECT min(q.id) - 1 FROM ${QUEUE_TABLE} AS q WHERE q.id > $1::int8 AND q.id <= $2::int8
              AND (q.txid, q.created_at) IS DISTINCT FROM (s.txid, s.created_at)), $2::int8)::int8 AS last
       FROM ${QUEUE_TABLE} AS s WHERE s.id = $1::int8`,
    [id, maxId],
  );
  return rows[0] ? Number(rows[0].last) : id;
}

/** A range of inserts per table, as bytes: the first id, the count and the new-row images joined by U+001E. */
export interface InsertRun {
  schema: string;
  table: string;
  lo: number;
  rows: number;
  images: Uint8Array;
}

/**
 * The entries (all inserts) after `after`, `size` ids from the first of them and up to `upTo`, one run per
 * table, read as raw bytes (the caller turns them into COPY text without decoding them into strings); and
 * `hi`, the end of the range read.
 */
export async function readInsertRuns(
  d: Driver,
  after: number,
  upTo: number,
  size: number,
): Promise<{ hi: number; runs: InsertRun[] }> {
  const { bounds, within } = idRange();
  const rows = await fewerIfTooLarge(size, (ids) =>
    d.raw(
      `${bounds}
     SELECT (SELECT hi FROM bounds), schema_name, table_name, min(id), count(*), string_agg(new_row::text, E'\\x1e' ORDER BY id)
       FROM ${QUEUE_TABLE} WHERE ${within} GROUP BY 2, 3`,
      [after, upTo, ids],
    ),
  );
  let hi = upTo;
  const runs: InsertRun[] = [];
  for (const [top, schema, table, lo, n, images] of rows) {
    hi = Number(decoded(top));
    runs.push({
      schema: decoded(schema),
      table: decoded(table),
      lo: Number(decoded(lo)),
      rows: Number(decoded(n)),
      images: images!,
    });
  }
  return { hi, runs };
}

const utf8 = new TextDecoder();

function decoded(bytes: Uint8Array | null | undefined): string {
  return utf8.decode(bytes ?? undefined);
}

/** How many entries from..to each table has. */
export async function entriesByTable(
  d: Driver,
  from: number,
  to: number,
): Promise<{ schema: string; table: string; n: number }[]> {
  const { rows } = await d.query<{ schema: string; table: string; n: number }>(
    `SELECT schema_name AS schema, table_name AS table, count(*)::int AS n FROM ${QUEUE_TABLE} WHERE id BETWEEN $1 AND $2 GROUP BY 1, 2`,
    [from, to],
  );
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}

/** The id after the run of inserts that follows `after` (at most maxId + 1). */
export async function insertRunEnd(d: Driver, after: number, maxId: number): Promise<number> {
  const { rows } = await d.query<{ end: number }>(
    `SELECT coalesce(min(id), $2::int8 + 1)::int8 AS "end" FROM ${QUEUE_TABLE} WHERE id > $1 AND id <= $2 AND op <> 'I'`,
    [after, maxId],
  );
  return Number(rows[0]!.end);
}

/** Does an entry after the run (after..end) and up to maxId change one of the run's tables? */
export async function changedLater(d: Driver, after: number, end: number, maxId: number): Promise<boolean> {
  const { rows } = await d.query<{ changed: boolean }>(
    `SELECT EXISTS (SELECT FROM ${QUEUE_TABLE} WHERE id >= $2 AND id <= $3
                       AND (schema_name, table_name) IN (SELECT schema_name, table_name FROM ${QUEUE_TABLE} WHERE id > $1 AND id < $2)) AS changed`,
    [after, end, maxId],
  );
  return rows[0]!.changed;
}

/**
 * A pull's record of a conflict with a pending change (`local-pending`) that the change's push did not settle:
 * the push met no conflict (the remote changed back since, or the change cancelled out). It is dropped with the
 * change's entries, not left pending for good.
 */
const UNSETTLED = `c.resolution = 'local-pending'`;

/** Drop the entries lo..hi; when they are all the log holds, by TRUNCATE (deleting 100,000 entries takes ~0.1 s). */
export async function dropSpan(d: Driver, lo: number, hi: number): Promise<void> {
  await inLocalTransaction(d, async () => {
    const { rows } = await d.query<{ other: boolean }>(
      `SELECT EXISTS (SELECT FROM ${QUEUE_TABLE} WHERE id < $1) OR EXISTS (SELECT FROM ${QUEUE_TABLE} WHERE id > $2) AS other`,
      [lo, hi],
    );
    if (rows[0]!.other) await deleteEntries(d, [lo, hi]);
    else {
      await d.exec(`TRUNCATE ${QUEUE_TABLE}`);
      await d.query(`DELETE FROM ${CONFLICTS_TABLE} c WHERE ${UNSETTLED} AND c.queue_id <= $1`, [hi]);
    }
  });
}

/**
 * Drop the entries of inclusive id ranges [lo1, hi1, lo2, hi2, ...] (core/ranges.ts). `reread` (all of them, or
 * these ids): their rows are kept for the next pull from the change feed to read again (reread.ts), because the
 * remote's rows of their keys would not come back by themselves: changes pushed as nothing (their effects cancel
 * out: a pull held the remote's row back for them), keys a row passed through (its key changed: a pull held them
 * back, no write brings them), deletes the remote did not carry out (push/statements.ts), and the changes of a
 * batch found applied after a crash (a pull since held their rows back and moved past their writes in the feed).
 */
export async function deleteEntries(
  d: Driver,
  ranges: readonly number[],
  reread: boolean | readonly number[] = false,
): Promise<void> {
  const lo: number[] = [];
  const hi: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    lo.push(ranges[i]!);
    hi.push(ranges[i + 1]!);
  }
  const params: unknown[] = [lo, hi];
  // Which of the dropped entries are kept for reading again (undefined: none).
  const kept =
    reread === true
      ? "true"
      : reread !== false && reread.length > 0
        ? `id = ANY ($${params.push(reread)}::int8[])`
        : undefined;
  await d.query(
    `WITH ominipg_r AS (SELECT * FROM unnest($1::int8[], $2::int8[]) AS r(lo, hi)), ` +
      `ominipg_q AS (DELETE FROM ${QUEUE_TABLE} q USING ominipg_r r WHERE q.id BETWEEN r.lo AND r.hi` +
      (kept
        ? ` RETURNING q.id, q.schema_name, q.table_name, q.old_row, q.new_row), ` +
          `ominipg_n AS (INSERT INTO ${REREAD_TABLE} (schema_name, table_name, old_row, new_row) ` +
          `SELECT schema_name, table_name, old_row, new_row FROM ominipg_q WHERE ${kept}) `
        : `) `) +
      `DELETE FROM ${CONFLICTS_TABLE} c USING ominipg_r r WHERE ${UNSETTLED} AND c.queue_id BETWEEN r.lo AND r.hi`,
    params,
  );
}
