import type { Driver } from "../core/driver.js";

/** Ominipg's own tables in the local database. Writes to them are never captured. */
export const QUEUE_TABLE = "_sync_queue";
export const META_TABLE = "_ominipg_meta";
export const REJECTED_TABLE = "_ominipg_rejected";
export const CONFLICTS_TABLE = "_ominipg_conflicts";
export const LEASE_TABLE = "_ominipg_leases";
export const REREAD_TABLE = "_ominipg_reread";

/** The sequence behind _sync_queue.id (bigserial's name for it). */
export const QUEUE_ID_SEQUENCE = "_sync_queue_id_seq";

export const OWN_TABLES: ReadonlySet<string> = new Set([
  QUEUE_TABLE,
  META_TABLE,
  REJECTED_TABLE,
  CONFLICTS_TABLE,
  LEASE_TABLE,
  REREAD_TABLE,
]);

/**
 * Log rows up to about a page stay whole in the heap: a wide row's image (an INSERT's, a DELETE's) is then not
 * compressed and moved to the TOAST table, which cost more than the row's own write (bench section 8: a captured
 * wide INSERT 0.83-1.00x -> 1.10-1.28x of an uncaptured one, a DELETE 0.50-0.78x -> 0.86-1.11x). The log is
 * drained at the next sync, so the bytes compression would save are not kept for long.
 */
const QUEUE_TOAST_TARGET = 8160;

/**
 * The change log. One row per captured row change (op I/U/D) or table truncation (op T), written by the
 * same statement as the change itself, so it commits and rolls back with it. `id` is the capture order.
 * Row images are json (`to_json` of the row: text built directly, about 15-25% cheaper per captured row than
 * jsonb's binary form, which nothing local needs): one lossless representation for coalescing, diffing,
 * pushing (as jsonb, `jsonb_populate_record` on the remote) and conflict checks. `created_at` is when the
 * statement that wrote the row started: with `txid`, it tells one statement's rows apart from the next one's
 * (push/windows.ts keeps them in one window where the remote checks them together).
 */
export const LOCAL_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS ${QUEUE_TABLE} (
  id bigserial PRIMARY KEY,
  txid bigint NOT NULL DEFAULT txid_current(),
  schema_name text NOT NULL,
  table_name text NOT NULL,
  op "char" NOT NULL CHECK (op IN ('I', 'U', 'D', 'T')),
  old_row json,
  new_row json,
  priority integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT statement_timestamp()
) WITH (toast_tuple_target = ${QUEUE_TOAST_TARGET});
-- A log made before the setting and the default gets them too. Unconditionally: a DO block loaded PL/pgSQL, ~10 ms
-- of a connect.
ALTER TABLE public.${QUEUE_TABLE} SET (toast_tuple_target = ${QUEUE_TOAST_TARGET}),
  ALTER COLUMN created_at SET DEFAULT statement_timestamp();
CREATE TABLE IF NOT EXISTS ${META_TABLE} (
  key text PRIMARY KEY,
  value text NOT NULL
);
-- Changes that cancelled out (pushed as nothing): a pull from the change feed reads their rows again (reread.ts).
CREATE TABLE IF NOT EXISTS ${REREAD_TABLE} (
  id bigserial PRIMARY KEY,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  old_row json,
  new_row json
);
CREATE TABLE IF NOT EXISTS ${REJECTED_TABLE} (
  id bigserial PRIMARY KEY,
  queue_ids bigint[] NOT NULL,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  op "char" NOT NULL,
  row_key jsonb,
  old_row json,
  new_row json,
  error_code text,
  error_message text NOT NULL,
  rejected_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${CONFLICTS_TABLE} (
  id bigserial PRIMARY KEY,
  origin text NOT NULL CHECK (origin IN ('push', 'pull')),
  schema_name text NOT NULL,
  table_name text NOT NULL,
  row_key jsonb NOT NULL,
  queue_id bigint NOT NULL,
  base jsonb,
  local jsonb,
  remote jsonb,
  resolution text NOT NULL,
  resolved jsonb,
  detected_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (schema_name, table_name, row_key, queue_id)
);
INSERT INTO ${META_TABLE} (key, value) VALUES ('client_id', gen_random_uuid()::text) ON CONFLICT (key) DO NOTHING;
`;

/** A value of `_ominipg_meta`, or undefined. */
export async function getMeta(d: Driver, key: string): Promise<string | undefined> {
  const { rows } = await d.query<{ value: string }>(`SELECT value FROM ${META_TABLE} WHERE key = $1`, [key], {
    prepare: false,
  });
  return rows[0]?.value;
}

export async function setMeta(d: Driver, key: string, value: string): Promise<void> {
  await d.query(
    `INSERT INTO ${META_TABLE} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    [key, value],
    { prepare: false },
  );
}

export async function deleteMeta(d: Driver, key: string): Promise<void> {
  await d.query(`DELETE FROM ${META_TABLE} WHERE key = $1`, [key], { prepare: false });
}

/** This database's client id (minted with the log tables; it names the client's remote ledger rows). */
export async function clientIdOf(d: Driver): Promise<string> {
  return (await getMeta(d, "client_id"))!;
}

/**
 * A client id belongs to one database: the directory it was minted in (its inode: the same after a rename,
 * new for a copy), or the in-memory database it was minted in. A database opened elsewhere (a copied
 * directory, a `loadDataDir` dump) gets a new id: two databases pushing under one id would each take the
 * other's ledger rows for their own, and drop changes as already applied. True when a new id was minted.
 */
export async function ownClientId(driver: Driver, home: string): Promise<boolean> {
  const minted = await getMeta(driver, "client_home");
  if (minted === home && home !== "memory") return false;
  if (minted !== undefined)
    await driver.exec(`UPDATE ${META_TABLE} SET value = gen_random_uuid()::text WHERE key = 'client_id'`);
  await setMeta(driver, "client_home", home);
  return minted !== undefined;
}
