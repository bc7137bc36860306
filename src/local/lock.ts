import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalDatabaseError } from "../core/errors.js";

const heldHere = new Set<string>();

export interface DirLock {
  release(): void;
}

/**
 * An exclusive lock on a PGlite data directory: a `<dir>.lock` file beside it holding the owner's pid.
 * PGlite is one connection in one process; two processes writing one directory corrupt it.
 * A lock left by a dead process is taken over.
 */
export function lockDirectory(dataDir: string): DirLock {
  const lockPath = `${path.resolve(dataDir)}.lock`;
  if (heldHere.has(lockPath)) {
    throw new LocalDatabaseError(
      "LOCAL_LOCKED",
      `the data directory ${dataDir} is already open in this process (pid ${process.pid})`,
    );
  }
  const owner = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lockPath, owner, { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw lockFailure(dataDir, lockPath, err);
      const holder = readOwner(lockPath);
      if (holder && holder.host === os.hostname() && isAlive(holder.pid) && holder.pid !== process.pid) {
        throw new LocalDatabaseError(
          "LOCAL_LOCKED",
          `the data directory ${dataDir} is in use by process ${holder.pid} (lock file ${lockPath}); close that client first`,
        );
      }
      if (holder && holder.host !== os.hostname()) {
        throw new LocalDatabaseError(
          "LOCAL_LOCKED",
          `the data directory ${dataDir} is locked by process ${holder.pid} on host ${holder.host} (lock file ${lockPath})`,
        );
      }
      // Stale: its process is gone (or it is unreadable, a crash mid-write). Take it over.
      fs.rmSync(lockPath, { force: true });
    }
  }
  heldHere.add(lockPath);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      heldHere.delete(lockPath);
      if (readOwner(lockPath)?.pid === process.pid) fs.rmSync(lockPath, { force: true });
    },
  };
}

function readOwner(lockPath: string): { pid: number; host: string } | undefined {
  try {
    const data = JSON.parse(fs.readFileSync(lockPath, "utf8")) as { pid?: unknown; host?: unknown };
    return typeof data.pid === "number" && typeof data.host === "string"
      ? { pid: data.pid, host: data.host }
      : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function lockFailure(dataDir: string, lockPath: string, cause: unknown): LocalDatabaseError {
  return new LocalDatabaseError("LOCAL_LOCKED", `could not lock the data directory ${dataDir} (${lockPath})`, {
    cause,
  });
}
