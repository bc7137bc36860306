import type { Driver } from "../core/driver.js";
import { toRanges } from "../core/ranges.js";
import { inLocalTransaction } from "../local/transaction.js";
import { deleteEntries } from "./queue.js";
import { REJECTED_TABLE } from "./tables.js";

/** A change the remote refused for good (or that cannot be pushed), as `_ominipg_rejected` keeps it. */
export interface RejectedChange {
  queueIds: number[];
  schema: string;
  table: string;
  op: "I" | "U" | "D" | "T";
  /** Images as json text, null where there is none. */
  key?: string | null;
  oldRow?: string | null;
  newRow?: string | null;
  errorCode?: string | null;
  message: string;
}

/**
 * Keep refused changes in `_ominipg_rejected` and drop their entries (`entryIds`) from the log: one local
 * transaction, so never both and never neither.
 */
export async function setAside(
  d: Driver,
  changes: readonly RejectedChange[],
  entryIds: readonly number[],
): Promise<void> {
  await inLocalTransaction(d, async () => {
    for (const c of changes) {
      await d.query(
        `INSERT INTO ${REJECTED_TABLE} (queue_ids, schema_name, table_name, op, row_key, old_row, new_row, error_code, error_message)
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::json, $7::text::json, $8, $9)`,
        [
          c.queueIds,
          c.schema,
          c.table,
          c.op,
          c.key ?? null,
          c.oldRow ?? null,
          c.newRow ?? null,
          c.errorCode ?? null,
          c.message,
        ],
      );
    }
    await deleteEntries(d, toRanges(entryIds));
  });
}
