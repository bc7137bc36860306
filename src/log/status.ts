import type { Driver } from "../core/driver.js";
import { META_TABLE, QUEUE_TABLE } from "./tables.js";

/** What the log says for status(): the client id, pending changes per table and priority, the last sync and pull. */
export interface LogStatus {
  clientId: string | null;
  pending: { table: string; priority: number; count: number }[];
  /** The last successful sync and pull as stored (JSON), if any. */
  lastSync: unknown;
  lastPull: unknown;
}

export async function readLogStatus(d: Driver): Promise<LogStatus> {
  // A directory opened without syncUrl may still hold a log from runs that had one.
  const { rows: present } = await d.query<{ ok: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ok`,
    [`public.${META_TABLE}`, `public.${QUEUE_TABLE}`],
    { prepare: false },
  );
  if (present[0]?.ok !== true) return { clientId: null, pending: [], lastSync: null, lastPull: null };
  const meta = (
    await d.query<{ key: string; value: string }>(`SELECT key, value FROM ${META_TABLE}`, [], { prepare: false })
  ).rows;
  const queued = (
    await d.query<{ s: string; t: string; p: number; n: number }>(
      `SELECT schema_name AS s, table_name AS t, priority AS p, count(*)::int AS n FROM ${QUEUE_TABLE} GROUP BY 1, 2, 3 ORDER BY 3 DESC, 1, 2`,
      [],
      { prepare: false },
    )
  ).rows;
  const get = (k: string) => meta.find((m) => m.key === k)?.value;
  const json = (k: string) => (get(k) ? (JSON.parse(get(k)!) as unknown) : null);
  return {
    clientId: get("client_id") ?? null,
    pending: queued.map((q) => ({ table: `${q.s}.${q.t}`, priority: q.p, count: q.n })),
    lastSync: json("last_sync"),
    lastPull: json("last_pull"),
  };
}
