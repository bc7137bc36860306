import { CaptureError } from "../core/errors.js";
import { quoteIdent } from "../core/sql.js";
import type { Catalog } from "./catalog.js";
import type { TableInfo } from "../core/table.js";
import { NEXT_LOG_ID, logRowChangesSql, rowImagesSql } from "../log/capture.js";
import { deparse, nodeType, parseSelect, parseStatements, unfaithful, type Node } from "./parser.js";

export const DML_TYPES = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"]);
const COMMAND: Record<string, string> = {
  InsertStmt: "INSERT",
  UpdateStmt: "UPDATE",
  DeleteStmt: "DELETE",
  MergeStmt: "MERGE",
  SelectStmt: "SELECT",
};

/**
 * The capture columns every captured DML returns first: the log id, and the row's json images before and
 * after. The id is drawn in RETURNING, that is when the row is changed: data-modifying WITH queries run in an
 * order of PostgreSQL's choosing (a referenced one before an unreferenced one), and the log must replay in the
 * order the changes happened, not in the order the WITH queries are written.
 */
const ID_COL = "ominipg_i";
const OLD_COL = "ominipg_o";
const NEW_COL = "ominipg_n";
export const CAPTURE_COLUMNS = 3;

export interface CapturedStatement {
  /** The statement to run instead of the original. */
  sql: string;
  /** "rows": the result rows are the original's, each with CAPTURE_COLUMNS leading columns to drop.
   *  "select": the result is the original's as is. "count": one row holding the original's affected-row count.
   *  "logged": no rows; the statement is the log insert, one log row per changed row, so its command tag's
   *  row count is the original's affected-row count. */
  result: "rows" | "select" | "count" | "logged";
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
export async function rewriteForCapture(
  stmt: Node,
  catalog: Catalog,
  describeNames: DescribeNames,
): Promise<CapturedStatement | undefined> {
  const type = nodeType(stmt);
  if (!DML_TYPES.has(type) && type !== "SelectStmt") return undefined;
  const body = stmt[type] as Node;

  const ctes: Node[] = (body.withClause?.ctes as Node[] | undefined) ?? [];
  const topTable = DML_TYPES.has(type) ? syncedTarget(type, body, catalog) : undefined;
  const cteTargets = ctes.map((cte) => {
    const query = cte.CommonTableExpr.ctequery as Node;
    const qtype = nodeType(query);
    return DML_TYPES.has(qtype) ? syncedTarget(qtype, query[qtype], catalog) : undefined;
  });
  if (!topTable && cteTargets.every((t) => !t)) return undefined;
  const why = unfaithful(stmt);
  if (why)
    throw new CaptureError(
      "CAPTURE_UNSUPPORTED",
      `cannot capture this ${COMMAND[type]}: the rewrite goes through pgsql-deparser, and ${why}. Write it another way (other parentheses, or the expression in a separate statement)`,
    );

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

  // Probes must see the statement as the user wrote it (the loop below changes the WITH queries in place).
  const original = {
    ctes: structuredClone(ctes),
    top: structuredClone({ [type]: { ...body, withClause: undefined } }),
  };
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
    const names =
      userExprs.length === 0 ? [] : await describeNames(probe(body, original, cte.ctename, unused("ominipg_probe")));
    addCaptureReturning(qtype, query[qtype], table, unused);
    if (userExprs.length === 0) {
      // No RETURNING: nothing can reference it, so it keeps its name and returns only the capture columns.
      newCtes.push(ctes[i]!);
      sources.push({ cte: cte.ctename, table });
      continue;
    }
    // Referenced by name: keep `name` with the original columns, on top of a capture CTE that has them all.
    const capName = fresh(`ominipg_c${i}`);
    const positional = names.map((_, k) => `ominipg_${k + 1}`);
    newCtes.push(cteNode(capName, query, [ID_COL, OLD_COL, NEW_COL, ...positional]));
    const select = parseSelect(
      `SELECT ${names.map((n, k) => `${positional[k]} AS ${quoteIdent(n)}`).join(", ")} FROM ${quoteIdent(capName)}`,
    );
    newCtes.push(cteNode(cte.ctename, { SelectStmt: select }));
    sources.push({ cte: capName, table });
  }

