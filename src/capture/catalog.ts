import type { Driver } from "../core/driver.js";
import { qualified } from "../core/sql.js";
import { OWN_TABLES } from "../log/tables.js";
import { localReferences, type ColumnInfo, type References, type TableInfo } from "../core/table.js";
import { hiddenWriters } from "./hidden-writers.js";
import { COLUMNS_SQL, type ColumnRow } from "./columns.js";
import { LOGGED_COLUMNS_SQL } from "./logged-columns.js";
import { addInheritanceRisks, partitionRootsOf } from "./inheritance.js";
import {
  mayNameSynced,
  mayWrite,
  writerCalledIn,
  writingFunctions as findWriters,
  RUN_ON_WRITE_SQL,
  type FunctionRow,
} from "./writers.js";

export interface SyncScope {
  schemas: string[];
  /** "table" or "schema.table"; empty means every table of the schemas. */
  tables: string[];
  exclude: string[];
}

/** Relation kinds a DML statement can target, as pg_class.relkind. */
type RelKind = "r" | "p" | "v" | "f" | "m";

/**
 * What capture needs to know about the local database: which tables are synced, their columns and keys,
 * how unqualified names resolve, and which user functions may write behind the rewrite's back.
 * Loaded once and reloaded after DDL.
 */
export class Catalog {
  constructor(
    /** Synced tables (and tables in synced schemas that cannot be captured) by oid. */
    readonly tables: Map<number, TableInfo>,
    /** Every relation by "schema.name", for resolving names. */
    private readonly relations: Map<string, { oid: number; kind: RelKind }>,
    private readonly searchPath: string[],
    /** User functions that may write (name and schema.name), with the reason. */
    readonly writingFunctions: Map<string, string>,
    /**
     * Relations outside the synced set whose writes may change synced tables behind capture (a trigger or rule
     * that may write one), by oid, with the reason.
     */
    readonly writesBehind: Map<number, string> = new Map(),
    /** Every foreign key as referencing oid -> referenced oids, synced tables or not. */
    private readonly foreignKeys: Map<number, number[]> = new Map(),
    /**
     * Tables outside the synced set whose DELETE or UPDATE a foreign key action (CASCADE, SET NULL, SET DEFAULT)
     * carries into a synced table, directly or through other such tables, by oid, with the reason: PostgreSQL
     * runs those actions itself, where capture cannot see them.
     */
    readonly cascadesInto: Map<number, string> = new Map(),
    /** Operators, views and domains that run a writing function (hidden-writers.ts). */
    readonly hiddenWriters: Map<string, string> = new Map(),
    /** Partitions of synced partitioned tables, by oid, with their root's oid: their rows sync as the root's. */
    readonly partitionRoots: Map<number, number> = new Map(),
  ) {}

