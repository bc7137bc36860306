import type { Catalog } from "../capture/catalog.js";
import type { TableInfo } from "../core/table.js";
import { rejectOwnTableWrites } from "./own-tables.js";
import { loadParser, nodeType, parseIfValid, walk, type Node, type RawStmt } from "../capture/parser.js";
import { rejectWritingFunctions } from "../capture/writing-calls.js";
import { truncateSql } from "./truncate.js";
import {
  DML_TYPES,
  rewriteForCapture,
  writesIn,
  type CapturedStatement,
  type DescribeNames,
} from "../capture/rewrite.js";
import { CaptureError } from "../core/errors.js";
import { Lru } from "../core/lru.js";

/** What running a statement does to Ominipg's caches. */
export type Effect = "none" | "ddl" | "commit" | "rollback";

/** One statement, as it will run. */
export interface Step {
  /** SQL to run (possibly several statements for a TRUNCATE and its log entry). */
  sql: string;
  /** How to turn what runs into the original statement's result. */
  shape: "as-is" | "captured-rows" | "captured-count" | "captured-logged";
  /** The original command tag word, for captured statements. */
  command?: string;
  /** Results the step's SQL yields beyond the first (hidden from the caller). */
  hiddenResults: number;
  /** Worth a named prepared statement: a plain or captured query, not a utility statement. */
  prepare: boolean;
  effect: Effect;
  /** Synced tables written. */
  tables: TableInfo[];
  /** A TRUNCATE ... RESTART IDENTITY of synced tables: their sequences start over (see OminipgBase.restarted). */
  restarts?: boolean;
}

/**
 * What a script leaves to plan later: it changes the schema (or how names resolve) before a statement whose plan
 * depends on it, so its steps stop there, and what follows (from offset `at`) is planned once they ran, against
 * the catalog they leave. `ownTransaction`: the script holds no transaction statement, so its parts run in one
 * transaction, as PostgreSQL runs a script.
 */
export interface ScriptRest {
  at: number;
  ownTransaction: boolean;
}

export type Plan = { kind: "single"; step: Step } | { kind: "script"; steps: Step[]; rest?: ScriptRest };

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
    await loadParser(); // at once when loaded: connect() loads it unless told not to
    const stmts = parseIfValid(sql);
    // PostgreSQL reports the syntax error itself, with its exact message and position.
    if (!stmts) return { kind: "single", step: passthrough(sql, "none", false) };
    const plan =
      stmts.length <= 1
        ? { kind: "single" as const, step: await this.#step(sql, stmts[0]) }
        : await this.#script(sql, stmts);
    this.#cache.set(sql, plan);
    return plan;
  }

  async #script(sql: string, stmts: RawStmt[]): Promise<Plan> {
    const steps: Step[] = [];
    const ownTransaction = !stmts.some((s) => nodeType(s.stmt) === "TransactionStmt");
    // A statement planned so far changes the schema (or how names resolve); or restarts sequences, in a script run
    // as one transaction: the ids a later insert takes must come from where the restart leaves them
    // (OminipgBase.restarted).
    let changed = false;
    for (const raw of stmts) {
      // Consecutive DDL stays together; a statement that writes (or reads what a write may change) after it waits.
      if (changed && readsCatalog(raw.stmt))
        return { kind: "script", steps, rest: { at: raw.stmt_location ?? 0, ownTransaction } };
      const step = await this.#step(textOf(sql, raw), raw);
      steps.push(step);
      changed ||= step.effect === "ddl" || (step.restarts === true && ownTransaction);
    }
    return { kind: "script", steps };
  }

  async #step(text: string, raw: RawStmt | undefined): Promise<Step> {
    if (!raw) return passthrough(text, "none", false);
    const stmt = raw.stmt;
    const type = nodeType(stmt);
    const effect = effectOf(stmt, text);
    if (!this.capture || endsTransaction(stmt)) return passthrough(text, effect, effect === "none" && !isUtility(type));

    const catalog = await this.capture.catalog();
    rejectOwnTableWrites(stmt, type);
    if (UNSAFE_NAMES.test(text) || /set_config/i.test(text)) rejectUnsafeSettings(stmt);
    rejectUncapturable(stmt, type, catalog);
    rejectWritingFunctions(stmt, catalog);
    if (type === "TruncateStmt") {
      const t = truncateSql(stmt.TruncateStmt, catalog);
      return t
        ? { ...t, shape: "as-is", hiddenResults: 1, prepare: false, effect: "none" }
        : passthrough(text, "none", false);
    }
    if (DML_TYPES.has(type) || type === "SelectStmt") {
      const captured = await rewriteForCapture(stmt, catalog, this.capture.describeNames);
      if (captured) return capturedStep(captured, effect);
    }
    return passthrough(text, effect, effect === "none" && !isUtility(type));
  }
}

