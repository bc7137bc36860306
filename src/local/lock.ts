import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalDatabaseError } from "../core/errors.js";
import type { LocalAccess } from "./access.js";
import { startCheckpoints } from "./checkpoint.js";
import { startHeartbeat } from "./heartbeat.js";
import { checkableHere, look, sameMachine, stillRuns, thisProcess, type LockHolder, type Seen } from "./lock-holder.js";
import { closeOnSignal } from "./signals.js";

const heldHere = new Set<string>();

/** The hold on an open data directory: its lock file and heartbeat, checkpoints, the close on signals. */
export interface DirLock {
  /** Once the client is built: checkpoint through `access`; with `close`, close on SIGTERM/SIGINT. */
  attach(access: LocalAccess, close: (() => Promise<void>) | undefined): void;
  /** Stops all of it and deletes the lock file (if it is still this lock). Idempotent. */
  release(): void;
}

export interface LockTuning {
  /** The holder refreshes the lock file's mtime this often (from a worker thread). */
  heartbeatMs: number;
  /** A lock whose holder cannot be checked here and that was not refreshed for this long is stale. */
  staleMs: number;
}

export const LOCK_TIMING: LockTuning = { heartbeatMs: 1000, staleMs: 10_000 };

/**
 * An exclusive lock on a PGlite data directory: a `<dir>.lock` file beside it. PGlite is one connection in
 * one process; two processes writing one directory corrupt it.
 *
 * The file is created complete and atomically (written aside, then hard-linked into place). A lock already
 * there is judged: a holder on this machine in this pid namespace by its pid and start time, at once; one in
 * another container or on another machine (a volume they share) by its heartbeat (see `judge`). A stale lock
 * is taken over by exactly one process (see `takeOver`). When the holder cannot be judged, LOCAL_LOCKED says
 * which file to delete, and when.
 */
export async function lockDirectory(dataDir: string, tuning: LockTuning = LOCK_TIMING): Promise<DirLock> {
  const lockPath = `${path.resolve(dataDir)}.lock`;
  if (heldHere.has(lockPath)) {
    throw new LocalDatabaseError(
      "LOCAL_LOCKED",
      `the data directory ${dataDir} is already open in this process (pid ${process.pid}): close that client first`,
    );
  }
  heldHere.add(lockPath);
  const me = thisProcess(tuning);
  const content = JSON.stringify(me);
  let ino: bigint;
  try {
    ino = await acquire(dataDir, lockPath, me, content);
  } catch (err) {
    heldHere.delete(lockPath);
    throw err;
  }
  return holdLock(lockPath, me.token!, ino, tuning);
}

async function acquire(dataDir: string, lockPath: string, me: LockHolder, content: string): Promise<bigint> {
  const aside = `${lockPath}.${me.token}.tmp`;
  try {
    for (let round = 0; round < 20; round++) {
      if (!fs.existsSync(aside)) fs.writeFileSync(aside, content, { flag: "wx" });
      if (linkInPlace(aside, lockPath)) return fs.statSync(lockPath, { bigint: true }).ino;
      const seen = look(lockPath);
      if (!seen) continue; // released meanwhile
      const verdict = await judge(seen, lockPath, me);
      if (verdict === "changed") continue;
      if (verdict !== "stale") throw locked(dataDir, lockPath, verdict);
      const ino = fs.statSync(aside, { bigint: true }).ino;
      if (await takeOver(dataDir, lockPath, seen, aside, me)) return ino;
    }
    throw new LocalDatabaseError("LOCAL_LOCKED", `could not lock the data directory ${dataDir} (${lockPath})`);
  } catch (cause) {
    if (cause instanceof LocalDatabaseError) throw cause;
    // The lock file goes beside the directory: a volume mounted as the directory itself under a read-only parent
    // leaves no room for it.
    const why = cause instanceof Error ? `: ${cause.message}` : "";
    const hint = ["EROFS", "EACCES", "EPERM"].includes((cause as { code?: string }).code ?? "")
      ? " (the lock file is made beside the directory: use a directory inside a writable one)"
      : "";
    const message = `could not lock the data directory ${dataDir} (${lockPath})${why}${hint}`;
    throw new LocalDatabaseError("LOCAL_LOCKED", message, { cause });
  } finally {
    try {
      fs.rmSync(aside, { force: true });
    } catch {
      // where it could not be made (a file in the way), nothing to remove; the error above says why
    }
  }
}

