import type { Driver } from "../core/driver.js";
import { META_TABLE, getMeta } from "./tables.js";

/** What a database syncs, as its app stored it at its last connect with a remote (`sync_scope`). */
export interface StoredScope {
  schemas?: string[];
  tables?: string[];
  exclude?: string[];
}

/** The stored sync scope, or undefined when this database was never opened with a remote. */
export async function storedSyncScope(d: Driver): Promise<StoredScope | undefined> {
  const { rows } = await d.query<{ found: boolean }>(
    `SELECT to_regclass('public.${META_TABLE}') IS NOT NULL AS found`,
    [],
    { prepare: false },
  );
  if (!rows[0]?.found) return undefined;
  const value = await getMeta(d, "sync_scope");
  return value === undefined ? undefined : (JSON.parse(value) as StoredScope);
}