  let outer: Node;
  let outerType = "SelectStmt";
  let result: CapturedStatement["result"];
  if (!topTable) {
    // The statement itself writes no synced table (a SELECT, or a write elsewhere): it stays the top-level
    // statement, so its result, command tag and row count are PostgreSQL's own.
    outer = body;
    outerType = type;
    result = "select";
  } else {
    const hasUserReturning = (body.returningClause?.exprs?.length ?? 0) > 0;
    const withoutWith = { ...body, withClause: undefined };
    addCaptureReturning(type, withoutWith, topTable, unused);
    const top = fresh("ominipg_w");
    newCtes.push(cteNode(top, { [type]: withoutWith }));
    sources.push({ cte: top, table: topTable });
    result = hasUserReturning ? "rows" : sources.length === 1 ? "logged" : "count";
    if (result === "logged") {
      // The log insert is the statement: no second scan of the changed rows, no result row to send back.
      outer = logInsert(sources);
      outerType = "InsertStmt";
    } else {
      outer = parseSelect(
        result === "rows" ? `SELECT * FROM ${quoteIdent(top)}` : `SELECT count(*) FROM ${quoteIdent(top)}`,
      );
    }
  }
  if (result !== "logged") newCtes.push(cteNode(fresh("ominipg_log"), { InsertStmt: logInsert(sources) }));
  outer = { ...outer, withClause: { ctes: newCtes, recursive: body.withClause?.recursive ?? false } };

  const tables = [...new Map(sources.map((s) => [s.table.oid, s.table])).values()];
  return { sql: deparse({ [outerType]: outer }), result, command: COMMAND[type]!, tables };
}

/** The synced table a DML statement writes, undefined for a table that is not synced; throws where capture is impossible. */
function syncedTarget(type: string, body: Node, catalog: Catalog): TableInfo | undefined {
  const rel = body.relation as Node;
  const found = catalog.resolve(rel.schemaname, rel.relname);
  if (!found) return undefined; // PostgreSQL reports the missing relation itself
  const table = catalog.synced(found.oid);
  const label = rel.schemaname ? `${rel.schemaname}.${rel.relname}` : rel.relname;
  if (found.kind === "v" || found.kind === "f") {
    throw new CaptureError(
      "CAPTURE_UNSUPPORTED",
      `${COMMAND[type]} through ${found.kind === "v" ? "view" : "foreign table"} ${label} is not captured for sync: write to the synced tables directly`,
    );
  }
  if (!table) {
    const why = catalog.writesBehind.get(found.oid);
    if (why)
      throw new CaptureError(
        "CAPTURE_UNSUPPORTED",
        `cannot capture ${COMMAND[type]} on ${label}, which is not synced but may change synced tables: ${why}`,
      );
    const cascade = catalog.cascadesInto.get(found.oid);
    // Only deletes and updates of its rows set the actions off (an INSERT ... ON CONFLICT DO UPDATE updates).
    const changesRows =
      type !== "InsertStmt" || (body.onConflictClause as Node | undefined)?.action === "ONCONFLICT_UPDATE";
    if (cascade && changesRows)
      throw new CaptureError(
        "CAPTURE_UNSUPPORTED",
        `cannot capture ${COMMAND[type]} on ${label}, which is not synced: ${cascade}`,
      );
    return undefined;
  }
  if (table.uncapturable) {
    throw new CaptureError(
      table.primaryKey.length === 0 ? "CAPTURE_NO_PRIMARY_KEY" : "CAPTURE_UNSUPPORTED",
      `cannot capture ${COMMAND[type]} on synced table ${table.schema}.${table.name}: ${table.uncapturable}`,
    );
  }
  return table;
}

/** Statements whose nested statements are definitions (run later, if ever), not writes of the statement itself. */
const DEFINITIONS = new Set(["CreateFunctionStmt", "CreateRuleStmt", "CreateTrigStmt", "ViewStmt"]);

/**
 * Every write statement that runs as part of `stmt`: the statement itself, its WITH queries, and the query of
 * EXPLAIN ANALYZE, COPY (...) TO, CREATE TABLE AS, PREPARE, ... Each comes with its node type; `body.relation`
 * is its target.
 */
export function writesIn(stmt: Node): { type: string; body: Node }[] {
  const found: { type: string; body: Node }[] = [];
  const scan = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(scan);
    if (value === null || typeof value !== "object") return;
    for (const [key, v] of Object.entries(value)) {
      if (DEFINITIONS.has(key)) continue;
      if (DML_TYPES.has(key) && v !== null && typeof v === "object") found.push({ type: key, body: v as Node });
      scan(v);
    }
  };
  scan(stmt);
  return found;
}

/**
 * Put the capture columns first in the statement's RETURNING, with OLD/NEW aliases that cannot clash.
 * PostgreSQL gives the implicit `old` / `new` names only where no range-table entry of the statement's own
 * level (its target, FROM / USING items, MERGE source) already has that name; the explicit aliases follow the
 * same rule, so the user's `old.x` / `new.x` mean what they meant. `unused` gives a name found nowhere.
 */
