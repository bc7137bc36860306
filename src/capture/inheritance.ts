import type { TableInfo } from "../core/table.js";

/** A relation of the catalog, with its inheritance (or partition) parents. */
export interface InheritingRelation {
  oid: number;
  schema: string;
  name: string;
  parents: number[] | null;
  partition: boolean;
}

/**
 * The partitions of synced partitioned tables, by oid, with their root's oid. A partition's rows are its root's:
 * logged, pushed and pulled under the root's name whichever table a statement names (on the remote, the root
 * routes them), so the log holds one name per row, and a pull reads each row once.
 */
export function partitionRootsOf(relations: InheritingRelation[], tables: Map<number, TableInfo>): Map<number, number> {
  const parentOf = new Map(relations.filter((r) => r.partition).map((r) => [Number(r.oid), Number(r.parents![0])]));
  const roots = new Map<number, number>();
  for (const oid of parentOf.keys()) {
    let root = oid;
    while (parentOf.has(root)) root = parentOf.get(root)!;
    if (tables.has(root)) roots.set(oid, root);
  }
  return roots;
}
