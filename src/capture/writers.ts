/** A user function as the catalog reads it. */
export interface FunctionRow {
  schema: string;
  name: string;
  lang: string;
  src: string;
  /** pg_proc.prokind: "f" function, "p" procedure, ... */
  kind: string;
  volatile: boolean;
}

/**
 * The user functions that may write rows capture cannot see, by name and schema.name, with the reason: volatile
 * ones whose body may write, procedures, and any function (of any volatility) that calls one of them by name: a
 * STABLE wrapper of a writing function runs its writes just the same.
 */
export function writingFunctions(functions: readonly FunctionRow[]): Map<string, string> {
  const out = new Map<string, string>();
  const add = (f: FunctionRow, why: string) => {
    out.set(f.name, why);
    out.set(`${f.schema}.${f.name}`, why);
  };
  for (const f of functions)
    if (f.kind === "p" || (f.volatile && mayWrite(f.lang, f.src)))
      add(
        f,
        `${f.schema}.${f.name} is a volatile ${f.kind === "p" ? "procedure" : "function"} that may write rows capture cannot see`,
      );
  // Bodies in lower case without comments and literals, made once: the loop reads them again at each round.
  // Quotes dropped: `"writer"(x)` calls writer as `writer(x)` does.
  const codes = functions.map((f) => ({ f, code: codeOf(f.src).toLowerCase().replaceAll('"', "") }));
  for (let grew = out.size > 0; grew;) {
    grew = false;
    for (const { f, code } of codes) {
      if (out.has(`${f.schema}.${f.name}`)) continue;
      const callee = [...out.keys()].find((name) => calls(code, name.toLowerCase()));
      if (!callee) continue;
      add(f, `${f.schema}.${f.name} calls ${callee}, which may write rows capture cannot see`);
      grew = true;
    }
  }
  return out;
}

/**
 * Whether code that may write could write a synced table: it names one (or a view, which may write one:
 * `reaching`, names in lower case), calls a function that may write, or is opaque (a language other than SQL and
 * PL/pgSQL, or dynamic SQL through EXECUTE). A plain substring test, so it errs on the side of "yes".
 */
export function mayNameSynced(
  language: string,
  source: string,
  reaching: readonly string[],
  writing: Map<string, string>,
): boolean {
  if (language !== "plpgsql" && language !== "sql") return true;
  const code = source.toLowerCase();
  if (/\bexecute\b/.test(code)) return true;
  for (const name of reaching) if (code.includes(name)) return true;
  for (const name of writing.keys()) if (code.includes(name.toLowerCase())) return true;
  return false;
}

/**
 * The writing function (a key of `writing`) that an expression's text (a default, a CHECK, a view's query, in
 * lower case) calls, by a plain substring test of `name(`: errs on the side of "yes".
 */
export function writerCalledIn(text: string, writing: Map<string, string>): string | undefined {
  return [...writing.keys()].find((name) => text.includes(`${name.toLowerCase()}(`));
}

/**
 * Whether a function body may write. Bodies in languages other than SQL and PL/pgSQL are opaque, so they may.
 * String literals and comments are dropped first so that `TG_OP = 'UPDATE'` does not count.
 */
export function mayWrite(language: string, source: string): boolean {
  if (language !== "plpgsql" && language !== "sql") return true;
  // DDL too: a table it creates (a temp one hides a synced table's name) or alters leaves capture's catalog stale.
  return /\b(insert|update|delete|merge|truncate|copy|execute|perform|call|create|alter|drop)\b/i.test(codeOf(source));
}

/** A body without its comments and string literals. */
function codeOf(source: string): string {
  return source
    .replace(/--[^\n]*/g, " ")
    .replace(/\/\*[\s\S]*?\*\//g, " ")
    .replace(/'(?:[^']|'')*'/g, "''");
}

/** Whether `code` calls `name` (or schema.name; both in lower case): the name as a word, then an opening parenthesis. */
function calls(code: string, name: string): boolean {
  if (!code.includes(name)) return false; // most bodies name no writing function: no expression built for them
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w$."])${escaped}\\s*\\(`).test(code);
}

/**
 * Expressions every INSERT / UPDATE of a table runs, which may call user functions (writerCalledIn finds a writing
 * one): column defaults (a domain's too), CHECK constraints, index expressions and predicates, triggers' WHEN clauses.
 */
export const RUN_ON_WRITE_SQL = `SELECT d.adrelid::int8 AS oid, 'the default of column ' || a.attname AS what, pg_get_expr(d.adbin, d.adrelid) AS expr
           FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
         UNION ALL
         SELECT c.conrelid::int8, 'check constraint ' || c.conname, pg_get_constraintdef(c.oid)
           FROM pg_constraint c WHERE c.contype = 'c' AND c.conrelid <> 0
         UNION ALL
         SELECT a.attrelid::int8, 'the default of column ' || a.attname || ' (its domain''s)', y.typdefault
           FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid WHERE y.typtype = 'd' AND y.typdefault IS NOT NULL AND a.attnum > 0
         UNION ALL
         SELECT x.indrelid::int8, 'index ' || x.indexrelid::regclass, pg_get_indexdef(x.indexrelid)
           FROM pg_index x WHERE x.indexprs IS NOT NULL OR x.indpred IS NOT NULL
         UNION ALL
         SELECT g.tgrelid::int8, 'the WHEN clause of trigger ' || g.tgname, coalesce(substring(pg_get_triggerdef(g.oid) FROM ' WHEN \\((.*)\\) EXECUTE '), '')
           FROM pg_trigger g WHERE g.tgqual IS NOT NULL`;