function addCaptureReturning(type: string, body: Node, table: TableInfo, unused: (base: string) => string): void {
  const clause: Node = body.returningClause ?? {};
  const options: Node[] = [...(clause.options ?? [])];
  const level = levelNames(body);
  const aliasFor = (option: string, base: string) => {
    const existing = options.find((o) => o.ReturningOption?.option === option);
    if (existing) return existing.ReturningOption.value as string;
    // Declaring the default name explicitly keeps the user's own `old.x` / `new.x` working.
    const name = level.has(base) ? unused(base) : base;
    options.push({ ReturningOption: { option, value: name } });
    return name;
  };
  const oldAlias = aliasFor("RETURNING_OPTION_OLD", "old");
  const newAlias = aliasFor("RETURNING_OPTION_NEW", "new");
  const images = rowImagesSql(
    table,
    { old: oldAlias, new: newAlias },
    assignedColumns(type, body),
    type !== "UpdateStmt",
  );
  const capture = parseSelect(
    `SELECT ${NEXT_LOG_ID} AS ${ID_COL}, ${images.old} AS ${OLD_COL}, ${images.new} AS ${NEW_COL}`,
  ).targetList as Node[];
  body.returningClause = { options, exprs: [...capture, ...(clause.exprs ?? [])] };
}

/**
 * The columns a DML statement's UPDATEs assign (SET lists of UPDATE, ON CONFLICT DO UPDATE and MERGE's WHEN
 * clauses; `SET a[1] = ..` and `SET c.f = ..` assign a and c); undefined when it updates no row.
 */
function assignedColumns(type: string, body: Node): Set<string> | undefined {
  const lists: Node[][] =
    type === "UpdateStmt"
      ? [body.targetList ?? []]
      : type === "InsertStmt"
        ? body.onConflictClause?.action === "ONCONFLICT_UPDATE"
          ? [body.onConflictClause.targetList ?? []]
          : []
        : type === "MergeStmt"
          ? (body.mergeWhenClauses ?? [])
              .filter((w: Node) => w.MergeWhenClause?.commandType === "CMD_UPDATE")
              .map((w: Node) => w.MergeWhenClause.targetList ?? [])
          : [];
  if (lists.length === 0) return undefined;
  return new Set(lists.flat().map((t) => t.ResTarget?.name as string));
}

/** The names of a DML statement's own range-table entries: its target and its FROM / USING / MERGE source items. */
function levelNames(body: Node): Set<string> {
  const names = new Set<string>();
  const item = (node: Node | undefined): void => {
    if (!node) return;
    const type = nodeType(node);
    const b = node[type] as Node;
    if (type === "RangeVar") names.add(b.alias?.aliasname ?? b.relname);
    else if (type === "JoinExpr") {
      item(b.larg);
      item(b.rarg);
      if (b.alias?.aliasname) names.add(b.alias.aliasname);
    } else if (b?.alias?.aliasname) names.add(b.alias.aliasname); // subqueries, functions, VALUES lists
  };
  const target = body.relation as Node;
  names.add(target.alias?.aliasname ?? target.relname);
  for (const node of [...(body.fromClause ?? []), ...(body.usingClause ?? []), body.sourceRelation]) item(node);
  return names;
}

/** INSERT INTO _sync_queue of the capture columns of every capturing WITH query. */
function logInsert(sources: { cte: string; table: TableInfo }[]): Node {
  const insert = logRowChangesSql(
    sources.map(({ cte, table }) => ({ cte, schema: table.schema, table: table.name })),
    { id: ID_COL, oldRow: OLD_COL, newRow: NEW_COL },
  );
  return parseStatements(insert)[0]!.stmt.InsertStmt as Node;
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

/**
 * `WITH <the user's WITH queries>, <probeName> AS (<the statement itself>) SELECT * FROM name`: asks PostgreSQL
 * what columns the WITH query `name` has. The statement rides along as an unreferenced WITH query so that every
 * `$n` of the original is in the probe and gets its type as in the original (PostgreSQL analyses unreferenced
 * WITH queries too); without it, a parameter used only outside the WITH queries could not be typed.
 */
function probe(body: Node, original: { ctes: Node[]; top: Node }, name: string, probeName: string): string {
  const top = structuredClone(original.top);
  delete top.SelectStmt?.intoClause; // SELECT ... INTO is not allowed inside WITH
  const select = parseSelect(`SELECT * FROM ${quoteIdent(name)}`);
  const ctes = [...original.ctes, cteNode(probeName, top)];
  return deparse({ SelectStmt: { ...select, withClause: { ctes, recursive: body.withClause?.recursive ?? false } } });
}

/**
 * Every relation name, alias and WITH query name in the statement, so generated names avoid them. A deep scan
 * of every object, not `walk`: typed fields such as a statement's target `relation` (and its alias) carry no
 * node-type wrapper, so `walk` never reports them.
 */
function namesIn(stmt: Node): Set<string> {
  const names = new Set<string>();
  const scan = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(scan);
    if (value === null || typeof value !== "object") return;
    for (const [key, v] of Object.entries(value)) {
      if ((key === "relname" || key === "aliasname" || key === "ctename") && typeof v === "string") names.add(v);
      else scan(v);
    }
  };
  scan(stmt);
  return names;
}
