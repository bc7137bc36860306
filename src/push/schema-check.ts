import {
  addSelfRef,
  addUniqueIndex,
  foreignKeysSql,
  uniqueIndexesSql,
  type ForeignKeyRow,
  type TableRules,
  type UniqueIndexRow,
} from "../capture/constraints.js";
import type { ColumnInfo, TableInfo } from "../core/table.js";
import { SyncError } from "../core/errors.js";
import type { Sql } from "../remote/connection.js";

/** What the push learns of the remote's synced tables before its first push (checkRemoteSchema). */
export interface RemoteSchema {
  references: RemoteReferences;
  /**
   * Per synced table (oid), the differences that matter only where its rows are pushed (refusePush): a table the
   * app only pulls may differ so.
   */
  pushOnly: Map<number, string[]>;
  /** Per synced table (oid), its unique indexes and foreign keys to itself on the remote (withRemoteRules). */
  rules: Map<number, RemoteRules>;
}

/** What the coalescer and the order of the push also keep for the remote's own constraints. */
type RemoteRules = Pick<TableRules, "uniques" | "opaqueUniques" | "selfRefs">;

/** The synced tables' names ("schema.name") in the remote's catalog queries: SYNCED, given syncedNames as $1. */
const SYNCED = `(SELECT jsonb_array_elements_text($1::text::jsonb))`;
const syncedNames = (tables: TableInfo[]) => JSON.stringify(tables.map((t) => `${t.schema}.${t.name}`));

/** A remote column as the check compares it. */
interface RemoteColumn {
  type: string;
  generated: boolean;
  identity: string;
}

/**
 * Before the first push: every synced table must exist remotely with the same columns (names and types)
 * and the same primary key. Otherwise the push would fail half-way or, worse, write the wrong columns.
 */
export async function checkRemoteSchema(sql: Sql, tables: TableInfo[]): Promise<RemoteSchema> {
  if (tables.length === 0) return { references: new Map(), pushOnly: new Map(), rules: new Map() };
  // Arrays travel as JSON text: the driver runs without its array-type catalog (see openRemote).
  const rows = await sql.unsafe<
    {
      schema: string;
      name: string;
      col: string | null;
      type: string | null;
      generated: boolean | null;
      identity: string | null;
      pk: string | null;
    }[]
  >(
    `SELECT n.nspname AS schema, c.relname AS name, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
            a.attgenerated <> '' AS generated, a.attidentity::text AS identity,
            (SELECT array_to_json(array_agg(pa.attname::text ORDER BY k.ord))::text FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute pa ON pa.attrelid = c.oid AND pa.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p') AND (n.nspname || '.' || c.relname) IN ${SYNCED}`,
    [syncedNames(tables)],
  );
  const remote = new Map<string, { columns: Map<string, RemoteColumn>; pk: string[] }>();
  for (const r of rows) {
    const key = `${r.schema}.${r.name}`;
    const entry = remote.get(key) ?? { columns: new Map(), pk: r.pk ? (JSON.parse(r.pk) as string[]) : [] };
    if (r.col)
      entry.columns.set(r.col, { type: r.type ?? "", generated: r.generated ?? false, identity: r.identity ?? "" });
    remote.set(key, entry);
  }
  const problems: string[] = [];
  const pushOnly = new Map<number, string[]>();
  for (const t of tables) {
    const name = `${t.schema}.${t.name}`;
    const r = remote.get(name);
    if (!r) {
      problems.push(`${name}: missing on the remote`);
      continue;
    }
    for (const c of t.columns) {
      const rc = r.columns.get(c.name);
      if (rc === undefined) problems.push(`${name}.${c.name}: missing on the remote`);
      else if (rc.type !== c.type) problems.push(`${name}.${c.name}: ${c.type} locally, ${rc.type} on the remote`);
      else {
        const problem = pushProblem(c, rc);
        if (problem) pushOnly.set(t.oid, [...(pushOnly.get(t.oid) ?? []), `${name}.${c.name}: ${problem}`]);
      }
    }
    for (const col of r.columns.keys()) {
      if (!t.columns.some((c) => c.name === col)) problems.push(`${name}.${col}: only on the remote`);
    }
    if (r.pk.join(",") !== t.primaryKey.join(",")) {
      problems.push(
        `${name}: primary key (${t.primaryKey.join(", ")}) locally, (${r.pk.join(", ") || "none"}) on the remote`,
      );
    }
  }
  if (problems.length > 0) {
    throw new SyncError(
      "REMOTE_SCHEMA_MISMATCH",
      `the remote schema differs from the local one:\n  ${problems.join("\n  ")}`,
      { retryable: false },
    );
  }
  const rules = await remoteUniques(sql, tables);
  return { references: await remoteReferences(sql, tables, rules), pushOnly, rules };
}

/**
 * A column difference that breaks the push of the table's rows, not their pull. The push writes the columns the
 * local table does not generate, with OVERRIDING SYSTEM VALUE where the local column is GENERATED ALWAYS AS
 * IDENTITY: a column generated locally only would reach the remote as NULL, one generated remotely only, or an
 * identity ALWAYS there only, would have every write refused.
 */
