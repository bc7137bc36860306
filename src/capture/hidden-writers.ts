import type { Driver } from "../core/driver.js";
import { writerCalledIn } from "./writers.js";

/**
 * Where a writing function runs although no statement names it: an operator it implements, a view whose query
 * calls it or reads such a view (reading the view runs it; a materialized view's query runs at its REFRESH, keyed
 * "refresh <name>", not when it is read), a domain whose CHECK
 * calls it (a cast to the domain, or a write to a column of that type, runs it), a type a cast function to which
 * is it (a cast, explicit or on assignment to a column of that type, runs it). Keyed "operator <name>",
 * "relation <name>", "relation <schema.name>", "type <name>", "type <schema.name>", with the reason. Looked up
 * only when some user function may write, so a database without one pays nothing.
 */
export async function hiddenWriters(driver: Driver, writing: Map<string, string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (writing.size === 0) return out;
  const { rows } = await driver.query<{ kind: string; schema: string; name: string; what: string; text: string }>(
    `SELECT 'operator' AS kind, n.nspname AS schema, o.oprname::text AS name, 'operator ' || o.oprname AS what,
            format('%s.%s( %s(', pn.nspname, p.proname, p.proname) AS text
       FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
       JOIN pg_proc p ON p.oid = o.oprcode JOIN pg_namespace pn ON pn.oid = p.pronamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
     UNION ALL
     SELECT CASE c.relkind WHEN 'v' THEN 'relation' ELSE 'refresh' END, n.nspname, c.relname::text,
            CASE c.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END || c.relname, pg_get_viewdef(c.oid)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     UNION ALL
     SELECT 'type', n.nspname, t.typname::text, 'domain ' || t.typname, pg_get_constraintdef(c.oid)
       FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE c.contype = 'c'
     UNION ALL
     SELECT 'type', n.nspname, t.typname::text, 'a cast to ' || t.typname, format('%s.%s( %s(', pn.nspname, p.proname, p.proname)
       FROM pg_cast c JOIN pg_type t ON t.oid = c.casttarget JOIN pg_namespace n ON n.oid = t.typnamespace
       JOIN pg_proc p ON p.oid = c.castfunc JOIN pg_namespace pn ON pn.oid = p.pronamespace
      WHERE pn.nspname NOT IN ('pg_catalog', 'information_schema')`,
    [],
    { prepare: false },
  );
  // What in a definition leads to a writer: a writing function's call, or (by name: errs on the side of "yes") a
  // view found before.
  const leadsTo = (text: string): string | undefined =>
    writerCalledIn(text, writing) ??
    [...out.keys()].find((k) => k.startsWith("relation ") && text.includes(k.slice(9).toLowerCase()))?.slice(9);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) {
      if (out.has(`${r.kind} ${r.schema}.${r.name}`)) continue;
      const via = leadsTo(r.text.toLowerCase());
      if (!via) continue;
      const reason = `${r.what}, which runs ${via}, which may write rows capture cannot see`;
      out.set(`${r.kind} ${r.name}`, reason);
      out.set(`${r.kind} ${r.schema}.${r.name}`, reason);
      grew = true;
    }
  }
  return out;
}
