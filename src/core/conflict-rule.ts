import jsonPatch from "fast-json-patch";
import { splitImage, type Image } from "./image.js";
import type { TableInfo } from "./table.js";

/**
 * The conflict rule, for images rendered the same way (canonical local text): a local change conflicts with
 * the remote row when the remote row matches neither the row before the change nor the row after it, in
 * the columns the change touched (every column for an insert or a delete). The push checks the same rule in
 * SQL on the server (push/statements.ts), on typed values.
 */
export function isConflict(base: string | null, local: string | null, remote: string | null): boolean {
  if (remote === local || remote === base) return false;
  if (base === null || local === null || remote === null) return true;
  const [b, l, r] = [splitImage(base), splitImage(local), splitImage(remote)];
  const touched = changedColumns(b, l);
  return !touched.every((c) => r.get(c) === b.get(c)) && !touched.every((c) => r.get(c) === l.get(c));
}

/** Columns whose value differs between two images (fast-json-patch over the top-level value texts). */
export function changedColumns(before: Image, after: Image): string[] {
  const ops = jsonPatch.compare(Object.fromEntries(before), Object.fromEntries(after));
  const cols = new Set<string>();
  for (const op of ops) cols.add(op.path.slice(1).split("/")[0]!.replace(/~1/g, "/").replace(/~0/g, "~"));
  return [...cols];
}

/**
 * The local change written over the remote row: the columns the change touched take the local values, the
 * others keep the remote's. A row the change inserted (or the remote no longer has) is the local row.
 */
export function overwrite(
  table: TableInfo,
  base: Image | null,
  local: Image | null,
  remote: Image | null,
): Image | null {
  if (base === null || local === null || remote === null) return local;
  const row = new Map(remote);
  for (const c of table.writable) if (local.get(c) !== base.get(c)) row.set(c, local.get(c) ?? "null");
  return row;
}

/**
 * Column-level three-way merge. A column only one side changed takes that side's value; a column both sides
 * changed, and a row one side deleted while the other changed it, take the remote's version (the tiebreak:
 * it reached the server first). Rows both sides inserted with the same key: every differing column was
 * "changed" by both, so the remote row.
 */
export function merge(table: TableInfo, base: Image | null, local: Image | null, remote: Image | null): Image | null {
  if (base === null || local === null || remote === null) return remote;
  const merged = new Map(remote);
  for (const c of table.writable) if (remote.get(c) === base.get(c)) merged.set(c, local.get(c) ?? "null");
  return merged;
}
