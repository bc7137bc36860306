/** Quoting for the SQL Ominipg itself writes: every identifier and literal it puts into SQL goes through here. */

export function quoteIdent(name: string): string {
  if (name.includes("\0")) throw new TypeError("identifier contains a NUL character");
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  if (value.includes("\0")) throw new TypeError("literal contains a NUL character");
  const quoted = value.replace(/'/g, "''");
  // A backslash means one thing in '' under standard_conforming_strings (on by default) and another without it (a
  // database or a role may turn it off): an escape string E'' with backslashes doubled reads the same under both.
  return value.includes("\\") ? `E'${quoted.replace(/\\/g, "\\\\")}'` : `'${quoted}'`;
}

export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** `"a", "b"`, or with an alias (a table alias or a parenthesised row expression) `x."a", x."b"`. */
export function columnList(columns: readonly string[], alias?: string): string {
  return columns.map((c) => (alias ? `${alias}.${quoteIdent(c)}` : quoteIdent(c))).join(", ");
}

/** `x."a" = y."a" AND x."b" = y."b"`: two rows agree on `columns` (a key, usually). */
export function columnsEqual(columns: readonly string[], x: string, y: string): string {
  return columns.map((c) => `${x}.${quoteIdent(c)} = ${y}.${quoteIdent(c)}`).join(" AND ");
}

/**
 * The ON CONFLICT clause of an upsert on `key`: set `set` to the proposed row's values (only where `where`
 * holds, if given), or do nothing when there is nothing to set.
 */
export function onConflict(key: readonly string[], set: readonly string[], where?: string): string {
  if (set.length === 0) return `ON CONFLICT (${columnList(key)}) DO NOTHING`;
  const assignments = set.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(", ");
  return `ON CONFLICT (${columnList(key)}) DO UPDATE SET ${assignments}${where ? ` WHERE ${where}` : ""}`;
}
