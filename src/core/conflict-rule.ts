import jsonPatch from "fast-json-patch";
import { splitImage, type Image } from "./image.js";

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
