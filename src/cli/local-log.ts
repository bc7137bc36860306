import type { Ominipg, Status } from "../index.js";

export type LogSummary = Pick<Status, "clientId" | "pending" | "lastSync"> & { capturing: boolean };

/**
 * Pending changes, client id and last sync read straight from the local log tables: `status()` reports
 * them only for a client opened with a remote, and `ominipg status` also works without one.
 */
export async function readLocalLog(db: Ominipg): Promise<LogSummary> {
  const found = await db.query<{ queue: string | null; meta: string | null }>(
    `SELECT to_regclass('_sync_queue')::text AS queue, to_regclass('_ominipg_meta')::text AS meta`,
  );
  const tables = found.rows[0];
  if (!tables?.queue || !tables.meta) return { clientId: null, pending: [], lastSync: null, capturing: false };
  const queued = await db.query<{ s: string; t: string; p: number; n: number }>(
    `SELECT schema_name AS s, table_name AS t, priority AS p, count(*)::int AS n FROM _sync_queue GROUP BY 1, 2, 3 ORDER BY 3 DESC, 1, 2`,
  );
  const meta = await db.query<{ key: string; value: string }>(`SELECT key, value FROM _ominipg_meta WHERE key IN ('client_id', 'last_sync')`);
  const get = (key: string) => meta.rows.find((m) => m.key === key)?.value;
  const lastSync = get("last_sync");
  return {
    clientId: get("client_id") ?? null,
    pending: queued.rows.map((q) => ({ table: `${q.s}.${q.t}`, priority: q.p, count: q.n })),
    lastSync: lastSync ? (JSON.parse(lastSync) as Status["lastSync"]) : null,
    capturing: true,
  };
}
