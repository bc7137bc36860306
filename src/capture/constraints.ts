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
  /**
   * Foreign keys to this table that have an ON UPDATE action: the referencing table, and the columns of this one
   * it references (the key, or a UNIQUE constraint's columns): a change of those sets the action off.
   */
  updateActions: { child: number; columns: string[] }[];
  /** This table's foreign keys to itself: its columns, and the columns they reference, position by position. */
  selfRefs: { columns: string[]; refs: string[] }[];
}

export async function loadRules(d: Driver, tables: Iterable<TableInfo>): Promise<Map<number, TableRules>> {
  const rules = new Map<number, TableRules>();
  for (const t of tables)
    rules.set(t.oid, {
      uniques: [],
      opaqueUniques: [],
      deleteActionChildren: [],
      updateActions: [],
      selfRefs: [],
    });
  const oids = [...rules.keys()];
  if (oids.length === 0) return rules;
  const { rows: idx } = await d.query<{
    oid: number;
    cols: string[];
    nnd: boolean;
    expr: boolean;
    deferrable: boolean;
    deps: string[] | null;
  }>(
    `SELECT i.indrelid::int8 AS oid, i.indnullsnotdistinct AS nnd, i.indexprs IS NOT NULL AS expr,
            NOT i.indimmediate AS deferrable,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.ord <= i.indnkeyatts) AS cols,
            (SELECT array_agg(DISTINCT a.attname::text) FROM pg_depend dep
               JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
              WHERE dep.classid = 'pg_class'::regclass AND dep.objid = i.indexrelid AND dep.refobjsubid > 0) AS deps
       FROM pg_index i
      WHERE i.indisunique AND i.indrelid::int8 = ANY($1::int8[])
      ORDER BY i.indisprimary DESC, i.indexrelid`,
    [oids],
    { prepare: false },
  );
  for (const r of idx) {
    const rule = rules.get(Number(r.oid));
    if (!rule) continue;
    if (r.expr) rule.opaqueUniques.push({ columns: r.deps ?? [] });
    else rule.uniques.push({ columns: r.cols, nullsDistinct: !r.nnd, deferrable: r.deferrable });
  }
  const { rows: fks } = await d.query<{
    child: number;
    parent: number;
    upd: string;
    del: string;
    cols: string[];
    refs: string[];
  }>(
    `SELECT c.conrelid::int8 AS child, c.confrelid::int8 AS parent, c.confupdtype::text AS upd, c.confdeltype::text AS del,
            (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, i)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS cols,
            (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, i)
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum) AS refs
       FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid::int8 = ANY($1::int8[])`,
    [oids],
    { prepare: false },
  );
  const acts = (action: string) => action === "c" || action === "n" || action === "d";
  for (const f of fks) {
    const parent = rules.get(Number(f.parent))!;
    if (acts(f.del)) parent.deleteActionChildren.push(Number(f.child));
    if (acts(f.upd)) parent.updateActions.push({ child: Number(f.child), columns: f.refs });
    if (Number(f.child) === Number(f.parent)) parent.selfRefs.push({ columns: f.cols, refs: f.refs });
  }
  return rules;
}
