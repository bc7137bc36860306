import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";

/**
 * What a `<dir>.lock` file says about the process holding the directory. Version 2 adds what lets another
 * process decide whether that holder still runs: the machine (Linux boot id), the pid namespace (a container
 * has its own), the process start time (a reused pid has another) and the heartbeat it promises.
 */
export interface LockHolder {
  /** Unique per lock instance: what a takeover and a release compare. Absent in a version 1 lock. */
  token?: string;
  pid: number;
  host: string;
  /** Linux: /proc/sys/kernel/random/boot_id of the holder's kernel (shared by all its containers). */
  bootId?: string;
  /** Linux: the holder's pid namespace (readlink /proc/self/ns/pid); its pid means something only in it. */
  pidNs?: string;
  /** Linux: the holder's start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  start?: string;
  since?: string;
  /** The holder refreshes the lock file's mtime every `heartbeatMs`; not refreshed for `staleMs`, it is stale. */
  heartbeatMs?: number;
  staleMs?: number;
}

/** A look at the lock file: what it says (undefined when unreadable), its inode and its mtime. */
export interface Seen {
  holder: LockHolder | undefined;
  raw: string;
  ino: bigint;
  mtimeMs: number;
}

let self: Omit<LockHolder, "token" | "since" | "heartbeatMs" | "staleMs"> | undefined;

/** This process, as a lock file records it. */
export function thisProcess(tuning: { heartbeatMs: number; staleMs: number }): LockHolder {
  self ??= {
    pid: process.pid,
    host: os.hostname(),
    ...optional("bootId", readTrimmed("/proc/sys/kernel/random/boot_id")),
    ...optional("pidNs", readLink("/proc/self/ns/pid")),
    ...optional("start", startTimeOf("self")),
  };
  return { token: randomUUID(), ...self, since: new Date().toISOString(), ...tuning };
}

/** Opens and reads the lock file (an open revalidates a network file system's cached attributes). */
export function look(lockPath: string): Seen | undefined {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    const raw = fs.readFileSync(fd, "utf8");
    return { holder: parseHolder(raw), raw, ino: stat.ino, mtimeMs: Number(stat.mtimeNs / 1_000_000n) };
  } finally {
    fs.closeSync(fd);
  }
}

function parseHolder(raw: string): LockHolder | undefined {
  try {
    const data = JSON.parse(raw) as Record<string, unknown>;
    if (typeof data["pid"] !== "number" || typeof data["host"] !== "string") return undefined;
    const text = (key: string) => (typeof data[key] === "string" ? (data[key] as string) : undefined);
    const ms = (key: string) => {
      const v = data[key];
      return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : undefined;
    };
    return {
      pid: data["pid"],
      host: data["host"],
      ...optional("token", text("token")),
      ...optional("bootId", text("bootId")),
      ...optional("pidNs", text("pidNs")),
      ...optional("start", text("start")),
      ...optional("since", text("since")),
      ...optional("heartbeatMs", ms("heartbeatMs")),
      ...optional("staleMs", ms("staleMs")),
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether the holder runs on this machine, in this pid namespace: then its pid can be checked here. A lock
 * without a boot id (version 1, or a holder without /proc) is judged by its host name, as version 1 was.
 */
export function checkableHere(holder: LockHolder, me: LockHolder): boolean {
  if (holder.bootId === undefined) return holder.host === me.host;
  return holder.bootId === me.bootId && holder.pidNs !== undefined && holder.pidNs === me.pidNs;
}

/** Whether the holder runs on this machine's kernel (same clock): then the lock file's mtime age is exact. */
export function sameMachine(holder: LockHolder, me: LockHolder): boolean {
  return holder.bootId !== undefined && holder.bootId === me.bootId;
}

/** Whether a process checkable here still runs: its pid is alive and, where known, started when the lock says. */
export function stillRuns(holder: LockHolder, me: LockHolder): boolean {
  if (holder.pid === me.pid) {
    // This pid is ours: the holder is this process (another thread) or an earlier process that had our pid.
    if (holder.start !== undefined && me.start !== undefined) return holder.start === me.start;
    const since = Date.parse(holder.since ?? "");
    return !(since < Date.now() - process.uptime() * 1000);
  }
  if (holder.start !== undefined) {
    const start = startTimeOf(String(holder.pid));
    if (start !== undefined) return start === holder.start;
    // No /proc entry: gone, or hidden from us (hidepid): kill(pid, 0) tells.
  }
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function startTimeOf(pid: string): string | undefined {
  const stat = readTrimmed(`/proc/${pid}/stat`);
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ")".
  const rest = stat?.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest?.[19]; // field 22
}

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

function readLink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
