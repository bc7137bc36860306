import type { TableInfo } from "../core/table.js";
import { SyncError } from "../core/errors.js";
import type { Sql } from "../remote/connection.js";

/**
 * Before the first push: every synced table must exist remotely with the same columns (names and types)
 * and the same primary key. Otherwise the push would fail half-way or, worse, write the wrong columns.
 */
export async function checkRemoteSchema(sql: Sql, tables: TableInfo[]): Promise<RemoteReferences> {
  if (tables.length === 0) return new Map();
  // Arrays travel as JSON text: the driver runs without its array-type catalog (see openRemote).
  const rows = await sql.unsafe<
    { schema: string; name: string; col: string | null; type: string | null; pk: string | null }[]
  >(
    `SELECT n.nspname AS schema, c.relname AS name, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
            (SELECT array_to_json(array_agg(pa.attname::text ORDER BY k.ord))::text FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute pa ON pa.attrelid = c.oid AND pa.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p') AND (n.nspname || '.' || c.relname) IN (SELECT jsonb_array_elements_text($1::text::jsonb))`,
    [JSON.stringify(tables.map((t) => `${t.schema}.${t.name}`))],
  );
  const remote = new Map<string, { columns: Map<string, string>; pk: string[] }>();
  for (const r of rows) {
    const key = `${r.schema}.${r.name}`;
    const entry = remote.get(key) ?? { columns: new Map(), pk: r.pk ? (JSON.parse(r.pk) as string[]) : [] };
    if (r.col) entry.columns.set(r.col, r.type ?? "");
    remote.set(key, entry);
  }
  const problems: string[] = [];
  for (const t of tables) {
    const name = `${t.schema}.${t.name}`;
    const r = remote.get(name);
    if (!r) {
      problems.push(`${name}: missing on the remote`);
      continue;
    }
    for (const c of t.columns) {
      const type = r.columns.get(c.name);
      if (type === undefined) problems.push(`${name}.${c.name}: missing on the remote`);
      else if (type !== c.type) problems.push(`${name}.${c.name}: ${c.type} locally, ${type} on the remote`);
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
  return remoteReferences(sql, tables);
}

/** Per synced table (oid), the synced tables (oids, itself too) it references by a foreign key on the remote. */
export type RemoteReferences = Map<number, number[]>;

/**
 * The remote's foreign keys between synced tables: the push sends parents before children by them too (a key
 * only the remote has would otherwise refuse children pushed before the parents the app wrote first).
 */
async function remoteReferences(sql: Sql, tables: TableInfo[]): Promise<RemoteReferences> {
  const named = (ns: string, c: string) => `(${ns}.nspname || '.' || ${c}.relname)`;
  const synced = `(SELECT jsonb_array_elements_text($1::text::jsonb))`;
  const rows = await sql.unsafe<{ child: string; parent: string }[]>(
    `SELECT DISTINCT ${named("cn", "cc")} AS child, ${named("pn", "pc")} AS parent FROM pg_constraint k
       JOIN pg_class cc ON cc.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
       JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
      WHERE k.contype = 'f' AND ${named("cn", "cc")} IN ${synced}
        AND ${named("pn", "pc")} IN ${synced}`,
    [JSON.stringify(tables.map((t) => `${t.schema}.${t.name}`))],
  );
  const byName = new Map(tables.map((t) => [`${t.schema}.${t.name}`, t.oid]));
  const refs: RemoteReferences = new Map();
  for (const r of rows) {
    const [child, parent] = [byName.get(r.child)!, byName.get(r.parent)!];
    refs.set(child, [...(refs.get(child) ?? []), parent]);
  }
  return refs;
}
