import fs from "node:fs";
import net from "node:net";
import { Duplex } from "node:stream";
import postgres from "postgres";
import { credentialParams, tlsFromUrl } from "../core/url.js";

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
  /**
   * The driver's array-type catalog query on each new connection (arrays in results and parameters as JS
   * arrays). Off for sync (see openRemote); direct mode, which returns arrays, turns it on.
   */
  fetchTypes?: boolean;
}

/**
 * A postgres.js client for `url`. TCP sockets are opened with Nagle off: postgres.js writes some
 * protocol messages separately and Nagle's algorithm stalls each such exchange by ~40 ms.
 */
export function openRemote(url: string, options: RemoteOptions = {}): Sql {
  // sslmode/sslrootcert as libpq reads them (postgres.js reads no CA file, and our socket factory hides
  // the host name from its verify-full); validated at connect() (options.ts).
  const tls = tlsFromUrl(url, (file) => fs.readFileSync(file));
  const { url: plain, ...credentials } = credentialParams(tls.url);
  const { url: first, hosts } = oneHost(plain);
  const guard: StartupGuard = { failures: 0, hosts, next: 0 };
  return postgres(first, {
    ...credentials,
    ...(tls.ssl === undefined ? {} : { ssl: tls.ssl }),
    max: options.max ?? 4,
    prepare: options.prepare ?? false,
    // libpq's connect_timeout (the URL's, else PGCONNECT_TIMEOUT), which postgres.js reads itself; else 10 s.
    ...(/[?&]connect_timeout=/.test(first) || process.env.PGCONNECT_TIMEOUT ? {} : { connect_timeout: 10 }),
    // No catalog query of the driver's own on each new connection: a connection lost under it rejected a
    // promise nobody awaits (an unhandledRejection: the app's process dies, porsager/postgres#1192) and
    // wedged the pool (syncs hung until connect_timeout). Ominipg sends arrays as text and reads none.
    fetch_types: options.fetchTypes ?? false,
    idle_timeout: 30,
    // No reconnect back-off inside the driver: its own grows to 20 s after a long outage and would delay the
    // first sync after the server is back. The syncer retries with its own capped back-off.
    backoff: () => 0,
    onnotice: () => {},
    types: {
      int8: { to: 20, from: [20], serialize: (x: number | bigint) => String(x), parse: parseInt8 },
    },
    socket: ({ host, port }: { host: string[]; port: number[] }) => {
      const target = guard.hosts[guard.next % guard.hosts.length];
      return tcpSocket(target?.host ?? host[0] ?? "localhost", target?.port ?? port[0] ?? 5432, guard);
    },
  } as postgres.Options<{ int8: postgres.PostgresType<number | bigint> }>) as unknown as Sql;
}

/** Consecutive connections the server closed before sending a single byte. */
interface StartupGuard {
  failures: number;
  /** The URL's hosts (libpq's "h1:5432,h2:5433"), and the one to try next: the next one after a failed connect. */
  hosts: { host: string; port: number }[];
  next: number;
}

/**
 * A URL with several hosts as postgres.js gets it: the first host only, with the list for the socket factory,
 * which moves on to the next host when one cannot be reached (the retry policy tries again). postgres.js's own
 * failover never rejects a query while a next host is listed: with every host down, a sync hung for ever.
 */
