import type { QueryResult, RowMode } from "../core/driver.js";
import { toObjectRows } from "../core/driver.js";
import { CAPTURE_COLUMNS } from "../capture/rewrite.js";
import type { Step } from "./planner.js";

/** The original statement's result from what a planned step returned as array rows. */
export function shapeCaptured(raw: QueryResult<unknown[]>, step: Step, rowMode: RowMode): QueryResult<unknown> {
  const command = step.command ?? raw.command;
  if (step.shape === "captured-count")
    return { rows: [], fields: [], rowCount: Number(raw.rows[0]?.[0] ?? 0), command };
  if (step.shape === "captured-logged") return { rows: [], fields: [], rowCount: raw.rowCount, command };
  const drop = step.shape === "captured-rows" ? CAPTURE_COLUMNS : 0;
  const fields = raw.fields.slice(drop);
  const arrays = drop ? raw.rows.map((r) => r.slice(drop)) : raw.rows;
  const rows = rowMode === "array" ? arrays : toObjectRows(fields, arrays);
  return { rows, fields, rowCount: drop ? rows.length : raw.rowCount, command };
}
