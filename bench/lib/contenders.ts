/**
 * The four capture contenders, each on its own local database with the same schema, data and settings:
 *   a. plain PGlite db.query, no capture
 *   b. plain PGlite db.query, AFTER ... FOR EACH ROW trigger capture into a log table
 *   c. Ominipg without syncUrl (no capture)
 *   d. Ominipg with syncUrl (trigger-free capture into _sync_queue)
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { Driver } from "../../src/core/driver.js";
import { Ominipg } from "../../src/index.js";
import { ITEMS, TRIGGER_DDL, triggerOn, type BenchTable } from "./schema.js";

export type ContenderId = "a" | "b" | "c" | "d";

export const LABELS: Record<ContenderId, string> = {
  a: "PGlite db.query",
  b: "PGlite + trigger",
  c: "Ominipg",
  d: "Ominipg + capture",
};

export type Exec = (sql: string, params?: unknown[]) => Promise<unknown>;

export interface Contender {
  id: ContenderId;
  label: string;
  query: Exec;
  transaction(fn: (q: Exec) => Promise<void>): Promise<void>;
  /** Rows in the change log (0 without capture). Untimed. */
  logged(): Promise<number>;
  /** Empty the table and the change log, outside any timing and without capturing anything. */
  reset(): Promise<void>;
  /** An untimed read that bypasses capture (e.g. of the change log). */
  peek<T>(sql: string): Promise<T[]>;
  settings(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export type Storage = "memory" | "directory";

/** Durability and planner settings reported for every contender (they must match). */
export const REPORTED_SETTINGS = [
  "fsync",
  "synchronous_commit",
  "full_page_writes",
  "wal_sync_method",
  "shared_buffers",
  "work_mem",
];

async function readSettings(query: (sql: string) => Promise<{ rows: unknown[] }>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of REPORTED_SETTINGS) {
    const { rows } = await query(`SELECT current_setting('${name}') AS s`);
    out[name] = String((rows[0] as { s: string }).s);
  }
  return out;
}

async function count(query: (sql: string) => Promise<{ rows: unknown[] }>, table: string): Promise<number> {
  const { rows } = await query(`SELECT count(*)::int AS n FROM ${table}`);
  return Number((rows[0] as { n: number }).n);
}

async function pglite(
  id: "a" | "b",
  storage: Storage,
  root: string,
  template: Blob | undefined,
  table: BenchTable,
): Promise<Contender> {
  let dir: string | undefined;
  if (storage === "directory") {
    mkdirSync(root, { recursive: true });
    dir = join(root, `pglite-${id}-${table.name}`);
  }
  const db = await PGlite.create(dir, template ? { loadDataDir: template } : {});
  await db.exec(table.ddl);
  if (id === "b") for (const ddl of [...TRIGGER_DDL.slice(0, -1), triggerOn(table.name)]) await db.exec(ddl);
  return {
    id,
    label: LABELS[id],
    query: (sql, params) => db.query(sql, params),
    transaction: async (fn) => {
      await db.transaction(async (tx) => fn((sql, params) => tx.query(sql, params)));
    },
    logged: () => (id === "b" ? count((s) => db.query(s), "change_log") : Promise.resolve(0)),
    reset: async () => {
      await db.exec(id === "b" ? `TRUNCATE ${table.name}, change_log` : `TRUNCATE ${table.name}`);
    },
    peek: async <T>(sql: string) => (await db.query<T>(sql)).rows,
    settings: () => readSettings((s) => db.query(s)),
    close: () => db.close(),
  };
}

/** Ominipg's own local driver, for untimed resets that must bypass capture (and Ominipg's own-table guard). */
export function rawDriver(db: Ominipg): Driver {
  return (db as unknown as { driver: Driver }).driver;
}

async function ominipg(
  id: "c" | "d",
  storage: Storage,
  root: string,
  syncUrl: string,
  template: Blob | undefined,
  table: BenchTable,
): Promise<Contender> {
  let url = ":memory:";
  if (storage === "directory") {
    mkdirSync(root, { recursive: true });
    url = join(root, `ominipg-${id}-${table.name}`);
  }
  const db = await Ominipg.connect({
    url,
    schemaSQL: [table.ddl],
    ...(template ? { loadDataDir: template } : {}),
    ...(id === "d" ? { syncUrl } : {}),
  });
  db.on("error", () => {}); // background remote set-up errors are irrelevant to capture timings
  const raw = rawDriver(db);
  const rawQuery = (s: string) => raw.query(s, [], { prepare: false });
  return {
    id,
    label: LABELS[id],
    query: (sql, params) => db.query(sql, params),
    transaction: (fn) => db.transaction(async (tx) => fn((sql, params) => tx.query(sql, params))),
    logged: () => (id === "d" ? count(rawQuery, "_sync_queue") : Promise.resolve(0)),
    reset: async () => {
      await raw.exec(id === "d" ? `TRUNCATE ${table.name}, _sync_queue` : `TRUNCATE ${table.name}`);
    },
    peek: async <T>(sql: string) => (await raw.query<T>(sql, [], { prepare: false })).rows,
    settings: () => readSettings(rawQuery),
    close: () => db.close(),
  };
}

/**
 * Open one contender. `template` is a dump of a freshly initialised PGlite cluster (nothing in it): every
 * contender starts from the same bytes, and loading it is several times faster than initdb. `table` is the
 * benchmarked table (items unless given).
 */
export async function openContender(
  id: ContenderId,
  storage: Storage,
  root: string,
  syncUrl: string,
  template?: Blob,
  table: BenchTable = ITEMS,
): Promise<Contender> {
  return id === "a" || id === "b"
    ? pglite(id, storage, root, template, table)
    : ominipg(id, storage, root, syncUrl, template, table);
}

/** A dump of a fresh, empty PGlite cluster. */
export async function pgliteTemplate(): Promise<Blob> {
  const db = await PGlite.create();
  try {
    return (await db.dumpDataDir("none")) as Blob;
  } finally {
    await db.close();
  }
}