function oneHost(url: string): { url: string; hosts: { host: string; port: number }[] } {
  const m = /^([a-z][a-z0-9+.-]*:\/\/(?:[^/?#]*@)?)([^/?#]*)(.*)$/is.exec(url);
  if (!m || !m[2]!.includes(",")) return { url, hosts: [] };
  const hosts = m[2]!.split(",").map((h) => {
    const v6 = /^\[([^\]]*)\](?::(\d+))?$/.exec(h);
    const [name, port] = v6 ? [v6[1]!, v6[2]] : [h.split(":")[0]!, h.split(":")[1]];
    return { host: decodeURIComponent(name), port: Number(port || 5432) };
  });
  return { url: m[1]! + m[2]!.split(",")[0]! + m[3]!, hosts };
}

/** Closed during start-up this many times in a row: the next attempt fails at once (the syncer retries, with back-off). */
const STARTUP_FAILURES = 1;

/**
 * The socket for one connection attempt, returned at once (writes wait for the connection): a failure to
 * connect then reaches postgres.js as the socket's 'error' and 'close' events, its normal path, which
 * rejects the waiting query and frees the pool slot. (A factory that rejects instead, as this one did,
 * leaves the slot in postgres.js's "connecting" queue for ever: after `max` failed attempts every query
 * hung, so a sync after an outage never ran.)
 *
 * postgres.js also reconnects at once, without end and without its connect_timeout, when a connection
 * closes during start-up (before the server answers, or after an answer that is not PostgreSQL's): a proxy or
 * load balancer that accepts connections while the database behind it is down, or another service on the port,
 * made queries hang while spinning the CPU. After such a connection,
 * the next attempt fails at once with ECONNRESET (retryable), so that the caller backs off.
 */
function tcpSocket(host: string, port: number, guard: StartupGuard): net.Socket {
  if (guard.failures >= STARTUP_FAILURES) {
    guard.failures = 0;
    // A stand-in that takes postgres.js's first write and then fails. Not earlier: postgres.js buffers that
    // write and flushes it from a setImmediate, and a connection that closes before the flush keeps the
    // stale buffer and timer, so that its next start-up message is never sent (CONNECT_TIMEOUT 10 s later).
    const socket = new Duplex({ read() {}, write: (_chunk, _encoding, done) => done() });
    const err = Object.assign(new Error(`the last connection to ${host}:${port} ended before the server answered`), {
      code: "ECONNRESET",
    });
    setImmediate(() => setImmediate(() => socket.destroy(err)));
    return Object.assign(socket, { host, port }) as unknown as net.Socket;
  }
  const socket = host.startsWith("/")
    ? net.connect({ path: `${host}/.s.PGSQL.${port}` })
    : net.connect({ host, port, noDelay: true });
  // The address postgres.js puts in its own errors' messages (it sets these only on sockets it opens itself).
  Object.assign(socket, { host, port });
  socket.once("error", () => {
    if (socket.bytesRead === 0 && !socket.readyState.startsWith("open")) guard.next++;
  });
  socket.once("connect", () => {
    // What answers first tells a PostgreSQL server from something else on the port (an HTTP proxy answering 400):
    // a start-up answered otherwise, or not at all, failed.
    let first: number | undefined;
    socket.once("data", (chunk: Buffer) => (first = chunk[0]));
    socket.once("close", () => {
      guard.failures = first === undefined || !STARTUP_ANSWERS.has(first) ? guard.failures + 1 : 0;
    });
  });
  return socket;
}

/** The first byte of a PostgreSQL server's answer to a start-up: R, E, v (messages), S, N (to an SSL request). */
const STARTUP_ANSWERS = new Set([0x52, 0x45, 0x76, 0x53, 0x4e]);

/**
 * postgres.js names its own connection failures in a code and an address ("write CONNECT_TIMEOUT 10.0.0.5:5432"):
 * these in words, the code kept. Any other failure's message as it is.
 */
const DRIVER_FAILURES: Record<string, (where: string) => string> = {
  CONNECT_TIMEOUT: (where) => `no answer from ${where} within the connect timeout`,
  CONNECTION_CLOSED: (where) => `the connection to ${where} was closed`,
  CONNECTION_DESTROYED: (where) => `the connection to ${where} was dropped`,
  CONNECTION_ENDED: (where) => `the connection to ${where} had ended`,
};

export function errorText(err: unknown): string {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof message !== "string") return String(err);
  const words = typeof code === "string" ? DRIVER_FAILURES[code] : undefined;
  const prefix = `write ${String(code)} `;
  return words && message.startsWith(prefix) ? `${words(message.slice(prefix.length))} (${String(code)})` : message;
}

/** Error codes that mean the connection itself is gone (postgres.js's, Node's, and SQLSTATE 08xxx / shutdowns). */
const CONNECTION_LOST =
  /^(CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|CONNECT_TIMEOUT|ECONNRESET|EPIPE|ETIMEDOUT|08...|57P0[1-3])$/;

/**
 * Run `fn` in a transaction (postgres.js's sql.begin()), made safe against a lost connection. After losing
 * the connection under a query, sql.begin() writes its ROLLBACK to the dead socket, which throws a TypeError
 * from a timer: an uncaught exception that takes the whole process down. So `fn`'s failure from a lost
 * connection is not passed on to it: sql.begin() has already rejected with that error through its own close
 * handler, and `fn`'s promise is left pending (the server rolls back by itself). COMMIT is sent from `fn`
 * for the same reason, together with a BEGIN of an empty transaction for sql.begin()'s own COMMIT to end (a
 * COMMIT outside a transaction would fill the server's log with "there is no transaction in progress").
 * (sql.reserve() is no way out: one that fails to connect leaves a stale request in the pool's queue that
 * later swallows a connection for good, so that every query waits for ever.)
 */
export async function transaction<T>(
  sql: Sql,
  fn: (tx: Sql) => Promise<T>,
  mode: "" | "ISOLATION LEVEL REPEATABLE READ READ ONLY" = "",
): Promise<T> {
  let settled = false;
  const run = sql.begin(mode, async (tx) => {
    try {
      const value = await fn(tx as unknown as Sql);
      await tx.unsafe("COMMIT; BEGIN").simple();
      return value;
    } catch (err) {
      if (CONNECTION_LOST.test(String((err as { code?: unknown })?.code ?? ""))) {
        await new Promise((resolve) => setImmediate(resolve)); // let postgres.js's close handler run
        if (settled) return new Promise<never>(() => {});
      }
      throw err;
    }
  });
  try {
    return (await run) as T;
  } finally {
    settled = true;
  }
}
