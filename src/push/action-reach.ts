import { noRules, type TableRules } from "../capture/constraints.js";

type Reach = ReadonlyMap<number, string>;

/** Per rules (one per catalog, shared by a sync's windows), the reaches already walked: "oid:moved". */
const walked = new WeakMap<ReadonlyMap<number, TableRules>, Map<string, Reach>>();

/**
 * The tables that foreign key actions reach from a delete of a `table` row (`moved` false), or from a change of
 * `table`'s own referenced columns by an ON UPDATE action (`moved`: the table itself, then its children), and
 * through the actions those set off, their children and so on (a cascade deletes or moves grandchildren too):
 * by table oid, the log entries ("I", "U", "D") of it that must wait for the action to reach the remote
 * (Coalescer.add): after an ON DELETE CASCADE, an insert (of a key it deleted); after a SET NULL / SET DEFAULT or
 * an ON UPDATE action, any write of a row it changed (not a delete after a SET NULL of the table's own rows: a
 * tree's mass delete would be a window per row). Where a table's columns changed, each of its ON UPDATE actions
 * counts, whichever columns changed (conservative). Walked once per rules and table: a window asks at every delete.
 */
export function actionReach(rules: ReadonlyMap<number, TableRules>, table: number, moved: boolean): Reach {
  let known = walked.get(rules);
  if (!known) walked.set(rules, (known = new Map()));
  const key = `${table}:${moved}`;
  let reach = known.get(key);
  if (!reach) known.set(key, (reach = walk(rules, table, moved, new Map())));
  return reach;
}

function walk(
  rules: ReadonlyMap<number, TableRules>,
  table: number,
  moved: boolean,
  out: Map<number, string>,
): Map<number, string> {
  const add = (t: number, ops: string, next: boolean) => {
    if (out.has(t)) return void out.set(t, out.get(t)! + ops);
    out.set(t, ops);
    if (next) walk(rules, t, ops !== "I", out);
  };
  const r = rules.get(table) ?? NO_RULES;
  if (moved) {
    if (!out.has(table)) out.set(table, "IUD");
    for (const u of r.updateActions) add(u.child, "IUD", true);
    return out;
  }
  for (const c of r.deleteActionChildren)
    add(c, !r.deleteSetChildren.includes(c) ? "I" : c === table ? "IU" : "IUD", c !== table);
  return out;
}

const NO_RULES = noRules();
