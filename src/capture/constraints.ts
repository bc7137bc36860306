import type { TableInfo } from "../core/table.js";
import type { Driver } from "../core/driver.js";

/**
 * What the applier must know about a synced table's constraints to keep the remote's constraints satisfied
 * while it reorders and merges the log (see Coalescer.add): unique column sets, and which foreign keys
 * referencing the table act on their own (ON DELETE / ON UPDATE CASCADE, SET NULL, SET DEFAULT).
 * Such actions run inside PostgreSQL, locally and remotely, and are not in the log.
 */
export interface TableRules {
  /** Unique column sets (primary key included); `deferrable`: checked at the end of the statement, or later. */
  uniques: { columns: string[]; nullsDistinct: boolean; deferrable?: boolean }[];
  /**
   * Unique indexes on expressions (e.g. lower(email)), by the columns they depend on: which values they hold
   * cannot be told from the row images, only whether a row's inputs to them changed.
   */
  opaqueUniques: { columns: string[] }[];
  /** Tables with a foreign key to this table that has an ON DELETE action. */
  deleteActionChildren: number[];
  /** Those whose action is SET NULL or SET DEFAULT: their rows stay, changed. */
  deleteSetChildren: number[];
  /**
   * Foreign keys to this table that have an ON UPDATE action: the referencing table, and the columns of this one
   * it references (the key, or a UNIQUE constraint's columns): a change of those sets the action off.
   */
  updateActions: { child: number; columns: string[] }[];
  /** This table's foreign keys to itself: its columns, and the columns they reference, position by position. */
  selfRefs: { columns: string[]; refs: string[] }[];
}

/** A table's rules before its constraints are read: none. */
export function noRules(): TableRules {
  return {
    uniques: [],
    opaqueUniques: [],
    deleteActionChildren: [],
    deleteSetChildren: [],
    updateActions: [],
    selfRefs: [],
  };
}

export async function loadRules(d: Driver, tables: Iterable<TableInfo>): Promise<Map<number, TableRules>> {
  const rules = new Map<number, TableRules>();
  for (const t of tables) rules.set(t.oid, noRules());
  const oids = [...rules.keys()];
  if (oids.length === 0) return rules;
  const { rows: idx } = await d.query<UniqueIndexRow>(uniqueIndexesSql(`i.indrelid::int8 = ANY($1::int8[])`), [oids], {
    prepare: false,
  });
  for (const r of idx) {
    const rule = rules.get(Number(r.oid));
    if (rule) addUniqueIndex(rule, r);
  }
  const { rows: fks } = await d.query<ForeignKeyRow>(foreignKeysSql(`f.confrelid::int8 = ANY($1::int8[])`), [oids], {
    prepare: false,
  });
  const acts = (action: string) => action === "c" || action === "n" || action === "d";
  for (const f of fks) {
    const parent = rules.get(Number(f.parent))!;
    if (acts(f.del)) parent.deleteActionChildren.push(Number(f.child));
    if (f.del === "n" || f.del === "d") parent.deleteSetChildren.push(Number(f.child));
    if (acts(f.upd)) parent.updateActions.push({ child: Number(f.child), columns: JSON.parse(f.refs) as string[] });
    if (Number(f.child) === Number(f.parent)) addSelfRef(parent, f);
  }
  return rules;
}

/**
 * Names of the columns `attnums` (an int2[] expression) of relation `rel`, in their order (the first `upto`), as JSON
 * text. Unique indexes and foreign keys are read alike from the local database (loadRules) and the remote one
 * (push/schema-check.ts: what only the remote has), and the remote driver reads no arrays.
 */
function columnNamesSql(attnums: string, rel: string, upto = ""): string {
  return (
    `(SELECT array_to_json(array_agg(a.attname::text ORDER BY k.i))::text FROM unnest(${attnums}) WITH ORDINALITY AS k(attnum, i) ` +
    `JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = k.attnum${upto ? ` WHERE k.i <= ${upto}` : ""})`
  );
}

/** A unique index as uniqueIndexesSql reads it. */
export interface UniqueIndexRow {
  oid: number;
  /** Its table, "schema.name". */
  name: string;
  expr: boolean;
  cols: string | null;
  deps: string | null;
  nnd: boolean;
  deferrable: boolean;
}

/**
 * SQL: the unique indexes of the tables `where` picks (a condition on pg_index i, pg_class c, pg_namespace n), the
 * primary key first: key columns, and for one on expressions the columns it depends on. NULLS NOT DISTINCT is read
 * through to_jsonb: PostgreSQL 14 has no indnullsnotdistinct.
 */
export function uniqueIndexesSql(where: string): string {
  return `SELECT i.indrelid::int8 AS oid, n.nspname || '.' || c.relname AS name, i.indexprs IS NOT NULL AS expr,
            ${columnNamesSql("i.indkey::int2[]", "i.indrelid", "i.indnkeyatts")} AS cols,
            (SELECT array_to_json(array_agg(DISTINCT a.attname::text))::text FROM pg_depend dep
               JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
              WHERE dep.classid = 'pg_class'::regclass AND dep.objid = i.indexrelid AND dep.refobjsubid > 0) AS deps,
            coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nnd, NOT i.indimmediate AS deferrable
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.indisunique AND ${where}
      ORDER BY i.indisprimary DESC, i.indexrelid`;
}

/** Adds a unique index (uniqueIndexesSql) to a table's rules: one on expressions by the columns it depends on. */
export function addUniqueIndex(rule: Pick<TableRules, "uniques" | "opaqueUniques">, r: UniqueIndexRow): void {
  if (r.expr) rule.opaqueUniques.push({ columns: JSON.parse(r.deps ?? "[]") as string[] });
  else
    rule.uniques.push({
      columns: JSON.parse(r.cols ?? "[]") as string[],
      nullsDistinct: !r.nnd,
      deferrable: r.deferrable,
    });
}

/** A foreign key as foreignKeysSql reads it. */
export interface ForeignKeyRow {
  child: number;
  parent: number;
  /** The tables, "schema.name". */
  childName: string;
  parentName: string;
  upd: string;
  del: string;
  cols: string;
  refs: string;
}

/**
 * SQL: the foreign keys `where` picks (a condition on pg_constraint f and the child's and parent's pg_class cc, pc
 * and pg_namespace cn, pn): their tables, actions, and columns paired by position.
 */
export function foreignKeysSql(where: string): string {
  return `SELECT f.conrelid::int8 AS child, f.confrelid::int8 AS parent, cn.nspname || '.' || cc.relname AS "childName",
            pn.nspname || '.' || pc.relname AS "parentName", f.confupdtype::text AS upd, f.confdeltype::text AS del,
            ${columnNamesSql("f.conkey", "f.conrelid")} AS cols, ${columnNamesSql("f.confkey", "f.confrelid")} AS refs
       FROM pg_constraint f
       JOIN pg_class cc ON cc.oid = f.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
       JOIN pg_class pc ON pc.oid = f.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
      WHERE f.contype = 'f' AND ${where}`;
}

/** Adds a foreign key of a table to itself (foreignKeysSql) to its rules. */
export function addSelfRef(rule: Pick<TableRules, "selfRefs">, f: ForeignKeyRow): void {
  rule.selfRefs.push({ columns: JSON.parse(f.cols) as string[], refs: JSON.parse(f.refs) as string[] });
}
