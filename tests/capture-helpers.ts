// Shared by the capture-*.test.ts files: open capturing / plain databases, snapshot synced tables, read the
// change log, and check that the log replays the before-snapshot into the after-snapshot exactly.
import { PGlite } from "@electric-sql/pglite";
import { expect } from "vitest";
import { Ominipg, type ConnectOptions } from "../src/index.js";
import { pgliteTemplate, unreachableUrl } from "./harness/index.js";

/** Anything with PGlite's / Ominipg's `query(sql, params)`. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
}

const open: { close(): Promise<void> }[] = [];

/**
 * A client with capture on (syncUrl set to a port nothing listens on; sync is never called) and `schema` run
 * first. Closed by `closeAll()`.
 */
export async function captureDb(schema: string[] = [], options: ConnectOptions = {}): Promise<Ominipg> {
  const db = await Ominipg.connect({
    syncUrl: unreachableUrl(),
    schemaSQL: schema,
    sync: { retry: { attempts: 1 } },
    ...options,
  });
  open.push(db);
  return db;
}

/** Plain PGlite with the same schema: the reference for what results must look like. Closed by `closeAll()`. */
export async function plainDb(schema: string[] = []): Promise<PGlite> {
  const db = await PGlite.create({ loadDataDir: await pgliteTemplate() });
  for (const s of schema) await db.exec(s);
  open.push(db);
  return db;
}

/** Close every database opened through this module (for afterAll). */
export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map((db) => db.close()));
}

export interface Table {
  schema: string;
  name: string;
  pk: string[];
}

/** Tables with a primary key in `schemas`, except Ominipg's own: what capture syncs by default. */
export async function tablesWithKeys(db: Queryable, schemas: string[] = ["public"]): Promise<Table[]> {
  const { rows } = await db.query<Table>(
    `SELECT n.nspname AS schema, c.relname AS name,
            array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) AS pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
      WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[]) AND c.relname <> '_sync_queue' AND c.relname NOT LIKE '\\_ominipg\\_%'
      ORDER BY 1, 2`,
    [schemas],
  );
  return rows;
}

/** "schema.table" -> primary key (JSON of the key values) -> the row as jsonb text (canonical, so text equality is jsonb equality). */
export type Snapshot = Map<string, Map<string, string>>;

export const tableKey = (schema: string, name: string) => `${schema}.${name}`;

/** The key of a row image: its primary key values, as JSON. */
export function rowKey(image: string, pk: string[]): string {
  const row = JSON.parse(image) as Record<string, unknown>;
  return JSON.stringify(pk.map((c) => row[c]));
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Every row of `tables`, in one query. */
export async function snapshot(db: Queryable, tables: Table[]): Promise<Snapshot> {
  const snap: Snapshot = new Map(tables.map((t) => [tableKey(t.schema, t.name), new Map()]));
  if (tables.length === 0) return snap;
  const sql = tables
    .map((t, i) => `SELECT ${i} AS i, to_jsonb(s.*)::text AS r FROM ${ident(t.schema)}.${ident(t.name)} AS s`)
    .join(" UNION ALL ");
  const { rows } = await db.query<{ i: number; r: string }>(sql);
  for (const { i, r } of rows) {
    const t = tables[i]!;
    snap.get(tableKey(t.schema, t.name))!.set(rowKey(r, t.pk), r);
  }
  return snap;
}

export interface Entry {
  id: number;
  txid: string;
  schema: string;
  table: string;
  op: "I" | "U" | "D" | "T";
  /** Row images as jsonb text. */
  old: string | null;
  new: string | null;
  priority: number;
}

/** The last log id (0 for an empty log): entries after it are what the next statements capture. */
export async function watermark(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ id: number }>(`SELECT coalesce(max(id), 0)::int8 AS id FROM _sync_queue`);
  return Number(rows[0]!.id);
}

