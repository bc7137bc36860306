/** A libpg-query AST node: `{ NodeType: { ...fields } }`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the AST is walked generically; its node shapes are libpg-query's, not ours to type
export type Node = Record<string, any>;
export interface RawStmt {
  stmt: Node;
  stmt_location?: number;
  stmt_len?: number;
}

type Deparse = (typeof import("pgsql-deparser"))["deparseSync"];
let loaded: { parseSync: (sql: string) => unknown; deparseSync: Deparse } | undefined;
let loading: Promise<void> | undefined;

/**
 * The parser (libpg-query, WASM) and the deparser, imported and loaded once per process: ~0.1-0.2 s in a new
 * process, which connect() overlaps with PGlite's own start.
 */
export function loadParser(): Promise<void> {
  loading ??= (async () => {
    const [lib, dep] = await Promise.all([import("libpg-query"), import("pgsql-deparser")]);
    await lib.loadModule();
    loaded = { parseSync: lib.parseSync, deparseSync: dep.deparseSync };
  })();
  return loading;
}

function parser(): NonNullable<typeof loaded> {
  if (!loaded) throw new Error("the SQL parser is not loaded yet (await loadParser() first)");
  return loaded;
}

/** Parse with PostgreSQL's own parser. Throws on a syntax error. */
export function parseStatements(sql: string): RawStmt[] {
  return (parser().parseSync(sql) as { stmts?: RawStmt[] }).stmts ?? [];
}

/**
 * The statements, or undefined when the text is not valid SQL (the parser's SqlError): PostgreSQL reports the
 * error itself when it runs, with its exact message and position. Any other failure (the parser not loaded, out
 * of memory) throws: a write must never run uncaptured because the parser failed.
 */
export function parseIfValid(sql: string): RawStmt[] | undefined {
  try {
    return parseStatements(sql);
  } catch (err) {
    if ((err as { sqlDetails?: unknown } | null)?.sqlDetails !== undefined) return undefined;
    throw err;
  }
}

export function deparse(node: Node): string {
  return parser().deparseSync(node as Parameters<Deparse>[0], { pretty: false });
}

/**
 * Why the deparser would not print `stmt` back as the same statement, or undefined when it does: its text parsed
 * again must give the same tree, positions aside. pgsql-deparser drops some parentheses and clauses (`(a AND b)
 * IS NULL`, `FETCH FIRST .. WITH TIES`, `GROUP BY DISTINCT`) and cannot print some nodes (JSON_VALUE): a rewrite
 * built on it would run another statement than the caller's.
 */
export function unfaithful(stmt: Node): string | undefined {
  let text: string;
  try {
    text = deparse(stmt);
  } catch (err) {
    return `it cannot print it (${(err as Error)?.message ?? String(err)})`;
  }
  const again = parseIfValid(text);
  if (again?.length === 1 && sameTree(again[0]!.stmt, stmt)) return undefined;
  return `it prints it as ${text.length > 300 ? `${text.slice(0, 300)}...` : text}`;
}

/** Fields that hold positions in the text (location, name_location, list_start, rexpr_list_end, ...). */
const POSITION = /(^|_)(location|start|end|len)$/;

function sameTree(a: unknown, b: unknown): boolean {
  const positionless = (key: string, value: unknown) => (POSITION.test(key) ? undefined : value);
  return JSON.stringify(a, positionless) === JSON.stringify(b, positionless);
}

/** The one key of a node: "InsertStmt", "SelectStmt", ... */
export function nodeType(node: Node): string {
  return Object.keys(node)[0] ?? "";
}

/** Visit every node below `root` (objects with a single capitalized key) depth-first. */
export function walk(root: unknown, visit: (type: string, body: Node) => void): void {
  if (Array.isArray(root)) {
    for (const item of root) walk(item, visit);
    return;
  }
  if (root === null || typeof root !== "object") return;
  for (const [key, value] of Object.entries(root as Node)) {
    if (/^[A-Z]/.test(key) && value !== null && typeof value === "object" && !Array.isArray(value))
      visit(key, value as Node);
    walk(value, visit);
  }
}

/** The text of a one-statement SELECT template, parsed, for grafting into a rewritten AST. */
export function parseSelect(sql: string): Node {
  const [raw] = parseStatements(sql);
  if (!raw || !raw.stmt.SelectStmt) throw new Error(`template is not a SELECT: ${sql}`);
  return raw.stmt.SelectStmt as Node;
}