  static async load(driver: Driver, scope: SyncScope): Promise<Catalog> {
    const opts = { prepare: false } as const;
    const [
      { rows: pathRows },
      { rows: relRows },
      { rows: colRows },
      { rows: fkRows },
      { rows: trgRows },
      { rows: fnRows },
      { rows: ruleRows },
      { rows: exprRows },
      { rows: loggedRows },
    ] = [
      await driver.query<{ schemas: string[] }>(`SELECT current_schemas(true) AS schemas`, [], opts),
      await driver.query<{
        oid: number;
        schema: string;
        name: string;
        kind: RelKind;
        pk: string[] | null;
        deferrable: boolean;
        parents: number[] | null;
        partition: boolean;
      }>(
        // Primary keys aggregated once and joined: a sub-select per relation scanned pg_index ~150 times in an
        // empty database (25-29 ms of every load, 7-14 ms so).
        `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, pk.cols AS pk,
                coalesce(pk.deferrable, false) AS deferrable, inh.parents,
                c.relispartition AS partition
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN (SELECT inhrelid, array_agg(inhparent::int8) AS parents FROM pg_inherits GROUP BY inhrelid) AS inh
                  ON inh.inhrelid = c.oid
           LEFT JOIN (SELECT i.indrelid, array_agg(a.attname ORDER BY k.ord) AS cols, bool_or(NOT i.indimmediate) AS deferrable
                        FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                       WHERE i.indisprimary GROUP BY i.indrelid) AS pk ON pk.indrelid = c.oid
          WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm') AND n.nspname <> 'information_schema'
            AND (n.nspname <> 'pg_catalog' OR c.relkind IN ('r', 'v'))`,
        [],
        opts,
      ),
      await driver.query<ColumnRow>(COLUMNS_SQL, [scope.schemas], opts),
      await driver.query<{ oid: number; ref: number; actions: boolean }>(
        `SELECT conrelid::int8 AS oid, confrelid::int8 AS ref, bool_or(confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd')) AS actions
           FROM pg_constraint WHERE contype = 'f' GROUP BY 1, 2`,
        [],
        opts,
      ),
      await driver.query<{
        oid: number;
        name: string;
        lang: string;
        src: string;
        timing: string;
        before_row_update: boolean;
      }>(
        `SELECT t.tgrelid::int8 AS oid, t.tgname AS name, l.lanname AS lang, coalesce(pg_get_function_sqlbody(p.oid), p.prosrc) AS src,
                CASE WHEN t.tgtype & 2 = 2 THEN 'BEFORE' WHEN t.tgtype & 64 = 64 THEN 'INSTEAD OF' ELSE 'AFTER' END AS timing,
                t.tgtype & 19 = 19 AS before_row_update
           FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_language l ON l.oid = p.prolang
          WHERE NOT t.tgisinternal`,
        [],
        opts,
      ),
      // Function text: SQL-standard bodies (BEGIN ATOMIC) leave prosrc empty; pg_get_function_sqlbody has them. An
      // aggregate's is the calls of its state and final functions (its own prosrc says nothing).
      await driver.query<FunctionRow>(
        `SELECT n.nspname AS schema, p.proname AS name, l.lanname AS lang, coalesce(pg_get_function_sqlbody(p.oid), (SELECT format('SELECT %s(); SELECT %s();', a.aggtransfn, a.aggfinalfn) FROM pg_aggregate a WHERE a.aggfnoid = p.oid), p.prosrc) AS src,
                p.prokind::text AS kind, p.provolatile = 'v' AS volatile
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`,
        [],
        opts,
      ),
      // Rules other than views' own: they turn a write into other (or more) writes.
      await driver.query<{ oid: number; name: string; def: string }>(
        `SELECT r.ev_class::int8 AS oid, r.rulename AS name, pg_get_ruledef(r.oid) AS def FROM pg_rewrite r WHERE r.rulename <> '_RETURN'`,
        [],
        opts,
      ),
      // Expressions every write runs (writers.ts).
      await driver.query<{ oid: number; what: string; expr: string }>(RUN_ON_WRITE_SQL, [], opts),
      // Columns an UPDATE's log images always carry, assigned or not (logged-columns.ts).
      await driver.query<{ oid: number; cols: string[] }>(LOGGED_COLUMNS_SQL, [scope.schemas], opts),
    ];

    const relations = new Map<string, { oid: number; kind: RelKind }>();
    for (const r of relRows) relations.set(`${r.schema}.${r.name}`, { oid: Number(r.oid), kind: r.kind });

    const columns = new Map<number, ColumnInfo[]>();
    const refusingNull = new Map<number, string[]>();
    for (const c of colRows) {
      if (c.refuses_null) refusingNull.set(Number(c.oid), [...(refusingNull.get(Number(c.oid)) ?? []), c.name]);
      const list = columns.get(Number(c.oid)) ?? [];
      list.push({
        name: c.name,
        type: c.type,
        typeId: c.type_id,
        generated: c.generated !== "",
        identity: (c.identity || "") as ColumnInfo["identity"],
        jsonValue: c.json_value,
        ...(c.spelling ? { spelling: c.spelling } : {}),
        ...(c.sequence ? { sequence: true } : {}),
      });
      columns.set(Number(c.oid), list);
    }
    const references = new Map<number, number[]>();
    for (const f of fkRows) {
      const list = references.get(Number(f.oid)) ?? [];
      list.push(Number(f.ref));
      references.set(Number(f.oid), list);
    }
    const writingFunctions = findWriters(fnRows);
    const hidden = await hiddenWriters(driver, writingFunctions);

    const logged = new Map(loggedRows.map((r) => [Number(r.oid), r.cols]));
    // A write through a partitioned (or inheritance) parent runs the triggers of the partitions it reaches.
    const parents = new Map(relRows.map((r) => [Number(r.oid), (r.parents ?? []).map(Number)]));
    const deferrable = new Set(relRows.filter((r) => r.deferrable).map((r) => Number(r.oid)));
    const withAncestors = (oid: number, found = new Set<number>()): Set<number> => {
      for (const up of parents.get(oid) ?? []) if (!found.has(up)) withAncestors(up, found.add(up));
      return found.add(oid);
    };
    const beforeUpdate = new Set(
      trgRows.filter((t) => t.before_row_update).flatMap((t) => [...withAncestors(Number(t.oid))]),
    );

    const tables = new Map<number, TableInfo>();
    for (const r of relRows) {
      if ((r.kind !== "r" && r.kind !== "p") || r.partition || !inScope(scope, r.schema, r.name)) continue;
      const oid = Number(r.oid);
      const cols = columns.get(oid) ?? [];
      const strict = refusingNull.get(oid);
      tables.set(oid, {
        oid,
        schema: r.schema,
        name: r.name,
        sql: qualified(r.schema, r.name),
        columns: cols,
        writable: cols.filter((c) => !c.generated).map((c) => c.name),
        updatable: cols.filter((c) => !c.generated && c.identity !== "a").map((c) => c.name),
        primaryKey: r.pk ?? [],
        // A BEFORE UPDATE trigger may change columns an UPDATE does not assign: its table logs whole rows.
        ...(beforeUpdate.has(oid) ? {} : { logged: [...new Set([...(logged.get(oid) ?? []), ...(strict ?? [])])] }),
        ...(strict ? { refusingNull: strict } : {}),
        ...(cols.some((c) => c.sequence && r.pk?.includes(c.name)) ? { keyFromSequence: true } : {}),
        references: references.get(oid) ?? [],
        ...(r.kind === "p" ? { partitioned: true } : {}),
      });
    }

    const partitionRoots = partitionRootsOf(relRows, tables);
    const syncedOid = (oid: number) => partitionRoots.get(oid) ?? oid;
    // Triggers, rules, defaults and CHECK constraints. On a synced table, any AFTER trigger, a BEFORE trigger that
    // may write, a rule, or a default / CHECK calling a writing function makes its writes uncapturable. On any
    // other relation, one that may write a synced table makes writes to that relation refused (writes of
    // local-only tables into local-only tables stay allowed).
    const risky = new Map<number, string>();
    const reaching = [
      ...tables.values(),
      ...relRows.filter((r) => r.kind === "v" || partitionRoots.has(Number(r.oid))),
    ].map((r) => r.name.toLowerCase());
    const mayReachSynced = (lang: string, src: string) =>
      mayWrite(lang, src) && mayNameSynced(lang, src, reaching, writingFunctions);
    for (const t of trgRows) {
      const oid = Number(t.oid);
      const synced = tables.has(syncedOid(oid));
      if (synced ? t.timing !== "BEFORE" || mayWrite(t.lang, t.src) : mayReachSynced(t.lang, t.src)) {
        if (!risky.has(oid)) risky.set(oid, `its ${t.timing} trigger ${t.name} may write rows that capture cannot see`);
      }
    }
    for (const r of ruleRows) {
      const oid = Number(r.oid);
      if (tables.has(oid) || mayNameSynced("sql", r.def, reaching, writingFunctions)) {
        if (!risky.has(oid)) risky.set(oid, `its rule ${r.name} rewrites writes into statements capture cannot see`);
      }
    }
    for (const e of exprRows) {
      const oid = Number(e.oid);
      const expr = e.expr.toLowerCase();
      const fn = writerCalledIn(expr, writingFunctions);
      if (fn && !risky.has(oid)) risky.set(oid, `${e.what} calls ${fn}, which may write rows capture cannot see`);
    }
    addInheritanceRisks(relRows, tables, risky);
    for (const [oid, why] of [...risky]) {
      const name = relRows.find((r) => Number(r.oid) === oid);
      for (const up of withAncestors(oid))
        if (!risky.has(up)) risky.set(up, `its partition or child table ${name?.schema}.${name?.name}: ${why}`);
    }
    const writesBehind = new Map<number, string>();
    for (const [oid, why] of risky) {
      const table = tables.get(syncedOid(oid));
      if (!table) writesBehind.set(oid, why);
      else if (table.primaryKey.length > 0) table.uncapturable = why;
    }
    for (const table of tables.values()) {
      const domain = table.columns.find((c) => hidden.has(`type ${c.type}`));
      if (domain && !table.uncapturable)
        table.uncapturable = `its column ${domain.name} is of ${hidden.get(`type ${domain.type}`)}`;
      if (table.primaryKey.length === 0)
        table.uncapturable = `it has no primary key: add one, or leave it out of sync with sync.exclude`;
      // A push writes by INSERT ... ON CONFLICT on the key, which PostgreSQL refuses on a deferrable one; and keys
      // swapped inside one statement, which it allows, log one key as held by two rows at once.
      else if (deferrable.has(table.oid))
        table.uncapturable = `its primary key is DEFERRABLE: make it NOT DEFERRABLE, or leave the table out of sync with sync.exclude`;
    }
    return new Catalog(
      tables,
      relations,
      pathRows[0]?.schemas ?? ["public"],
      writingFunctions,
      writesBehind,
      references,
      cascadesInto(tables, fkRows, relRows),
      hidden,
      partitionRoots,
    );
  }

