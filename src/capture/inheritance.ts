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

/**
 * Plain inheritance (not partitioning): a write through a parent reaches its children's rows, which capture would
 * log as the parent's own (and a push or pull of the parent would reach the remote children's rows). A synced
 * parent is refused, and so are writes through an unsynced parent of a synced table: added to `risky` by oid.
 */
export function addInheritanceRisks(
  relations: InheritingRelation[],
  tables: Map<number, TableInfo>,
  risky: Map<number, string>,
): void {
  for (const r of relations) {
    if (r.partition) continue;
    const child = `${r.schema}.${r.name}`;
    for (const up of (r.parents ?? []).map(Number)) {
      if (risky.has(up)) continue;
      if (tables.has(up))
        risky.set(
          up,
          `it has inheritance child table ${child}: a write through it reaches the child's rows, which capture would log as its own. Leave it out of sync with sync.exclude (the child can stay synced), or make it a partitioned table`,
        );
      else if (tables.has(Number(r.oid)))
        risky.set(
          up,
          `writes through it reach the rows of its inheritance child table ${child}, which is synced: write to ${child} directly`,
        );
    }
  }
}
