import type { Catalog } from "../capture/catalog.js";
import { deparse, type Node } from "../capture/parser.js";
import { CaptureError } from "../core/errors.js";
import type { TableInfo } from "../core/table.js";
import { logTruncatesSql } from "../log/capture.js";

/**
 * TRUNCATE of synced tables: the truncation and its log entries as one script (one implicit transaction), and the
 * synced tables it empties (undefined when it empties none), and whether it restarts their sequences.
 */
export function truncateSql(
  body: Node,
  catalog: Catalog,
): { sql: string; tables: TableInfo[]; restarts: boolean } | undefined {
  const named = (body.relations as Node[]).flatMap(
    (rv) => catalog.resolve(rv.RangeVar.schemaname, rv.RangeVar.relname)?.oid ?? [],
  );
  // CASCADE also empties every table that references a truncated one, synced or not.
  const truncated = body.behavior === "DROP_CASCADE" ? catalog.truncatedWith(named) : new Set(named);
  for (const oid of truncated) {
    const root = catalog.partitionRoots.get(oid);
    // The log holds a partition's rows under its root, and the push could only empty the whole root.
    if (root !== undefined && !truncated.has(root))
      throw new CaptureError(
        "CAPTURE_UNSUPPORTED",
        `cannot capture TRUNCATE of a partition of synced table ${catalog.tables.get(root)!.sql}: DELETE its rows, or TRUNCATE the whole partitioned table`,
      );
    const why = catalog.writesBehind.get(oid);
    if (why)
      throw new CaptureError(
        "CAPTURE_UNSUPPORTED",
        `cannot capture TRUNCATE of a table that is not synced but may change synced tables: ${why}`,
      );
  }
  const tables = [...truncated].flatMap((oid) => catalog.tables.get(oid) ?? []);
  if (tables.length === 0) return undefined;
  const bad = tables.find((t) => t.uncapturable);
  if (bad) {
    throw new CaptureError(
      bad.primaryKey.length === 0 ? "CAPTURE_NO_PRIMARY_KEY" : "CAPTURE_UNSUPPORTED",
      `cannot capture TRUNCATE on synced table ${bad.schema}.${bad.name}: ${bad.uncapturable}`,
    );
  }
  const sql = `${deparse({ TruncateStmt: body })};\n${logTruncatesSql(tables)}`;
  return { sql, tables, restarts: body["restart_seqs"] === true };
}
