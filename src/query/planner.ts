import type { Catalog, TableInfo } from "../capture/catalog.js";
import { OWN_TABLES, QUEUE_TABLE, REJECTED_TABLE, CONFLICTS_TABLE } from "../capture/own-tables.js";
import { deparse, nodeType, parseStatements, walk, type Node, type RawStmt } from "../capture/parser.js";
import { DML_TYPES, rejectWritingFunctions, rewriteForCapture, type CapturedStatement, type DescribeNames } from "../capture/rewrite.js";
import { CaptureError } from "../errors.js";
import { Lru } from "../local/lru.js";
import { qualified, quoteLiteral } from "../sql.js";

/** What running a statement does to Ominipg's caches. */
export type Effect = "none" | "ddl" | "commit" | "rollback";

/** One statement, as it will run. */
export interface Step {
  /** SQL to run (possibly several statements for a TRUNCATE and its log entry). */
  sql: string;
  /** How to turn what runs into the original statement's result. */
  shape: "as-is" | "captured-rows" | "captured-count";
  /** The original command tag word, for captured statements. */
  command?: string;
  /** Results the step's SQL yields beyond the first (hidden from the caller). */
  hiddenResults: number;
  /** Worth a named prepared statement: a plain or captured query, not a utility statement. */
  prepare: boolean;
  effect: Effect;
  /** Synced tables written. */
  tables: TableInfo[];
}

export type Plan = { kind: "single"; step: Step } | { kind: "script"; steps: Step[] };

export interface CaptureContext {
  catalog(): Promise<Catalog>;
  describeNames: DescribeNames;
}

/**
 * Turns SQL text into what runs: parses it with PostgreSQL's parser, classifies each statement, and with
 * capture on, rewrites writes to synced tables. Plans are cached per SQL text.
 */
export class Planner {
  #cache: Lru<string, Plan>;

  constructor(
    private readonly capture: CaptureContext | undefined,
    cacheSize = 500,
  ) {
    this.#cache = new Lru(cacheSize);
  }

  /** Forget cached plans (after DDL: tables, columns and sync scope may have changed). */
  invalidate(): void {
    this.#cache.clear();
  }

