import { CaptureError } from "../errors.js";
import { quoteIdent, quoteLiteral, qualified } from "../sql.js";
import type { Catalog, TableInfo } from "./catalog.js";
import { QUEUE_TABLE } from "./own-tables.js";
import { deparse, nodeType, parseSelect, walk, type Node } from "./parser.js";

export const DML_TYPES = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"]);
const COMMAND: Record<string, string> = { InsertStmt: "INSERT", UpdateStmt: "UPDATE", DeleteStmt: "DELETE", MergeStmt: "MERGE", SelectStmt: "SELECT" };

/** The two capture columns every captured DML returns first: the row's jsonb images before and after. */
const OLD_COL = "ominipg_o";
const NEW_COL = "ominipg_n";
export const CAPTURE_COLUMNS = 2;

export interface CapturedStatement {
  /** The statement to run instead of the original. */
  sql: string;
  /** "rows": the result rows are the original's, each with CAPTURE_COLUMNS leading columns to drop.
   *  "select": the result is the original's as is. "count": one row holding the original's affected-row count. */
  result: "rows" | "select" | "count";
  /** The original statement's command tag word. */
  command: string;
  tables: TableInfo[];
}

/** Asks the local database for the output column names of a statement, without running it. */
export type DescribeNames = (sql: string) => Promise<string[]>;

/**
 * Rewrite one statement so that it also appends the row changes it makes to synced tables to the change log.
 * Every data-modifying part (the statement itself and each data-modifying WITH query) returns its rows'
 * before and after images through PostgreSQL 18's RETURNING WITH (OLD AS .., NEW AS ..); one more WITH
 * query inserts them into the log. The whole thing stays one statement, so the log commits and rolls back
 * with the change. Returns undefined when the statement changes no synced table.
 */