/**
 * Puts `aside` at `target` if nothing is there: link(2), atomic (on network file systems too), so a reader
 * never sees a lock file half written. Where there are no hard links, an exclusive create and a write.
 */
function linkInPlace(aside: string, target: string): boolean {
  try {
    fs.linkSync(aside, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw err;
  }
  try {
    fs.copyFileSync(aside, target, fs.constants.COPYFILE_EXCL);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** The same lock instance: same inode and same content (its token); an inode number alone can be reused. */
function same(a: Seen | undefined, b: Seen): boolean {
  return a !== undefined && a.ino === b.ino && a.raw === b.raw;
}

type Verdict =
  | "stale"
  | "changed"
  | { alive: LockHolder; refreshedMsAgo?: number }
  | { unknown: "unreadable" | "old-version"; holder?: LockHolder; detail?: string };

/**
 * Whether the lock's holder still runs.
 * - On this machine and in this pid namespace (Linux: same boot id and /proc/self/ns/pid; elsewhere: the
 *   same host name): its pid and start time say it, at once (a pid reused by another process does not count).
 * - Elsewhere (another container, whose pids are not ours; another machine on a shared volume): by its
 *   heartbeat. On the same machine (one clock) a lock not refreshed for the holder's `staleMs` is stale at
 *   once; otherwise it is watched until it is refreshed (alive) or `staleMs` pass without (stale), which
 *   needs no clock shared with the holder.
 * - A lock that is unreadable, or written by an Ominipg without a heartbeat on another host: undecidable.
 */
async function judge(first: Seen, lockPath: string, me: LockHolder): Promise<Verdict> {
  let seen = first;
  if (!seen.holder) {
    // Being written by a process on a file system without hard links? Give it a moment.
    await sleep(200);
    if (!same(look(lockPath), seen)) return "changed";
    return { unknown: "unreadable", detail: seen.raw.trim() === "" ? "empty" : "not an Ominipg lock" };
  }
  const holder = seen.holder;
  if (checkableHere(holder, me)) return stillRuns(holder, me) ? { alive: holder } : "stale";
  if (holder.token === undefined || holder.staleMs === undefined)
    return { unknown: "old-version", holder, detail: seen.raw };
  const staleMs = holder.staleMs;
  const started = Date.now();
  const pollMs = Math.max(20, Math.min(250, (holder.heartbeatMs ?? staleMs) / 4));
  for (;;) {
    const quietFor = sameMachine(holder, me) ? Date.now() - seen.mtimeMs : Date.now() - started;
    if (quietFor >= staleMs) return "stale";
    await sleep(Math.min(pollMs, staleMs - quietFor + 1));
    const now = look(lockPath);
    if (!now || !same(now, seen)) return "changed";
    if (now.mtimeMs !== seen.mtimeMs) return { alive: holder, refreshedMsAgo: Math.max(0, Date.now() - now.mtimeMs) };
    seen = now;
  }
}

/**
 * Replace the stale lock `seen` with ours: exactly one of the processes that judged it stale succeeds.
 * The right to replace it is a claim file named after that lock instance, created exclusively; its winner
 * checks the lock is still that instance and renames its own file over it (atomic). A claim is held for
 * an instant; a claim that stays (its process died within that instant) is reported with its remedy.
 */
async function takeOver(dataDir: string, lockPath: string, seen: Seen, aside: string, me: LockHolder) {
  const claim = `${lockPath}.takeover-${seen.holder?.token ?? `ino${seen.ino}`}`;
  const claimAside = `${claim}.${me.token}.tmp`;
  fs.writeFileSync(claimAside, JSON.stringify(me), { flag: "wx" });
  let claimed: boolean;
  try {
    claimed = linkInPlace(claimAside, claim);
  } finally {
    fs.rmSync(claimAside, { force: true });
  }
  if (!claimed) {
    // Another process is taking this instance over; it ends in an instant, and we judge what it left.
    const until = Date.now() + (seen.holder?.staleMs ?? LOCK_TIMING.staleMs);
    while (Date.now() < until) {
      await sleep(50);
      if (!same(look(lockPath), seen) || !fs.existsSync(claim)) return false;
    }
    throw new LocalDatabaseError(
      "LOCAL_LOCKED",
      `the data directory ${dataDir} has a stale lock whose takeover did not finish (the process taking it over ` +
        `stopped; claim file ${claim}). If no process is opening the directory now, delete both files and open ` +
        `again: rm ${quote(claim)} ${quote(lockPath)}`,
    );
  }
  try {
    if (!same(look(lockPath), seen)) return false; // taken over (and perhaps released) already
    fs.renameSync(aside, lockPath);
    return true;
  } finally {
    fs.rmSync(claim, { force: true });
  }
}

function holdLock(lockPath: string, token: string, ino: bigint, tuning: LockTuning): DirLock {
  let released = false;
  const stops: (() => void)[] = [];
  stops.push(
    startHeartbeat(lockPath, ino, tuning.heartbeatMs, (reason) => {
      if (released) return;
      process.emitWarning(
        `Ominipg no longer holds the lock ${lockPath} (${reason}): another process may open the directory. ` +
          `Close this client.`,
        { code: "OMINIPG_LOCK_LOST" },
      );
    }),
  );
  return {
    attach(access, close) {
      if (released) return;
      stops.push(startCheckpoints(access));
      if (close) stops.push(closeOnSignal(close));
    },
    release() {
      if (released) return;
      released = true;
      for (const stop of stops.splice(0)) stop();
      heldHere.delete(lockPath);
      try {
        const now = look(lockPath);
        if (now && now.ino === ino && now.holder?.token === token) fs.rmSync(lockPath, { force: true });
      } catch {
        // Unreadable now: not ours to delete.
      }
    },
  };
}

function locked(dataDir: string, lockPath: string, verdict: Exclude<Verdict, "stale" | "changed">) {
  const rm = `rm ${quote(lockPath)}`;
  if ("alive" in verdict) {
    const h = verdict.alive;
    if (verdict.refreshedMsAgo === undefined) {
      const who = h.pid === process.pid ? "this process (another thread)" : `process ${h.pid}`;
      return new LocalDatabaseError(
        "LOCAL_LOCKED",
        `the data directory ${dataDir} is in use by ${who} (lock file ${lockPath}); close that client first`,
      );
    }
    return new LocalDatabaseError(
      "LOCAL_LOCKED",
      `the data directory ${dataDir} is in use by process ${h.pid} on host ${h.host} (another container or machine): ` +
        `its lock ${lockPath} was refreshed ${seconds(verdict.refreshedMsAgo)} ago (a running client refreshes it ` +
        `every ${seconds(h.heartbeatMs ?? 0)}). Close that client or stop that process first; once it stops, its ` +
        `lock is taken over ${seconds(h.staleMs ?? 0)} after its last refresh`,
    );
  }
  if (verdict.unknown === "unreadable") {
    return new LocalDatabaseError(
      "LOCAL_LOCKED",
      `the data directory ${dataDir} is locked by a lock file that cannot be read (${lockPath}: ${verdict.detail}), ` +
        `so whether its owner still runs cannot be checked. If no process has the directory open, delete the lock ` +
        `file and open again: ${rm}`,
    );
  }
  const h = verdict.holder!;
  return new LocalDatabaseError(
    "LOCAL_LOCKED",
    `the data directory ${dataDir} is locked by process ${h.pid} on host ${h.host}${h.since ? ` since ${h.since}` : ""} ` +
      `(lock file ${lockPath}, written by an Ominipg version that does not refresh its lock), and from this ` +
      `host it cannot be checked whether that process still runs. If no process on ${h.host} has the directory ` +
      `open (for example, that container is gone), delete the lock file and open again: ${rm}`,
  );
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function quote(file: string): string {
  return `'${file.replaceAll("'", `'\\''`)}'`;
}