  /** The synced table (or uncapturable table of a synced schema) a name resolves to, if it is one. */
  table(schema: string | undefined, name: string): TableInfo | undefined {
    const found = this.resolve(schema, name);
    return found && this.synced(found.oid);
  }

  /** The synced table (or uncapturable table of a synced schema) whose rows a relation holds: a partition's root. */
  synced(oid: number): TableInfo | undefined {
    return this.tables.get(this.partitionRoots.get(oid) ?? oid);
  }

  /** The relation a (possibly unqualified) name refers to, resolved as PostgreSQL would through search_path. */
  resolve(schema: string | undefined, name: string): { oid: number; kind: RelKind } | undefined {
    if (schema) return this.relations.get(`${schema}.${name}`);
    for (const s of this.searchPath) {
      const rel = this.relations.get(`${s}.${name}`);
      if (rel) return rel;
    }
    return undefined;
  }

  /**
   * What TRUNCATE ... CASCADE empties: the given relations and, transitively, every table that references one
   * of them through a foreign key (through tables that are not synced too).
   */
  truncatedWith(oids: Iterable<number>): Set<number> {
    const truncated = new Set(oids);
    for (let grew = true; grew;) {
      grew = false;
      for (const [oid, refs] of this.foreignKeys) {
        if (!truncated.has(oid) && refs.some((r) => truncated.has(r))) {
          truncated.add(oid);
          grew = true;
        }
      }
    }
    return truncated;
  }