export async function rewriteForCapture(stmt: Node, catalog: Catalog, describeNames: DescribeNames): Promise<CapturedStatement | undefined> {
  const type = nodeType(stmt);
  if (!DML_TYPES.has(type) && type !== "SelectStmt") return undefined;
  const body = stmt[type] as Node;
  rejectWritingFunctions(stmt, catalog);

  const ctes: Node[] = (body.withClause?.ctes as Node[] | undefined) ?? [];
  const topTable = DML_TYPES.has(type) ? syncedTarget(type, body, catalog) : undefined;
  const cteTargets = ctes.map((cte) => {
    const query = cte.CommonTableExpr.ctequery as Node;
    const qtype = nodeType(query);
    return DML_TYPES.has(qtype) ? syncedTarget(qtype, query[qtype], catalog) : undefined;
  });
  if (!topTable && cteTargets.every((t) => !t)) return undefined;

  const taken = namesIn(stmt);
  const unused = (base: string) => {
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}${i}`;
    return name;
  };
  const fresh = (base: string) => {
    const name = unused(base);
    taken.add(name);
    return name;
  };

  const originalCtes = structuredClone(ctes); // probes must see the WITH queries as the user wrote them
  const newCtes: Node[] = [];
  const sources: { cte: string; table: TableInfo }[] = [];
  for (let i = 0; i < ctes.length; i++) {
    const cte = ctes[i]!.CommonTableExpr as Node;
    const table = cteTargets[i];
    if (!table) {
      newCtes.push(ctes[i]!);
      continue;
    }
    const query = cte.ctequery as Node;
    const qtype = nodeType(query);
    const userExprs: Node[] = query[qtype].returningClause?.exprs ?? [];
    // Ask for the column names before the capture columns are added.
    const names = userExprs.length === 0 ? [] : await describeNames(probe(body, originalCtes.slice(0, i + 1), cte.ctename));
    addCaptureReturning(query[qtype], unused);
    if (userExprs.length === 0) {
      // No RETURNING: nothing can reference it, so it keeps its name and returns only the capture columns.
      newCtes.push(ctes[i]!);
      sources.push({ cte: cte.ctename, table });
      continue;
    }
    // Referenced by name: keep `name` with the original columns, on top of a capture CTE that has them all.
    const capName = fresh(`ominipg_c${i}`);
    const positional = names.map((_, k) => `ominipg_${k + 1}`);
    newCtes.push(cteNode(capName, query, [OLD_COL, NEW_COL, ...positional]));
    const select = parseSelect(`SELECT ${names.map((n, k) => `${positional[k]} AS ${quoteIdent(n)}`).join(", ")} FROM ${quoteIdent(capName)}`);
    newCtes.push(cteNode(cte.ctename, { SelectStmt: select }));
    sources.push({ cte: capName, table });
  }

  let outer: Node;
  let result: CapturedStatement["result"];
  if (type === "SelectStmt") {
    outer = body;
    result = "select";
  } else {
    const hasUserReturning = (body.returningClause?.exprs?.length ?? 0) > 0;
    const withoutWith = { ...body, withClause: undefined };
    if (topTable) addCaptureReturning(withoutWith, unused);
    const top = fresh("ominipg_w");
    newCtes.push(cteNode(top, { [type]: withoutWith }));
    if (topTable) sources.push({ cte: top, table: topTable });
    result = hasUserReturning ? (topTable ? "rows" : "select") : "count";
    outer = parseSelect(result === "count" ? `SELECT count(*) FROM ${quoteIdent(top)}` : `SELECT * FROM ${quoteIdent(top)}`);
  }
  newCtes.push(logCte(fresh("ominipg_log"), sources));
  outer = { ...outer, withClause: { ctes: newCtes, recursive: body.withClause?.recursive ?? false } };

  const tables = [...new Map(sources.map((s) => [s.table.oid, s.table])).values()];
  return { sql: deparse({ SelectStmt: outer }), result, command: COMMAND[type]!, tables };
}

/** The synced table a DML statement writes, undefined for a table that is not synced; throws where capture is impossible. */
function syncedTarget(type: string, body: Node, catalog: Catalog): TableInfo | undefined {
  const rel = body.relation as Node;
  const found = catalog.resolve(rel.schemaname, rel.relname);
  if (!found) return undefined; // PostgreSQL reports the missing relation itself
  const table = catalog.tables.get(found.oid);
  const label = rel.schemaname ? `${rel.schemaname}.${rel.relname}` : rel.relname;
  if (found.kind === "v" || found.kind === "f") {
    throw new CaptureError(
      "CAPTURE_UNSUPPORTED",
      `${COMMAND[type]} through ${found.kind === "v" ? "view" : "foreign table"} ${label} is not captured for sync: write to the synced tables directly`,
    );
  }
  if (!table) return undefined;
  if (table.uncapturable) {
    throw new CaptureError(
      table.primaryKey.length === 0 ? "CAPTURE_NO_PRIMARY_KEY" : "CAPTURE_UNSUPPORTED",
      `cannot capture ${COMMAND[type]} on synced table ${table.schema}.${table.name}: ${table.uncapturable}`,
    );
  }
  return table;
}

/** Reject calls of user functions that may write rows behind the rewrite's back. */
export function rejectWritingFunctions(stmt: Node, catalog: Catalog): void {
  if (catalog.writingFunctions.size === 0) return;
  walk(stmt, (type, body) => {
    if (type !== "FuncCall") return;
    const parts = (body.funcname as Node[]).map((p) => p.String?.sval as string);
    const why = catalog.writingFunctions.get(parts.join("."));
    if (why) {
      throw new CaptureError(
        "CAPTURE_UNSUPPORTED",
        `cannot capture a statement that calls ${parts.join(".")}: ${why}. Make it STABLE if it does not write, or write through query() statements`,
      );
    }
  });
}

/** Put the capture columns first in the statement's RETURNING, with OLD/NEW aliases that cannot clash. */
function addCaptureReturning(body: Node, unused: (base: string) => string): void {
  const clause: Node = body.returningClause ?? {};
  const options: Node[] = [...(clause.options ?? [])];
  const aliasFor = (option: string, base: string) => {
    const existing = options.find((o) => o.ReturningOption?.option === option);
    if (existing) return existing.ReturningOption.value as string;
    // Declaring the default name explicitly keeps the user's own `old.x` / `new.x` working.
    const name = unused(base);
    options.push({ ReturningOption: { option, value: name } });
    return name;
  };
  const oldAlias = aliasFor("RETURNING_OPTION_OLD", "old");
  const newAlias = aliasFor("RETURNING_OPTION_NEW", "new");
  const capture = parseSelect(
    `SELECT to_jsonb(${quoteIdent(oldAlias)}.*) AS ${OLD_COL}, to_jsonb(${quoteIdent(newAlias)}.*) AS ${NEW_COL}`,
  ).targetList as Node[];
  body.returningClause = { options, exprs: [...capture, ...(clause.exprs ?? [])] };
}

function logCte(name: string, sources: { cte: string; table: TableInfo }[]): Node {
  const selects = sources.map(
    ({ cte, table }) =>
      `SELECT ${quoteLiteral(table.schema)}, ${quoteLiteral(table.name)}, ` +
      `CASE WHEN ${OLD_COL} IS NULL THEN 'I' WHEN ${NEW_COL} IS NULL THEN 'D' ELSE 'U' END, ${OLD_COL}, ${NEW_COL} FROM ${quoteIdent(cte)}`,
  );
  const insert = `INSERT INTO ${qualified("public", QUEUE_TABLE)} (schema_name, table_name, op, old_row, new_row) ${selects.join(" UNION ALL ")}`;
  const parsed = parseSelect(`WITH ${quoteIdent(name)} AS (${insert}) SELECT 1`);
  return parsed.withClause.ctes[0] as Node;
}

function cteNode(name: string, query: Node, aliases?: string[]): Node {
  return {
    CommonTableExpr: {
      ctename: name,
      ...(aliases ? { aliascolnames: aliases.map((sval) => ({ String: { sval } })) } : {}),
      ctematerialized: "CTEMaterializeDefault",
      ctequery: query,
    },
  };
}

/** `WITH <ctes> SELECT * FROM name`: asks PostgreSQL what columns the WITH query `name` has. */
function probe(body: Node, ctes: Node[], name: string): string {
  const select = parseSelect(`SELECT * FROM ${quoteIdent(name)}`);
  return deparse({ SelectStmt: { ...select, withClause: { ctes, recursive: body.withClause?.recursive ?? false } } });
}

/** Every relation name, alias and WITH query name in the statement, so generated names avoid them. */
function namesIn(stmt: Node): Set<string> {
  const names = new Set<string>();
  walk(stmt, (type, body) => {
    if (type === "RangeVar") names.add(body.relname);
    if (type === "CommonTableExpr") names.add(body.ctename);
    if (body.alias?.aliasname) names.add(body.alias.aliasname);
  });
  return names;
}
