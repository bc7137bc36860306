/** Quoting for the SQL Ominipg itself writes: every identifier and literal it puts into SQL goes through here. */

export function quoteIdent(name: string): string {
  if (name.includes("\0")) throw new TypeError("identifier contains a NUL character");
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  if (value.includes("\0")) throw new TypeError("literal contains a NUL character");
  // E'' is never used: with standard_conforming_strings (default on) backslashes are literal here.
  return `'${value.replace(/'/g, "''")}'`;
}

export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}