/** Whether planning the statement depends on the catalog: a SELECT, TRUNCATE or COPY, or a write anywhere in it. */
function readsCatalog(stmt: Node): boolean {
  const type = nodeType(stmt);
  return type === "SelectStmt" || type === "TruncateStmt" || type === "CopyStmt" || writesIn(stmt).length > 0;
}

function passthrough(sql: string, effect: Effect, prepare: boolean): Step {
  return { sql, shape: "as-is", hiddenResults: 0, prepare, effect, tables: [] };
}

function capturedStep(c: CapturedStatement, effect: Effect): Step {
  return {
    sql: c.sql,
    shape: c.result === "select" ? "as-is" : `captured-${c.result}`,
    command: c.command,
    hiddenResults: 0,
    prepare: true,
    effect,
    tables: c.tables,
  };
}

function isUtility(type: string): boolean {
  return !DML_TYPES.has(type) && type !== "SelectStmt" && type !== "";
}

/**
 * COMMIT, ROLLBACK, ROLLBACK TO, RELEASE, ...: they write nothing, so they need no catalog, and they must work
 * in an aborted transaction, where loading the catalog (queries) would fail and leave the client unable to
 * end the transaction.
 */
function endsTransaction(stmt: Node): boolean {
  const kind = stmt.TransactionStmt?.kind as string | undefined;
  return (
    kind !== undefined && kind !== "TRANS_STMT_BEGIN" && kind !== "TRANS_STMT_START" && kind !== "TRANS_STMT_SAVEPOINT"
  );
}

/** Statements that change nothing a plan or the catalog depends on (not DEALLOCATE: it drops the driver's statements too). */
const HARMLESS = new Set([
  "SelectStmt",
  "VariableShowStmt",
  "ExplainStmt",
  "DeclareCursorStmt",
  "FetchStmt",
  "ClosePortalStmt",
  "LockStmt",
  "VacuumStmt",
  "CheckPointStmt",
  "ListenStmt",
  "NotifyStmt",
  "UnlistenStmt",
  "ExecuteStmt",
  "PrepareStmt",
  "CopyStmt",
  "CallStmt",
  "DoStmt",
  "TruncateStmt",
]);

function effectOf(stmt: Node, text: string): Effect {
  if (/set_config/i.test(text) && setsNamesByCall(stmt)) return "ddl";
  const type = nodeType(stmt);
  // SELECT ... INTO makes a table (a temp one may hide a synced table's name from then on).
  if (type === "SelectStmt" && stmt.SelectStmt.intoClause) return "ddl";
  if (type === "DoStmt" && /search_path|set_config|\brole\b|session_authorization/i.test(text)) return "ddl"; // its code is text
  if (type === "TransactionStmt") {
    const kind = stmt.TransactionStmt.kind as string;
    if (kind === "TRANS_STMT_COMMIT" || kind === "TRANS_STMT_RELEASE") return "commit";
    if (kind === "TRANS_STMT_ROLLBACK" || kind === "TRANS_STMT_ROLLBACK_TO" || kind === "TRANS_STMT_ROLLBACK_PREPARED")
      return "rollback";
    return "none";
  }
  if (DML_TYPES.has(type) || HARMLESS.has(type) || type === "") return "none";
  const set = stmt.VariableSetStmt as Node | undefined;
  if (set && set.kind !== "VAR_RESET_ALL" && !NAME_SETTINGS.has(String(set.name ?? "").toLowerCase())) return "none";
  // DDL, a SET of how names resolve (or RESET ALL), DISCARD, ...: plans and catalog may be stale.
  return "ddl";
}

/**
 * Settings that decide what a name means: the search path, and the role its "$user" stands for. Any other SET
 * (TimeZone, statement_timeout, ...) keeps the catalog and the prepared statements: reloading them costs ~15 ms.
 */
const NAME_SETTINGS = new Set(["search_path", "role", "session_authorization"]);

