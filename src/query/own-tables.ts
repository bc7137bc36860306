import { CaptureError } from "../core/errors.js";
import { OWN_TABLES, QUEUE_TABLE, REJECTED_TABLE, CONFLICTS_TABLE } from "../log/tables.js";
import type { Node } from "../capture/parser.js";
import { writesIn } from "../capture/rewrite.js";

/** Statements that may name Ominipg's own tables without changing them (their nested writes are checked apart). */
const READS_OWN_TABLES = new Set([
  "SelectStmt",
  "InsertStmt",
  "UpdateStmt",
  "DeleteStmt",
  "MergeStmt",
  "ExplainStmt",
  "DeclareCursorStmt",
  "PrepareStmt",
  "CreateTableAsStmt",
  "ViewStmt",
  "VariableShowStmt",
  "TransactionStmt",
  "LockStmt",
  "CreateFunctionStmt",
]);

/** The own table a (possibly schema-qualified) relation names, if it names one. */
function ownTable(rel: Node | undefined): string | undefined {
  return rel && OWN_TABLES.has(rel.relname) && (!rel.schemaname || rel.schemaname === "public")
    ? rel.relname
    : undefined;
}

/**
 * Only the sync guide's priority update (`UPDATE _sync_queue SET priority = ...`) and clean-up of the record
 * tables may write Ominipg's own tables. Every write is checked, wherever it sits (WITH queries, EXPLAIN
 * ANALYZE, ...); other statements (DDL, TRUNCATE, COPY FROM, ...) may not name an own table at all.
 */
export function rejectOwnTableWrites(stmt: Node, type: string): void {
  let target: string | undefined;
  for (const w of writesIn(stmt)) {
    const name = ownTable(w.body.relation);
    if (name && !allowedOwnWrite(w.type, w.body, name)) target ??= name;
  }
  if (!target && !(READS_OWN_TABLES.has(type) || (type === "CopyStmt" && !stmt.CopyStmt.is_from)))
    target = ownTableNamed(stmt);
  if (!target) return;
  throw new CaptureError(
    "CAPTURE_UNSUPPORTED",
    `${target} is Ominipg's own table: only "UPDATE ${QUEUE_TABLE} SET priority = ..." and deleting from ${REJECTED_TABLE} / ${CONFLICTS_TABLE} are allowed`,
  );
}

function allowedOwnWrite(type: string, body: Node, table: string): boolean {
  if (type === "UpdateStmt" && table === QUEUE_TABLE) {
    return (body.targetList as Node[]).every((t) => t.ResTarget?.name === "priority");
  }
  return type === "DeleteStmt" && (table === REJECTED_TABLE || table === CONFLICTS_TABLE);
}

/** Any own table a statement names: relations anywhere in it, and DROP's object names. */
function ownTableNamed(stmt: Node): string | undefined {
  let target: string | undefined;
  const scan = (value: unknown): void => {
    if (target || value === null || typeof value !== "object") return;
    if (Array.isArray(value)) return value.forEach(scan);
    target ??= ownTable(value as Node);
    for (const v of Object.values(value)) scan(v);
  };
  scan(stmt);
  for (const obj of stmt.DropStmt?.objects ?? []) {
    const parts = (obj.List?.items ?? []).map((i: Node) => i.String?.sval);
    if (OWN_TABLES.has(parts.at(-1)) && (parts.length === 1 || parts.at(-2) === "public")) target ??= parts.at(-1);
  }
  return target;
}