  /**
   * Synced tables in dependency order: a table comes after every table it references (`references`: by default
   * its local foreign keys).
   */
  syncedInDependencyOrder(references: References = localReferences): TableInfo[] {
    const out: TableInfo[] = [];
    const state = new Map<number, "visiting" | "done">();
    const visit = (t: TableInfo) => {
      if (state.get(t.oid)) return; // cycles: order among the cycle's tables is as found
      state.set(t.oid, "visiting");
      for (const ref of references(t)) {
        const parent = this.tables.get(ref);
        if (parent) visit(parent);
      }
      state.set(t.oid, "done");
      out.push(t);
    };
    for (const t of [...this.tables.values()].sort((a, b) => a.sql.localeCompare(b.sql))) visit(t);
    return out;
  }
}

function inScope(scope: SyncScope, schema: string, name: string): boolean {
  if (!scope.schemas.includes(schema) || (schema === "public" && OWN_TABLES.has(name)) || OWN_TABLES.has(name))
    return false;
  const matches = (entry: string) => entry === name || entry === `${schema}.${name}`;
  if (scope.exclude.some(matches)) return false;
  return scope.tables.length === 0 || scope.tables.some(matches);
}

/** Catalog.cascadesInto: walk foreign keys with actions from every synced table up to the tables they reference. */
function cascadesInto(
  tables: Map<number, TableInfo>,
  fks: { oid: number; ref: number; actions: boolean }[],
  relations: { oid: number; schema: string; name: string }[],
): Map<number, string> {
  const names = new Map(relations.map((r) => [Number(r.oid), `${r.schema}.${r.name}`]));
  const out = new Map<number, string>();
  const reach = (child: number, synced: string) => {
    for (const f of fks) {
      const parent = Number(f.ref);
      if (Number(f.oid) !== child || !f.actions || tables.has(parent) || out.has(parent)) continue;
      out.set(
        parent,
        `a foreign key action (ON DELETE / ON UPDATE CASCADE, SET NULL or SET DEFAULT) carries deletes and updates of its rows into ` +
          `synced table ${synced}, where capture cannot see them: sync ${names.get(parent) ?? "it"} too, or make the foreign key NO ACTION`,
      );
      reach(parent, synced);
    }
  };
  for (const [oid, t] of tables) reach(oid, `${t.schema}.${t.name}`);
  return out;
}