/** The setting a set_config() call names, in lower case; null when it is not a constant; undefined if no such call. */
function setConfigTarget(type: string, body: Node): string | null | undefined {
  if (type !== "FuncCall" || (body.funcname as Node[]).at(-1)?.String?.sval !== "set_config") return undefined;
  const name: unknown = body.args?.[0]?.A_Const?.sval?.sval;
  return typeof name === "string" ? name.toLowerCase() : null;
}

/** A set_config() call of a name setting, or of a setting not named by a constant (it may be one). */
function setsNamesByCall(stmt: Node): boolean {
  const names: (string | null | undefined)[] = [];
  walk(stmt, (type, body) => names.push(setConfigTarget(type, body)));
  return names.some((name) => name === null || (name !== undefined && NAME_SETTINGS.has(name)));
}

/** The text of one statement of a script. */
function textOf(sql: string, raw: RawStmt): string {
  const start = raw.stmt_location ?? 0;
  return raw.stmt_len ? sql.slice(start, start + raw.stmt_len) : sql.slice(start);
}

/**
 * Settings under which what capture logs would not be what the remote does with it, each with the one value range
 * it keeps. SET (and ALTER ... SET, set_config) of another value, or of one that is not a constant, is refused;
 * RESET and SET ... TO DEFAULT are not.
 */
const UNSAFE_SETTINGS: Record<string, { keeps: (value: string) => boolean; why: string }> = {
  // Row images render floats with it: below 1 they are rounded (15 digits), and the rounded values are pushed.
  extra_float_digits: {
    keeps: (v) => Number(v) >= 1,
    why: "extra_float_digits below 1 would round the float values captured for sync: keep it at 1 or more (the default is 1; to_char() formats floats for display)",
  },
  // replica or local turns the local foreign-key actions and triggers off, while the remote's still run when the
  // changes are pushed (a parent's delete cascading to children the local database kept).
  session_replication_role: {
    keeps: (v) => v.toLowerCase() === "origin",
    why: "session_replication_role other than origin turns off the local foreign-key actions and triggers, which the remote still runs when the changes are pushed: keep it origin",
  },
  // Off, a backslash in a string constant is an escape, which capture's parser reads as a character.
  standard_conforming_strings: {
    keeps: (v) => ["on", "true", "1", "yes"].includes(v.toLowerCase()),
    why: "standard_conforming_strings off makes backslashes in string constants escapes, which capture's parser does not read: keep it on (write escapes as E'...')",
  },
  // Row images carry intervals as text: sql_standard's "-1 -2:00:00" is read by the remote as -1 day +2 hours.
  intervalstyle: {
    keeps: (v) => ["postgres", "postgres_verbose", "iso_8601"].includes(v.toLowerCase()),
    why: "IntervalStyle sql_standard writes negative intervals in a form the remote reads as other values: keep postgres, postgres_verbose or iso_8601",
  },
  // Row images carry ranges, multiranges and arrays with other bounds as text: SQL, Postgres and German print their
  // dates in an order (and time zones by abbreviations) the remote reads as other values.
  datestyle: {
    keeps: (v) => v !== "" && !/\b(sql|postgres|german)\b/i.test(v),
    why: "a DateStyle other than ISO prints the dates inside captured ranges and arrays in a form the remote reads as other values (day and month swapped, time zones by abbreviation), as PGlite's own results do: keep the ISO output style (ISO, DMY is fine; to_char() formats dates for display)",
  },
};
const UNSAFE_NAMES = new RegExp(Object.keys(UNSAFE_SETTINGS).join("|"), "i");
const COMPUTED_NAME = `set_config() of a setting named by an expression, not a constant, could set ${Object.keys(UNSAFE_SETTINGS).join(", ")}: name the setting as a constant`;

function rejectUnsafeSettings(stmt: Node): void {
  const value = (arg: Node | undefined): string | undefined => {
    const c = arg?.A_Const;
    if (!c) return undefined;
    return c.ival ? String(c.ival.ival ?? 0) : c.sval ? String(c.sval.sval) : undefined; // other constants: refused
  };
  // A list (SET DateStyle = DMY, SQL) is judged whole.
  const refuse = (name: string | null | undefined, args: (Node | undefined)[]) => {
    if (name === null) throw new CaptureError("CAPTURE_UNSUPPORTED", COMPUTED_NAME);
    const rule = name ? UNSAFE_SETTINGS[name.toLowerCase()] : undefined;
    if (rule && !rule.keeps(args.map((a) => value(a) ?? "").join(", ")))
      throw new CaptureError("CAPTURE_UNSUPPORTED", rule.why);
  };
  walk(stmt, (type, body) => {
    const v: Node | undefined =
      type === "VariableSetStmt"
        ? body
        : type === "AlterDatabaseSetStmt" || type === "AlterRoleSetStmt"
          ? body.setstmt
          : undefined;
    if (v?.kind === "VAR_SET_VALUE") refuse(v.name as string, (v.args ?? []) as Node[]);
    const called = setConfigTarget(type, body);
    // A query parameter names the setting the app passes (not looked at: a gap, docs say so); an expression is refused.
    if (called !== undefined && !(called === null && body.args?.[0]?.ParamRef))
      refuse(called, [body.args?.[1] as Node | undefined]);
  });
}

