import net from "node:net";
import postgres from "postgres";

export type Sql = postgres.Sql<{ int8: number | bigint }>;

/** int8 as PGlite gives it: a number while it is exact, a bigint beyond 2^53. */
export function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

export interface RemoteOptions {
  /** Pool size. */
  max?: number;
  /** Server-side prepared statements; off for poolers in transaction mode (PgBouncer). */
  prepare?: boolean;
  connectTimeoutSeconds?: number;
}

/**
 * A postgres.js client for `url`. TCP sockets are opened with Nagle off: postgres.js writes some
 * protocol messages separately and Nagle's algorithm stalls each such exchange by ~40 ms.
 */
export function openRemote(url: string, options: RemoteOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 4,
    prepare: options.prepare ?? false,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    idle_timeout: 30,
    onnotice: () => {},
    types: {
      int8: { to: 20, from: [20], serialize: (x: number | bigint) => String(x), parse: parseInt8 },
    },
    socket: ({ host, port }: { host: string[]; port: number[] }) => tcpSocket(host[0] ?? "localhost", port[0] ?? 5432),
  } as postgres.Options<{ int8: postgres.PostgresType<number | bigint> }>) as unknown as Sql;
}

function tcpSocket(host: string, port: number): Promise<net.Socket> {
  if (host.startsWith("/")) {
    return connected(net.connect({ path: `${host}/.s.PGSQL.${port}` }));
  }
  return connected(net.connect({ host, port, noDelay: true }));
}

function connected(socket: net.Socket): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}
