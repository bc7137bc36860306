/**
 * Secondary indexes built after a copy instead of during it. Keeping an index up to date row by row while a
 * table is loaded costs several times more than building it once over the loaded rows (200,000 rows in
 * PGlite, two secondary indexes: +0.7 s during the load, +0.2 s built after it). So a copy of more than one
 * range drops the table's plain indexes first and builds them again at its end.
 *
 * Only indexes nothing relies on for correctness are deferred: not unique, not a primary key or exclusion
 * constraint's, no constraint's at all, valid, and nothing else depending on them. The primary key and unique
 * indexes stay: the rows are in the table (and the table in use) between ranges, so its keys must hold all
 * along, and a range that meets a key already there is refused by it (copy.ts).
 *
 * Crash-safe: the definitions (pg_get_indexdef, the comment, the CLUSTER mark) are recorded in
 * `_ominipg_meta` in the transaction that drops the indexes, and forgotten in the one that builds them again.
 * A copy that breaks off keeps them deferred while the pull's retry continues it; a pull that ends in failure
 * builds them again before it gives up, and any later pull of the table builds whatever a kill left recorded
 * (a resumed copy at its end). Until then queries on the table run without them: slower, never wrong.
 */
import type { Driver } from "../core/driver.js";
import { qualified, quoteIdent, quoteLiteral } from "../core/sql.js";
import type { TableInfo } from "../core/table.js";
import { inLocalTransaction } from "../local/transaction.js";
import { deleteMeta, getMeta, setMeta } from "../log/tables.js";

export interface DeferredIndex {
  name: string;
  /** pg_get_indexdef(): `CREATE INDEX name ON ...`. */
  def: string;
  comment: string | null;
  clustered: boolean;
}

function recordKey(t: TableInfo): string {
  return `pull_indexes:${JSON.stringify([t.schema, t.name])}`;
}

const DEFERRABLE = `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def,
  obj_description(i.indexrelid, 'pg_class') AS comment, i.indisclustered AS clustered
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = $1::text::regclass AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion
  AND i.indisvalid AND i.indisready AND i.indislive
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid AND d.deptype = 'e')
ORDER BY c.relname`;

/**
 * Drop the table's deferrable indexes (see above), recording them, in one local transaction; those a broken
 * copy left recorded stay recorded. Returns how many are deferred now.
 */
export async function deferIndexes(d: Driver, t: TableInfo): Promise<number> {
  return inLocalTransaction(d, async () => {
    const recorded = await recordedIndexes(d, t);
    const { rows } = await d.query<DeferredIndex>(DEFERRABLE, [t.sql], { prepare: false });
    const fresh = rows.filter((r) => !recorded.some((x) => x.name === r.name));
    if (fresh.length === 0) return recorded.length;
    const all = [...recorded, ...fresh];
    await setMeta(d, recordKey(t), JSON.stringify(all));
    await d.exec(fresh.map((r) => `DROP INDEX ${qualified(t.schema, r.name)}`).join("; "));
    return all.length;
  });
}

/** Build the indexes recorded for the table again (those missing) and forget them, in one local transaction. */
export async function restoreIndexes(d: Driver, t: TableInfo): Promise<void> {
  const recorded = await recordedIndexes(d, t);
  if (recorded.length === 0) return;
  await inLocalTransaction(d, async () => {
    for (const r of recorded) {
      const name = qualified(t.schema, r.name);
      const { rows } = await d.query<{ found: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS found`, [name], {
        prepare: false,
      });
      if (rows[0]!.found) continue; // built again meanwhile (the app's own schemaSQL, say)
      await d.exec(r.def);
      if (r.comment !== null) await d.exec(`COMMENT ON INDEX ${name} IS ${quoteLiteral(r.comment)}`);
      if (r.clustered) await d.exec(`ALTER TABLE ${t.sql} CLUSTER ON ${quoteIdent(r.name)}`);
    }
    await deleteMeta(d, recordKey(t));
  });
}

/** The indexes a copy deferred and has not built yet (a copy broke off). */
export async function recordedIndexes(d: Driver, t: TableInfo): Promise<DeferredIndex[]> {
  const value = await getMeta(d, recordKey(t));
  return value === undefined ? [] : (JSON.parse(value) as DeferredIndex[]);
}