  async plan(sql: string): Promise<Plan> {
    const cached = this.#cache.get(sql);
    if (cached) return cached;
    let stmts: RawStmt[];
    try {
      stmts = parseStatements(sql);
    } catch {
      // PostgreSQL reports the syntax error itself, with its exact message and position.
      return { kind: "single", step: passthrough(sql, "none", false) };
    }
    const plan: Plan =
      stmts.length <= 1
        ? { kind: "single", step: await this.#step(sql, stmts[0]) }
        : { kind: "script", steps: await Promise.all(stmts.map((s) => this.#step(textOf(sql, s), s))) };
    this.#cache.set(sql, plan);
    return plan;
  }

  async #step(text: string, raw: RawStmt | undefined): Promise<Step> {
    if (!raw) return passthrough(text, "none", false);
    const stmt = raw.stmt;
    const type = nodeType(stmt);
    const effect = effectOf(stmt);
    if (!this.capture) return passthrough(text, effect, effect === "none" && !isUtility(type));

    const catalog = await this.capture.catalog();
    rejectOwnTableWrites(stmt, type);
    rejectUncapturable(stmt, type, catalog);
    rejectWritingFunctions(stmt, catalog);
    if (type === "TruncateStmt") return truncateStep(text, stmt.TruncateStmt, catalog);
    if (DML_TYPES.has(type) || type === "SelectStmt") {
      const captured = await rewriteForCapture(stmt, catalog, this.capture.describeNames);
      if (captured) return capturedStep(captured);
    }
    return passthrough(text, effect, effect === "none" && !isUtility(type));
  }
}

function passthrough(sql: string, effect: Effect, prepare: boolean): Step {
  return { sql, shape: "as-is", hiddenResults: 0, prepare, effect, tables: [] };
}

function capturedStep(c: CapturedStatement): Step {
  return {
    sql: c.sql,
    shape: c.result === "rows" ? "captured-rows" : c.result === "count" ? "captured-count" : "as-is",
    command: c.command,
    hiddenResults: 0,
    prepare: true,
    effect: "none",
    tables: c.tables,
  };
}

function isUtility(type: string): boolean {
  return !DML_TYPES.has(type) && type !== "SelectStmt" && type !== "";
}

function effectOf(stmt: Node): Effect {
  const type = nodeType(stmt);
  if (type === "TransactionStmt") {
    const kind = stmt.TransactionStmt.kind as string;
    if (kind === "TRANS_STMT_COMMIT" || kind === "TRANS_STMT_RELEASE") return "commit";
    if (kind === "TRANS_STMT_ROLLBACK" || kind === "TRANS_STMT_ROLLBACK_TO" || kind === "TRANS_STMT_ROLLBACK_PREPARED") return "rollback";
    return "none";
  }
  const harmless = new Set(["SelectStmt", "VariableShowStmt", "ExplainStmt", "DeclareCursorStmt", "FetchStmt", "ClosePortalStmt", "LockStmt", "VacuumStmt", "CheckPointStmt", "ListenStmt", "NotifyStmt", "UnlistenStmt", "DeallocateStmt", "ExecuteStmt", "PrepareStmt", "CopyStmt", "CallStmt", "DoStmt", "TruncateStmt"]);
  if (DML_TYPES.has(type) || harmless.has(type) || type === "") return "none";
  // DDL, SET (search_path changes name resolution), DISCARD, ...: plans and catalog may be stale.
  return "ddl";
}

/** The text of one statement of a script. */
function textOf(sql: string, raw: RawStmt): string {
  const start = raw.stmt_location ?? 0;
  return raw.stmt_len ? sql.slice(start, start + raw.stmt_len) : sql.slice(start);
}

/** Only the sync guide's priority update and clean-up of the record tables may touch Ominipg's own tables. */
function rejectOwnTableWrites(stmt: Node, type: string): void {
  if (type === "SelectStmt" || type === "VariableShowStmt" || type === "TransactionStmt") return;
  let target: string | undefined;
  walk(stmt, (t, body) => {
    if (t === "RangeVar" && OWN_TABLES.has(body.relname) && (!body.schemaname || body.schemaname === "public")) target ??= body.relname;
  });
  if (type === "DropStmt") {
    for (const obj of stmt.DropStmt.objects ?? []) {
      const parts = (obj.List?.items ?? []).map((i: Node) => i.String?.sval);
      if (OWN_TABLES.has(parts.at(-1))) target ??= parts.at(-1);
    }
  }
  if (!target) return;
  const body = stmt[type];
  const targetOf = (b: Node) => b?.relation?.relname as string | undefined;
  if (type === "UpdateStmt" && targetOf(body) === QUEUE_TABLE && !body.fromClause && !body.withClause) {
    const cols = (body.targetList as Node[]).map((t) => t.ResTarget?.name);
    if (cols.every((c) => c === "priority")) return;
  }
  if (type === "DeleteStmt" && (targetOf(body) === REJECTED_TABLE || targetOf(body) === CONFLICTS_TABLE)) return;
  if (DML_TYPES.has(type) && targetOf(body) !== target) return; // only read, e.g. INSERT INTO t SELECT ... FROM _sync_queue
  throw new CaptureError(
    "CAPTURE_UNSUPPORTED",
    `${target} is Ominipg's own table: only "UPDATE ${QUEUE_TABLE} SET priority = ..." and deleting from ${REJECTED_TABLE} / ${CONFLICTS_TABLE} are allowed`,
  );
}

/** Statements that would write synced tables where the rewrite cannot see. */
function rejectUncapturable(stmt: Node, type: string, catalog: Catalog): void {
  const fail = (what: string, advice: string) => {
    throw new CaptureError("CAPTURE_UNSUPPORTED", `${what} is not captured for sync: ${advice}`);
  };
  const syncedName = (rel: Node | undefined) => {
    if (!rel) return undefined;
    const found = catalog.resolve(rel.schemaname, rel.relname);
    const t = found && catalog.tables.get(found.oid);
    return t ? `${t.schema}.${t.name}` : undefined;
  };
  const writesSynced = (node: Node | undefined) => {
    if (!node) return undefined;
    const t = nodeType(node);
    return DML_TYPES.has(t) ? syncedName(node[t].relation) : undefined;
  };
  switch (type) {
    case "CallStmt":
      return fail("CALL", "procedures can write rows capture cannot see; write through query() statements, or run it in schemaSQL");
    case "DoStmt":
      return fail("a DO block", "it can write rows capture cannot see; write through query() statements, or run it in schemaSQL");
    case "CopyStmt": {
      const name = stmt.CopyStmt.is_from ? syncedName(stmt.CopyStmt.relation) : undefined;
      if (name) fail(`COPY FROM into synced table ${name}`, "insert the rows with INSERT statements");
      return;
    }
    case "ExplainStmt": {
      const analyze = (stmt.ExplainStmt.options ?? []).some((o: Node) => o.DefElem?.defname === "analyze");
      const name = analyze ? writesSynced(stmt.ExplainStmt.query) : undefined;
      if (name) fail(`EXPLAIN ANALYZE of a write to synced table ${name}`, "it runs the write outside capture; use EXPLAIN without ANALYZE");
      return;
    }
    case "PrepareStmt": {
      const name = writesSynced(stmt.PrepareStmt.query);
      if (name) fail(`PREPARE of a write to synced table ${name}`, "pass parameters to query() instead; Ominipg prepares statements itself");
      return;
    }
  }
}

/** TRUNCATE of synced tables: the truncation and its log entries run as one script (one implicit transaction). */
function truncateStep(text: string, body: Node, catalog: Catalog): Step {
  const truncated = new Map<number, TableInfo>();
  for (const rv of body.relations as Node[]) {
    const found = catalog.resolve(rv.RangeVar.schemaname, rv.RangeVar.relname);
    const table = found && catalog.tables.get(found.oid);
    if (table) truncated.set(table.oid, table);
  }
  if (body.behavior === "DROP_CASCADE") {
    // CASCADE also empties every table that references a truncated one.
    for (let grew = true; grew; ) {
      grew = false;
      for (const t of catalog.tables.values()) {
        if (!truncated.has(t.oid) && t.references.some((r) => truncated.has(r))) {
          truncated.set(t.oid, t);
          grew = true;
        }
      }
    }
  }
  if (truncated.size === 0) return passthrough(text, "none", false);
  const tables = [...truncated.values()];
  const values = tables.map((t) => `(${quoteLiteral(t.schema)}, ${quoteLiteral(t.name)}, 'T')`).join(", ");
  const log = `INSERT INTO ${qualified("public", QUEUE_TABLE)} (schema_name, table_name, op) VALUES ${values}`;
  return { sql: `${deparse({ TruncateStmt: body })};\n${log}`, shape: "as-is", hiddenResults: 1, prepare: false, effect: "none", tables };
}