/** Statements that would write synced tables where the rewrite cannot see. */
function rejectUncapturable(stmt: Node, type: string, catalog: Catalog): void {
  const fail = (what: string, advice: string) => {
    throw new CaptureError("CAPTURE_UNSUPPORTED", `${what} is not captured for sync: ${advice}`);
  };
  const syncedName = (rel: Node | undefined) => {
    if (!rel) return undefined;
    const t = catalog.table(rel.schemaname, rel.relname);
    return t ? `${t.schema}.${t.name}` : undefined;
  };
  switch (type) {
    case "CallStmt":
      return fail(
        "CALL",
        "procedures can write rows capture cannot see; write through query() statements, or run it in schemaSQL",
      );
    case "PrepareStmt":
      return fail(
        "PREPARE",
        "a prepared statement runs at EXECUTE against the tables, search_path and functions of that moment, unchecked; " +
          "pass parameters to query() instead (Ominipg prepares statements itself)",
      );
    case "DoStmt":
      return fail(
        "a DO block",
        "it can write rows capture cannot see; write through query() statements, or run it in schemaSQL",
      );
    case "CopyStmt": {
      const rel = stmt.CopyStmt.is_from ? (stmt.CopyStmt.relation as Node | undefined) : undefined;
      const name = syncedName(rel);
      if (name) fail(`COPY FROM into synced table ${name}`, "insert the rows with INSERT statements");
      const found = rel && catalog.resolve(rel.schemaname, rel.relname);
      const why = found && catalog.writesBehind.get(found.oid);
      if (why) fail(`COPY FROM into ${rel.relname}`, `it may change synced tables where capture cannot see: ${why}`);
      break;
    }
  }
  if (DML_TYPES.has(type) || type === "SelectStmt") return; // the rewrite captures these (and rejects what it cannot)
  if (type === "ExplainStmt" && !explainAnalyze(stmt.ExplainStmt)) return; // plans the write, never runs it
  // A write nested in another statement (EXPLAIN ANALYZE, COPY (...) TO, CREATE TABLE AS) runs outside the rewrite.
  for (const w of writesIn(stmt)) {
    const rel = w.body.relation as Node;
    const found = catalog.resolve(rel.schemaname, rel.relname);
    const behind =
      found &&
      (found.kind === "v" ||
        found.kind === "f" ||
        catalog.writesBehind.has(found.oid) ||
        catalog.cascadesInto.has(found.oid));
    const name = syncedName(rel) ?? (behind ? rel.relname : undefined);
    if (!name) continue;
    if (type === "ExplainStmt")
      fail(`EXPLAIN ANALYZE of a write to ${name}`, "it runs the write outside capture; use EXPLAIN without ANALYZE");
    fail(
      `${statementName(type)} running a write to ${name}`,
      "run the write as a statement of its own through query()",
    );
  }
}

/** EXPLAIN (ANALYZE) and EXPLAIN (ANALYZE true) run the statement; EXPLAIN (ANALYZE false) does not. */
function explainAnalyze(body: Node): boolean {
  const option = (body.options as Node[] | undefined)?.find((o) => o.DefElem?.defname === "analyze")?.DefElem;
  if (!option) return false;
  const arg = option.arg as Node | undefined;
  if (!arg) return true;
  if (arg.Boolean) return arg.Boolean.boolval === true;
  return !["false", "off", "0", "no"].includes(String(arg.String?.sval ?? arg.Integer?.ival ?? "").toLowerCase());
}

function statementName(type: string): string {
  const names: Record<string, string> = { CopyStmt: "COPY", CreateTableAsStmt: "CREATE TABLE AS / SELECT INTO" };
  return names[type] ?? type.replace(/Stmt$/, "");
}