function pushProblem(local: ColumnInfo, remote: RemoteColumn): string | undefined {
  if (local.generated && !remote.generated) return "generated locally, not on the remote (its values would be lost)";
  if (!local.generated && remote.generated) return "generated on the remote only (the remote refuses its values)";
  if (remote.identity === "a" && local.identity !== "a")
    return `GENERATED ALWAYS AS IDENTITY on the remote only (locally ${local.identity === "d" ? "BY DEFAULT" : "not an identity"})`;
  return undefined;
}

/**
 * Refuses to push rows of `table` when it differs from the remote table in a way only its push breaks (pushOnly):
 * the sync stops there, the changes stay queued, and a table the app only pulls is not held up.
 */
export function refusePush(schema: RemoteSchema, table: TableInfo): void {
  const problems = schema.pushOnly.get(table.oid);
  if (!problems) return;
  throw new SyncError(
    "REMOTE_SCHEMA_MISMATCH",
    `changes to ${table.schema}.${table.name} cannot be pushed, the remote table differs:\n  ${problems.join("\n  ")}\n` +
      `Make the column the same on both sides (generated, or not, alike); the changes stay queued.`,
    { retryable: false },
  );
}

/** Per synced table (oid), the synced tables (oids, itself too) it references by a foreign key on the remote. */
export type RemoteReferences = Map<number, number[]>;

/**
 * The remote's foreign keys between synced tables: the push sends parents before children by them too (a key
 * only the remote has would otherwise refuse children pushed before the parents the app wrote first).
 */
async function remoteReferences(
  sql: Sql,
  tables: TableInfo[],
  rules: Map<number, RemoteRules>,
): Promise<RemoteReferences> {
  const named = (ns: string, c: string) => `(${ns}.nspname || '.' || ${c}.relname)`;
  const rows = await sql.unsafe<ForeignKeyRow[]>(
    foreignKeysSql(`${named("cn", "cc")} IN ${SYNCED} AND ${named("pn", "pc")} IN ${SYNCED}`),
    [syncedNames(tables)],
  );
  const byName = new Map(tables.map((t) => [`${t.schema}.${t.name}`, t.oid]));
  const refs: RemoteReferences = new Map();
  for (const r of rows) {
    const [child, parent] = [byName.get(r.childName)!, byName.get(r.parentName)!];
    refs.set(child, [...new Set([...(refs.get(child) ?? []), parent])]);
    // A foreign key to the table itself orders its rows within a window too (selfReferenceOrder).
    if (child === parent) addSelfRef(ruleOf(rules, child), r);
  }
  return refs;
}

function ruleOf(rules: Map<number, RemoteRules>, oid: number): RemoteRules {
  let rule = rules.get(oid);
  if (!rule) rules.set(oid, (rule = { uniques: [], opaqueUniques: [], selfRefs: [] }));
  return rule;
}

/**
 * The remote's unique indexes on synced tables: the coalescer keeps a swap of unique values through a temporary
 * one in separate statements by them too (a constraint only the remote has would otherwise refuse the swap
 * coalesced into one statement).
 */
async function remoteUniques(sql: Sql, tables: TableInfo[]): Promise<Map<number, RemoteRules>> {
  const rows = await sql.unsafe<UniqueIndexRow[]>(uniqueIndexesSql(`(n.nspname || '.' || c.relname) IN ${SYNCED}`), [
    syncedNames(tables),
  ]);
  const byName = new Map(tables.map((t) => [`${t.schema}.${t.name}`, t.oid]));
  const out = new Map<number, RemoteRules>();
  for (const r of rows) addUniqueIndex(ruleOf(out, byName.get(r.name)!), r);
  return out;
}

/**
 * The local tables' rules with what only the remote has added: its unique indexes and its foreign keys to the table
 * itself. A unique index whose columns an UPDATE's images do not all carry (TableInfo.logged: the local ones' are)
 * counts as opaque: whether a row's values in it changed is all the coalescer can tell.
 */
export function withRemoteRules(
  rules: Map<number, TableRules>,
  schema: RemoteSchema,
  tables: ReadonlyMap<number, TableInfo>,
): Map<number, TableRules> {
  const same = (a: { columns: string[] }, b: { columns: string[] }) =>
    a.columns.join("\u0000") === b.columns.join("\u0000");
  for (const [oid, remote] of schema.rules) {
    const rule = rules.get(oid);
    const logged = tables.get(oid)?.logged;
    if (!rule) continue;
    for (const u of remote.uniques) {
      if (
        rule.uniques.some((l) => same(l, u) && l.nullsDistinct === u.nullsDistinct && !!l.deferrable === u.deferrable)
      )
        continue;
      if (!logged || u.columns.every((c) => logged.includes(c))) rule.uniques.push(u);
      else if (!rule.opaqueUniques.some((l) => same(l, u))) rule.opaqueUniques.push({ columns: u.columns });
    }
    for (const u of remote.opaqueUniques) if (!rule.opaqueUniques.some((l) => same(l, u))) rule.opaqueUniques.push(u);
    for (const f of remote.selfRefs)
      if (!rule.selfRefs.some((l) => same(l, f) && l.refs.join("\u0000") === f.refs.join("\u0000")))
        rule.selfRefs.push(f);
  }
  return rules;
}
