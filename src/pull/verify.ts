import type { TableInfo } from "../core/table.js";
import type { Driver } from "../core/driver.js";
import type { Remote } from "../remote/remote.js";
import { CANONICAL_SETTINGS } from "../core/settings.js";
import { quoteIdent } from "../core/sql.js";
import { rowText } from "./sql.js";
import { remotePartitioned, remoteTarget } from "../remote/remote-target.js";

export interface TableDifference {
  table: string;
  localRows: number;
  remoteRows: number;
  /** Primary keys (as JSON arrays) of rows only in the local database. */
  onlyLocal: string[];
  /** Primary keys of rows only on the remote. */
  onlyRemote: string[];
  /** Primary keys of rows whose contents differ. */
  different: string[];
  /** Exact counts; the key lists above stop at the limit. */
  counts: { onlyLocal: number; onlyRemote: number; different: number };
}

export interface VerifyResult {
  ok: boolean;
  tables: TableDifference[];
}

/**
 * Key and content hash of every row: its `rowText` (sql.ts), canonical once both sides render values with the
 * same settings (CANONICAL_SETTINGS: time zone, date and float formats, bytea), so equal rows hash equal; json
 * columns are hashed as their exact text, as every path keeps it. `from`: the table as the remote reads it.
 */
function hashesSql(t: TableInfo, from = t.sql): string {
  const key = `jsonb_build_array(${t.primaryKey.map((c) => keyValue(t, c)).join(", ")})::text`;
  return `SELECT ${key} AS k, md5(${rowText(t, "ominipg_r")}) AS h FROM ${from} AS ominipg_r`;
}

/**
 * A key column as the rows are matched by: values equal as keys print alike (a numeric 2.00 as 2, a float -0 as 0),
 * so that one row with its key spelled another way on each side is one row, the same or different.
 */
function keyValue(t: TableInfo, column: string): string {
  const value = `ominipg_r.${quoteIdent(column)}`;
  const info = t.columns.find((c) => c.name === column);
  // A numeric with a typmod too (the two sides' may differ); a domain over one by its spelling. PostgreSQL 13+.
  if (info && (info.spelling === "numeric" || /^numeric\(/.test(info.type))) return `trim_scale(${value})`;
  return info?.spelling === "float" ? `(${value} + 0)` : value;
}

/** Compare every synced table row by row, locally and remotely. At most `limit` keys listed per kind. */
export async function verifyTables(
  local: (sql: string) => Promise<{ k: string; h: string }[]>,
  remote: Pick<Remote, "transaction">,
  tables: TableInfo[],
  limit = 100,
): Promise<VerifyResult> {
  const out: TableDifference[] = [];
  for (const t of tables) {
    const localRows = await local(hashesSql(t));
    const remoteRows = await remote.transaction(async (tx) => {
      await tx.unsafe(CANONICAL_SETTINGS).simple();
      const partitioned = await remotePartitioned(tx, [t]);
      return tx.unsafe<{ k: string; h: string }[]>(hashesSql(t, remoteTarget(t, partitioned)));
    });
    const remoteMap = new Map(remoteRows.map((r) => [r.k, r.h]));
    const diff: TableDifference = {
      table: `${t.schema}.${t.name}`,
      localRows: localRows.length,
      remoteRows: remoteRows.length,
      onlyLocal: [],
      onlyRemote: [],
      different: [],
      counts: { onlyLocal: 0, onlyRemote: 0, different: 0 },
    };
    for (const { k, h } of localRows) {
      const other = remoteMap.get(k);
      if (other === undefined) note(diff, "onlyLocal", k, limit);
      else if (other !== h) note(diff, "different", k, limit);
      remoteMap.delete(k);
    }
    for (const k of remoteMap.keys()) note(diff, "onlyRemote", k, limit);
    out.push(diff);
  }
  return { ok: out.every((d) => d.counts.onlyLocal + d.counts.onlyRemote + d.counts.different === 0), tables: out };
}

function note(diff: TableDifference, kind: "onlyLocal" | "onlyRemote" | "different", key: string, limit: number): void {
  diff.counts[kind]++;
  if (diff[kind].length < limit) diff[kind].push(key);
}

/** The local side of a hash query, under the same session settings as the remote side. */
export async function localHashes(driver: Driver, sql: string): Promise<{ k: string; h: string }[]> {
  const results = await driver.exec(`BEGIN; ${CANONICAL_SETTINGS}; ${sql}; COMMIT`);
  return results.find((r) => r.command === "SELECT")!.rows as { k: string; h: string }[];
}
