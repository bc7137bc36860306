import { CONFLICTS_TABLE } from "./tables.js";
import type { Driver } from "../core/driver.js";
import { textToRow } from "../core/row.js";
import { jsonbSafe } from "../core/json-text.js";
import type { ConflictEvent, ConflictResolutionKind } from "../core/conflicts.js";

/** A conflict as `_ominipg_conflicts` keeps it: images as jsonb text (rendered by the local database). */
export interface ConflictRecord {
  origin: "push" | "pull";
  schema: string;
  table: string;
  /** The primary key as a JSON object. */
  key: string;
  /** The first log entry of the local change: a change found again (a pull, then its push) updates its record. */
  queueId: number;
  base: string | null;
  local: string | null;
  remote: string | null;
  resolution: ConflictResolutionKind;
  resolved: string | null;
}

export async function recordConflict(d: Driver, r: ConflictRecord): Promise<void> {
  await d.query(
    `INSERT INTO ${CONFLICTS_TABLE} (origin, schema_name, table_name, row_key, queue_id, base, local, remote, resolution, resolved)
     VALUES ($1, $2, $3, $4::text::jsonb, $5, $6::text::jsonb, $7::text::jsonb, $8::text::jsonb, $9, $10::text::jsonb)
     ON CONFLICT (schema_name, table_name, row_key, queue_id) DO UPDATE
       SET origin = EXCLUDED.origin, base = EXCLUDED.base, local = EXCLUDED.local, remote = EXCLUDED.remote,
           resolution = EXCLUDED.resolution, resolved = EXCLUDED.resolved, detected_at = now()`,
    // Rows as jsonb: a json column's \u0000 or lone surrogate is kept as the text it is written as (jsonbSafe).
    [
      r.origin,
      r.schema,
      r.table,
      r.key,
      r.queueId,
      ...[r.base, r.local, r.remote].map(safe),
      r.resolution,
      safe(r.resolved),
    ],
  );
}

function safe(image: string | null): string | null {
  return image === null ? null : jsonbSafe(image);
}

export function conflictEvent(r: ConflictRecord): ConflictEvent {
  return {
    origin: r.origin,
    table: `${r.schema}.${r.table}`,
    key: textToRow(r.key)!,
    base: textToRow(r.base),
    local: textToRow(r.local),
    remote: textToRow(r.remote),
    resolution: r.resolution,
    resolved: textToRow(r.resolved),
  };
}