/** Log entries after `after`, in capture order. */
export async function logSince(db: Queryable, after = 0): Promise<Entry[]> {
  const { rows } = await db.query<Entry>(
    `SELECT id::int8 AS id, txid::text AS txid, schema_name AS schema, table_name AS "table", op::text AS op,
            old_row::jsonb::text AS old, new_row::jsonb::text AS new, priority
       FROM _sync_queue WHERE id > $1 ORDER BY id`,
    [after],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/**
 * Apply log entries to a snapshot, checking each one against the state it applies to: an insert's key must be
 * free, a delete's old_row must be exactly the current row at its key, an update's old_row must match the current
 * row at its (old) key in every column it holds (all of them, or those it assigned), an update's new key must be
 * free once the old row is gone. Throws, naming the entry, on the first mismatch. T empties the table.
 */
export function replay(before: Snapshot, entries: Entry[], tables: Table[]): Snapshot {
  const state: Snapshot = new Map([...before].map(([k, rows]) => [k, new Map(rows)]));
  const fail = (e: Entry, why: string) => {
    throw new Error(`log entry ${e.id} (${e.op} ${e.schema}.${e.table} old=${e.old} new=${e.new}): ${why}`);
  };
  for (const e of entries) {
    const table = tables.find((t) => t.schema === e.schema && t.name === e.table);
    const rows = state.get(tableKey(e.schema, e.table));
    if (!table || !rows) fail(e, "not a synced table of this test");
    const pk = table!.pk;
    if (e.op === "T") {
      if (e.old !== null || e.new !== null) fail(e, "a truncation carries no row images");
      rows!.clear();
      continue;
    }
    if ((e.op === "I") !== (e.old === null) || (e.op === "D") !== (e.new === null))
      fail(e, "op does not match the images present");
    let kept: Record<string, unknown> = {};
    if (e.old !== null) {
      const key = rowKey(e.old, pk);
      const current = rows!.get(key);
      const old = JSON.parse(e.old) as Record<string, unknown>;
      const row = current === undefined ? undefined : (JSON.parse(current) as Record<string, unknown>);
      // An update may log only the columns it assigned (and the key): those must be the current row's, and the
      // others are kept; the final comparison with the database then catches any column changed but not logged.
      const partial = row !== undefined && Object.keys(old).length < Object.keys(row).length;
      if (partial && e.op !== "U") fail(e, "only an update may log part of a row");
      if (partial && Object.keys(JSON.parse(e.new!) as object).join() !== Object.keys(old).join())
        fail(e, "an update's images hold different columns");
      if (!row || Object.keys(old).some((c) => !(c in row) || !sameValue(old[c], row[c])))
        fail(e, `old_row is not the current row ${current}`);
      kept = row!;
      rows!.delete(key);
    }
    if (e.new !== null) {
      const key = rowKey(e.new, pk);
      if (rows!.has(key)) fail(e, `new key is taken by ${rows!.get(key)}`);
      rows!.set(key, JSON.stringify({ ...(e.op === "U" ? kept : {}), ...(JSON.parse(e.new) as object) }));
    }
  }
  return state;
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Plain objects of a snapshot, for readable toEqual diffs. */
export function plain(snap: Snapshot): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    [...snap].map(([t, rows]) => [t, Object.fromEntries([...rows].map(([k, r]) => [k, JSON.parse(r)]))]),
  );
}

/** The log, replayed onto `before`, must give `after`. */
export function expectReplayGives(before: Snapshot, entries: Entry[], after: Snapshot, tables: Table[]): void {
  expect(plain(replay(before, entries, tables))).toEqual(plain(after));
}

/**
 * The parts of a query result the caller sees. For utility statements (TRUNCATE, ...) Ominipg's driver reports
 * the whole command tag ("TRUNCATE TABLE") and rowCount 0 where PGlite reports the first word and no rowCount;
 * that is the driver's documented behaviour for every utility statement, captured or not, so only those two
 * differences are evened out here. Row-returning and DML results are compared as they are.
 */
export function resultOf(r: {
  rows: unknown[];
  rowCount?: number;
  fields: { name: string; dataTypeID: number }[];
  command?: string;
}) {
  return {
    rows: r.rows,
    rowCount: r.rowCount ?? 0,
    fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
    command: r.command?.split(" ")[0],
  };
}

/** Short form of entries for asserting ops: "U public.items". */
export const opsOf = (entries: Entry[]) => entries.map((e) => `${e.op} ${e.schema}.${e.table}`);
