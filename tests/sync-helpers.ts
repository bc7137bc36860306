// Small shared helpers for the sync test files (tests/sync-*.test.ts). Everything runs against the real
// PostgreSQL server of the harness; nothing here mocks PostgreSQL.
import net from "node:net";
import type postgres from "postgres";
import { expect } from "vitest";
import { Ominipg, type ConnectOptions } from "../src/index.js";

/** A local in-memory Ominipg (fast start from the template) syncing to `syncUrl`. */
export async function openSynced(
  syncUrl: string,
  schemaSQL: string[],
  extra: Partial<ConnectOptions> = {},
): Promise<Ominipg> {
  const db = await Ominipg.connect({ syncUrl, schemaSQL, ...extra });
  // Fixed session settings so that to_jsonb() text is comparable with the remote's.
  await db.query(`SET TimeZone TO 'UTC'`);
  return db;
}

export async function queued(db: Ominipg): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`);
  return rows[0]!.n;
}

/** Every row of `table` as to_jsonb text, ordered by `orderBy`, on the local side. */
export async function localRows(db: Ominipg, table: string, orderBy: string): Promise<string[]> {
  const { rows } = await db.query<{ r: string }>(
    `SELECT to_jsonb(t)::text AS r FROM ${table} AS t ORDER BY ${orderBy}`,
  );
  return rows.map((r) => r.r);
}

/** The same on the remote side, in a transaction with the same session settings as the local side. */
export async function remoteRows(sql: postgres.Sql, table: string, orderBy: string): Promise<string[]> {
  const rows = await sql.begin(async (tx) => {
    await tx.unsafe(`SET LOCAL TimeZone TO 'UTC'`);
    return tx.unsafe<{ r: string }[]>(`SELECT to_jsonb(t)::text AS r FROM ${table} AS t ORDER BY ${orderBy}`);
  });
  return rows.map((r) => r.r);
}

/** Remote rows equal local rows, row by row (to_jsonb of each row, ordered by the key). */
export async function expectSameRows(db: Ominipg, sql: postgres.Sql, tables: Record<string, string>): Promise<void> {
  for (const [table, orderBy] of Object.entries(tables)) {
    const local = await localRows(db, table, orderBy);
    const remote = await remoteRows(sql, table, orderBy);
    expect(remote, `remote ${table} equals local ${table}`).toEqual(local);
  }
}

/** The remote ledger of applied batches: empty after every successful sync. */
/**
 * Sessions of `sql`'s database waiting for a lock (the harness's server is shared with other test files; a row lock
 * wait has no database in pg_locks, its session has one).
 */
export async function lockWaits(sql: postgres.Sql): Promise<number> {
  const [r] = await sql`SELECT count(*)::int AS n FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
                         WHERE NOT l.granted AND a.datname = current_database()`;
  return r!.n as number;
}

export async function ledgerRows(sql: postgres.Sql): Promise<number> {
  const rows = await sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM _ominipg_ledger`);
  return rows[0]!.n;
}

export interface Proxy {
  /** A copy of `targetUrl` that goes through the proxy. */
  url: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stop listening and cut every open connection: the server looks down. */
  close(): Promise<void>;
  /** Listen again on the same port. */
  open(): Promise<void>;
  /** Cut every open connection (the server stays reachable). */
  drop(): void;
  /** Accept and immediately cut the next `n` connections. */
  refuseNext(n: number): void;
}

/**
 * A loopback TCP proxy to the PostgreSQL server of `targetUrl`, to make the remote unreachable and
 * reachable again (or drop connections) without touching the shared server.
 */
export async function startProxy(targetUrl: string): Promise<Proxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let refuse = 0;
  let port = 0;
  let server: net.Server | undefined;
  const onConnection = (client: net.Socket) => {
    accepted++;
    if (refuse > 0) {
      refuse--;
      client.destroy();
      return;
    }
    const upstream = connectUpstream(client, target, sockets);
    client.pipe(upstream).pipe(client);
  };
  const proxy: Proxy = {
    url: "",
    get accepted() {
      return accepted;
    },
    open: () =>
      new Promise<void>((resolve, reject) => {
        server = net.createServer(onConnection);
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => {
          port = (server!.address() as net.AddressInfo).port;
          resolve();
        });
      }),
    close: async () => {
      const s = server;
      server = undefined;
      proxy.drop();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    drop: () => {
      for (const s of sockets) s.destroy();
    },
    refuseNext: (n) => {
      refuse = n;
    },
  };
  await proxy.open();
  const url = new URL(targetUrl);
  url.port = String(port);
  proxy.url = url.href;
  return proxy;
}

/**
 * A connection from a proxy to the server of `target` for the accepted `client`: both sockets are kept in
 * `sockets` (to be cut) and close together. The caller pipes them.
 */
export function connectUpstream(client: net.Socket, target: URL, sockets: Set<net.Socket>): net.Socket {
  const upstream = net.connect({ host: target.hostname, port: Number(target.port || 5432), noDelay: true });
  client.setNoDelay(true);
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => {
      sockets.delete(s);
      client.destroy();
      upstream.destroy();
    });
  }
  return upstream;
}

export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
