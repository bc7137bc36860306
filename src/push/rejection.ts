import { joinImage } from "../core/image.js";
import type { Driver } from "../core/driver.js";
import { setAside, type RejectedChange } from "../log/rejected.js";
import type { Batch } from "./batches.js";
import { keyLabel } from "../core/key-text.js";
import type { RowOp } from "./coalesce.js";

/** A batch in a few words, for messages: its one change (table and key), or its size and tables. */
export function describeBatch(batch: Batch): string {
  const op = batch.ops[0];
  if (!op) return `truncate of ${batch.truncates.map((t) => `${t.schema}.${t.name}`).join(", ")}`;
  if (batch.ops.length === 1) {
    return `${op.kind} of ${op.table.schema}.${op.table.name} key (${keyLabel(op.table, op.kind === "upsert" ? op.image : op.key)})`;
  }
  const tables = [...new Set(batch.ops.map((o) => `${o.table.schema}.${o.table.name}`))].join(", ");
  return `batch of ${batch.ops.length} changes to ${tables}`;
}

/** A remote error as one line: PostgreSQL's message, and its detail (which key, which referencing table). */
export function describeError(cause: unknown): string {
  const err = cause as { message?: string; detail?: string } | undefined;
  const message = err?.message ?? String(cause);
  return err?.detail ? `${message} (${err.detail})` : message;
}

/** Set a refused batch aside: its changes kept in `_ominipg_rejected` with the remote's error, its entries dropped. */
export async function keepRejected(d: Driver, batch: Batch, cause: unknown): Promise<void> {
  const errorCode = (cause as { code?: string } | undefined)?.code ?? null;
  const message = describeError(cause);
  const changes = batch.ops.map((op) => rejectedChange(op, message, errorCode));
  for (const t of batch.truncates) {
    changes.push({ queueIds: batch.entryIds, schema: t.schema, table: t.name, op: "T", errorCode, message });
  }
  await setAside(d, changes, batch.entryIds);
}

/** A row's write as `_ominipg_rejected` keeps it. */
export function rejectedChange(op: RowOp, message: string, errorCode: string | null = null): RejectedChange {
  return {
    queueIds: op.entryIds,
    schema: op.table.schema,
    table: op.table.name,
    op: op.kind === "delete" ? "D" : op.base ? "U" : "I",
    key: joinImage(op.kind === "upsert" ? keyOnly(op) : op.key),
    oldRow: op.base ? joinImage(op.base) : null,
    newRow: op.kind === "delete" ? null : joinImage(op.image),
    errorCode,
    message,
  };
}

function keyOnly(op: Extract<RowOp, { kind: "upsert" }>): Map<string, string> {
  return new Map(op.table.primaryKey.map((c) => [c, op.image.get(c) ?? "null"]));
}
