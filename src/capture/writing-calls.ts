import { CaptureError } from "../core/errors.js";
import type { Catalog } from "./catalog.js";
import { walk, type Node } from "./parser.js";

/** Reject calls of user functions that may write rows behind the rewrite's back. */
export function rejectWritingFunctions(stmt: Node, catalog: Catalog): void {
  if (catalog.writingFunctions.size === 0) return;
  const refuse = (what: string, advice: string) => {
    throw new CaptureError("CAPTURE_UNSUPPORTED", `cannot capture a statement that ${what}. ${advice}`);
  };
  const hidden = (kind: string, names: (string | undefined)[]) => {
    const name = names.filter((n) => n !== undefined && n !== "pg_catalog").join(".");
    return catalog.hiddenWriters.get(`${kind} ${name}`);
  };
  let columns: Set<string> | undefined; // the synced tables' column names, made at the first x.f
  const isColumn = (field: Node | undefined) =>
    (columns ??= new Set([...catalog.tables.values()].flatMap((t) => t.columns.map((c) => c.name)))).has(
      field?.String?.sval as string,
    );
  walk(stmt, (type, body) => {
    // A database-qualified name (db.schema.f: only the current database can be named) is its schema.f; a
    // column reference x.f or (x).f calls f on x's row (attribute notation), unless f is a column (of a synced table).
    // An event trigger's function runs at every DDL statement from then on, where no rewrite sees it.
    const named = (
      type === "FuncCall" || type === "CreateEventTrigStmt"
        ? body.funcname
        : type === "ColumnRef" && (body.fields as Node[]).length > 1 && !isColumn((body.fields as Node[]).at(-1))
          ? (body.fields as Node[]).slice(-1)
          : type === "A_Indirection"
            ? (body.indirection as Node[]).slice(-1)
            : undefined
    ) as Node[] | undefined;
    if (named) {
      const parts = named.map((p) => p.String?.sval as string);
      const why = catalog.writingFunctions.get(parts.slice(-2).join("."));
      if (why)
        refuse(
          `calls ${parts.join(".")}: ${why}`,
          "Make it STABLE if it does not write, or write through query() statements",
        );
    }
    // The same functions run by an operator (BETWEEN runs <= and >=, a simple CASE =), a view, a materialized
    // view's REFRESH, a domain's CHECK or a cast (hidden-writers.ts).
    const operators =
      type === "A_Expr"
        ? String(body.kind).includes("BETWEEN")
          ? ["<=", ">="]
          : [((body.name as Node[] | undefined) ?? []).at(-1)?.String?.sval as string | undefined]
        : type === "CaseExpr" && body.arg
          ? ["="]
          : [];
    const found =
      operators.length > 0
        ? operators.map((op) => hidden("operator", [op])).find((why) => why !== undefined)
        : type === "RangeVar"
          ? hidden("relation", [body.schemaname as string | undefined, body.relname as string])
          : type === "RefreshMatViewStmt"
            ? hidden("refresh", [body.relation.schemaname as string | undefined, body.relation.relname as string])
            : type === "TypeCast"
              ? hidden(
                  "type",
                  ((body.typeName?.names as Node[] | undefined) ?? []).map((n) => n.String?.sval as string | undefined),
                )
              : undefined;
    if (found) refuse(`uses ${found}`, "Write through query() statements instead");
  });
}
