import fs from "node:fs";

/** Where Linux keeps a memory file system every user may write (as /tmp: world-writable, sticky). */
const SHM = "/dev/shm";
/** Room the suite needs at its peak, with a margin (~360 MB measured: the shared server, the tests' databases). */
const NEEDED_BYTES = 2 ** 30;

/**
 * Puts the suite's temporary files (the shared PostgreSQL server's data directory, every test's databases and
 * directories, its child processes' files) on /dev/shm when TMPDIR is not set and the machine has a usable one:
 * tmpfs, not mounted noexec (as root the server's programs may be copied there), world-writable and sticky, with
 * `NEEDED_BYTES` free. The suite creates and deletes hundreds of thousands of files; on an ext4 /tmp, creating a
 * file after so many deletions costs ~0.2 ms of kernel time (its inode search skips recently deleted ones), ~6%
 * of the suite's CPU; on tmpfs ~0.03 ms. Returns the directory chosen, or undefined (TMPDIR left as it is).
 */
export function useMemoryTmpdir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env["TMPDIR"] || process.platform !== "linux") return undefined;
  try {
    if (!shmIsExecutableTmpfs()) return undefined;
    if ((fs.statSync(SHM).mode & 0o1777) !== 0o1777) return undefined;
    fs.accessSync(SHM, fs.constants.W_OK | fs.constants.X_OK);
    const room = fs.statfsSync(SHM);
    if (room.bavail * room.bsize < NEEDED_BYTES) return undefined;
  } catch {
    return undefined;
  }
  env["TMPDIR"] = SHM;
  return SHM;
}

/** Whether /dev/shm is mounted as a tmpfs without noexec (its last mount in /proc/mounts). */
export function shmIsExecutableTmpfs(): boolean {
  const mount = fs
    .readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .findLast((fields) => fields[1] === SHM);
  return mount?.[2] === "tmpfs" && !(mount[3] ?? "").split(",").includes("noexec");
}
