// Shared by the pull-*.test.ts files: a capturing client with a Puller built from its pieces (until the
// client exposes pull()), and row-by-row snapshots of both sides under the same session settings.
import type postgres from "postgres";
import { expect } from "vitest";
import type { Catalog } from "../src/capture/catalog.js";
import { type LocalAccess } from "../src/local/access.js";
import { CANONICAL_SETTINGS } from "../src/core/settings.js";
import { Ominipg, type ConnectOptions } from "../src/index.js";
import { Puller } from "../src/pull/puller.js";
import { Remote } from "../src/remote/remote.js";
import { type PullConflict, type PullerOptions, type PullProgress, type PullRejection } from "../src/pull/types.js";

export interface PullClient {
  db: Ominipg;
  puller: Puller;
  /** Pull, collecting what the hooks saw. */
  pull(): Promise<
    Awaited<ReturnType<Puller["pull"]>> & {
      seen: { conflicts: PullConflict[]; rejected: PullRejection[]; progress: PullProgress[] };
    }
  >;
  close(): Promise<void>;
}

export async function pullClient(
  url: string,
  schemaSQL: string[],
  options: PullerOptions = {},
  connect: Partial<ConnectOptions> = {},
): Promise<PullClient> {
  const db = await Ominipg.connect({
    syncUrl: url,
    schemaSQL,
    ...connect,
    sync: { retry: { attempts: 1 }, ...connect.sync },
  });
  // Test-only: the pieces the lead will wire inside Ominipg (protected members, reached through a cast).
  const inner = db as unknown as { local: LocalAccess; catalog(): Promise<Catalog> };
  // Let the client's own remote set-up (schemaSQL, the ledger) finish before the second Remote is used.
  await db.sync();
  const remote = new Remote(url, schemaSQL, true, 2, { attempts: 3, baseDelayMs: 200, maxDelayMs: 5000 });
  const puller = new Puller(inner.local, () => inner.catalog(), remote, options);
  return {
    db,
    puller,
    async pull() {
      const seen = { conflicts: [] as PullConflict[], rejected: [] as PullRejection[], progress: [] as PullProgress[] };
      const result = await puller.pull({
        progress: (p) => seen.progress.push(p),
        conflict: (c) => seen.conflicts.push(c),
        rejected: (r) => seen.rejected.push(r),
      });
      return { ...result, seen };
    },
    async close() {
      await db.close();
      await remote.close();
    },
  };
}

const SETTINGS = CANONICAL_SETTINGS.split(";").map((s) => s.trim());

/** Every row of each table as jsonb text, ordered by `order`, read under the pull's canonical settings. */
export async function localRows(db: Ominipg, tables: Record<string, string>): Promise<Record<string, string[]>> {
  return db.transaction(async (tx) => {
    for (const s of SETTINGS) await tx.query(s);
    const out: Record<string, string[]> = {};
    for (const [t, order] of Object.entries(tables)) {
      out[t] = (
        await tx.query<{ j: string }>(`SELECT to_jsonb(r)::text AS j FROM ${t} AS r ORDER BY ${order}`)
      ).rows.map((r) => r.j);
    }
    return out;
  });
}

export async function remoteRows(sql: postgres.Sql, tables: Record<string, string>): Promise<Record<string, string[]>> {
  return sql.begin(async (tx) => {
    await tx.unsafe(CANONICAL_SETTINGS).simple();
    const out: Record<string, string[]> = {};
    for (const [t, order] of Object.entries(tables)) {
      out[t] = (await tx.unsafe<{ j: string }[]>(`SELECT to_jsonb(r)::text AS j FROM ${t} AS r ORDER BY ${order}`)).map(
        (r) => r.j,
      );
    }
    return out;
  }) as Promise<Record<string, string[]>>;
}

export async function expectSameRows(db: Ominipg, sql: postgres.Sql, tables: Record<string, string>): Promise<void> {
  const [l, r] = [await localRows(db, tables), await remoteRows(sql, tables)];
  for (const t of Object.keys(tables)) expect(l[t], t).toEqual(r[t]);
}

export async function queueLength(db: Ominipg): Promise<number> {
  return Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`)).rows[0]!.n);
}

/**
 * A remote database whose sessions default to settings that change how values print (time zone, date style,
 * interval style, float digits, bytea format): the pull must not depend on the server's defaults.
 */
export async function makeRemoteHostile(sql: postgres.Sql, dbName: string): Promise<void> {
  await sql
    .unsafe(
      `ALTER DATABASE ${dbName} SET TimeZone = 'America/New_York'; ALTER DATABASE ${dbName} SET DateStyle = 'SQL, DMY';
     ALTER DATABASE ${dbName} SET IntervalStyle = 'sql_standard'; ALTER DATABASE ${dbName} SET extra_float_digits = 0;
     ALTER DATABASE ${dbName} SET bytea_output = 'escape'`,
    )
    .simple();
}

export function dbNameOf(url: string): string {
  return new URL(url).pathname.slice(1);
}
