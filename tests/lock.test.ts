// The directory lock (src/local/lock.ts): who may take over a `<dir>.lock` left behind, and when.
// Lock files "written by another container or machine" are faked: another host name and pid namespace
// (and, for another machine, another boot id), with a heartbeat the test refreshes or not.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LocalDatabaseError } from "../src/index.js";
import { LOCK_TIMING, lockDirectory } from "../src/local/lock.js";
import { thisProcess, type LockHolder } from "../src/local/lock-holder.js";
import { tempDir } from "./harness/index.js";
import { fixtureArgs } from "./process-helpers.js";

const me = thisProcess(LOCK_TIMING);
const linux = me.bootId !== undefined && me.pidNs !== undefined;
const newDir = () => path.join(tempDir("ominipg-lockfile-"), "db");

/** A lock file as another process wrote it, last refreshed `ageMs` ago. */
function fakeLock(dir: string, holder: Partial<LockHolder>, ageMs = 0): string {
  const lockPath = `${dir}.lock`;
  fs.writeFileSync(lockPath, JSON.stringify(holder));
  const at = (Date.now() - ageMs) / 1000;
  fs.utimesSync(lockPath, at, at);
  return lockPath;
}

/** Another container on this machine: same kernel (boot id), its own pid namespace and host name. */
const otherContainer = (extra: Partial<LockHolder> = {}): LockHolder => ({
  token: randomUUID(),
  pid: 1,
  host: "f00dcafe1234",
  bootId: me.bootId!,
  pidNs: "pid:[4026599999]",
  start: "42",
  since: new Date().toISOString(),
  heartbeatMs: 100,
  staleMs: 800,
  ...extra,
});

/** Keeps refreshing a lock file's mtime, as a live holder's heartbeat does. */
function refreshing(lockPath: string): () => void {
  const timer = setInterval(() => {
    const now = Date.now() / 1000;
    fs.utimesSync(lockPath, now, now);
  }, 50);
  return () => clearInterval(timer);
}

async function lockError(dir: string): Promise<LocalDatabaseError> {
  const err = await lockDirectory(dir).then(
    (lock) => {
      lock.release();
      throw new Error("the directory was locked");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LocalDatabaseError);
  expect((err as LocalDatabaseError).code).toBe("LOCAL_LOCKED");
  return err as LocalDatabaseError;
}

describe.runIf(linux)("a lock left by another container on this machine", () => {
  it("not refreshed for longer than its stale time: taken over at once", async () => {
    const dir = newDir();
    const lockPath = fakeLock(dir, otherContainer({ staleMs: 10_000 }), 60_000);
    const started = Date.now();
    const lock = await lockDirectory(dir);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(JSON.parse(fs.readFileSync(lockPath, "utf8"))).toMatchObject({ pid: process.pid, bootId: me.bootId });
    lock.release();
    expect(fs.existsSync(lockPath)).toBe(false);
  });

  it("refreshed: refused, with what to do in the message", async () => {
    const dir = newDir();
    const lockPath = fakeLock(dir, otherContainer());
    const stop = refreshing(lockPath);
    try {
      const err = await lockError(dir);
      expect(err.message).toContain(`in use by process 1 on host f00dcafe1234`);
      expect(err.message).toContain(lockPath);
      expect(err.message).toMatch(/Close that client or stop that process first/);
    } finally {
      stop();
    }
    expect(fs.existsSync(lockPath)).toBe(true); // never touched
  });

  it("refreshed until a moment ago: waits out the stale time, then takes it over", async () => {
    const dir = newDir();
    fakeLock(dir, otherContainer({ staleMs: 800 }), 300);
    const started = Date.now();
    const lock = await lockDirectory(dir);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    lock.release();
  });
});

describe.runIf(linux)("a lock left by another machine (another boot id)", () => {
  it("is watched for its stale time without trusting its clock: taken over when it does not change", async () => {
    const dir = newDir();
    // A fresh mtime by our clock: only watching it tells whether its holder still refreshes it.
    fakeLock(dir, otherContainer({ bootId: "another-boot", staleMs: 600 }), -5_000);
    const started = Date.now();
    const lock = await lockDirectory(dir);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    lock.release();
  });

  it("is refused while it is refreshed", async () => {
    const dir = newDir();
    const lockPath = fakeLock(dir, otherContainer({ bootId: "another-boot", staleMs: 600 }), 60_000);
    const stop = refreshing(lockPath);
    try {
      expect((await lockError(dir)).message).toContain("on host f00dcafe1234");
    } finally {
      stop();
    }
  });
});

describe("a lock that cannot be judged", () => {
  it("written by an Ominipg without a heartbeat on another host: the exact remedy, and it opens once followed", async () => {
    const dir = newDir();
    const lockPath = fakeLock(dir, { pid: 4242, host: "old-container", since: "2025-01-01T00:00:00.000Z" });
    const err = await lockError(dir);
    expect(err.message).toContain("locked by process 4242 on host old-container");
    expect(err.message).toContain(`If no process on old-container has the directory open`);
    expect(err.message).toContain(`rm '${lockPath}'`);
    fs.rmSync(lockPath);
    (await lockDirectory(dir)).release();
  });

  it("unreadable: the exact remedy", async () => {
    const dir = newDir();
    const lockPath = `${dir}.lock`;
    fs.writeFileSync(lockPath, "not json");
    const err = await lockError(dir);
    expect(err.message).toContain(`rm '${lockPath}'`);
  });
});

describe("a lock that cannot be made", () => {
  it("says why, from the file system's own error", async () => {
    const parent = tempDir("ominipg-lockfile-");
    fs.writeFileSync(path.join(parent, "file"), "in the way");
    const err = await lockError(path.join(parent, "file", "db"));
    expect(err.message).toMatch(/could not lock the data directory .*: ENOTDIR: not a directory/);
  });

  // Root may write anywhere: only another user meets a directory it may not write in.
  it.runIf(process.getuid?.() !== 0)("beside a directory in a read-only parent: says where the lock goes", async () => {
    const parent = tempDir("ominipg-lockfile-");
    fs.mkdirSync(path.join(parent, "db"));
    fs.chmodSync(parent, 0o555);
    try {
      const err = await lockError(path.join(parent, "db"));
      expect(err.message).toContain("EACCES");
      expect(err.message).toContain("the lock file is made beside the directory");
    } finally {
      fs.chmodSync(parent, 0o755);
    }
  });
});

describe("a lock of this machine and pid namespace", () => {
  it("held by a live process: refused at once", async () => {
    const dir = newDir();
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      fakeLock(dir, { ...me, token: randomUUID(), pid: child.pid!, start: undefined });
      const started = Date.now();
      expect((await lockError(dir)).message).toContain(`in use by process ${child.pid}`);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      child.kill();
    }
  });

  it.runIf(linux)("whose pid now belongs to another process (another start time): taken over", async () => {
    const dir = newDir();
    fakeLock(dir, { ...me, token: randomUUID(), pid: process.ppid, start: "1" });
    (await lockDirectory(dir)).release();
  });

  it("the heartbeat goes on while the main thread is blocked (a long PGlite statement)", async () => {
    const dir = newDir();
    const lock = await lockDirectory(dir, { heartbeatMs: 100, staleMs: 1000 });
    try {
      await new Promise((r) => setTimeout(r, 300)); // the heartbeat thread is up
      const before = fs.statSync(`${dir}.lock`).mtimeMs;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600); // block this thread
      expect(fs.statSync(`${dir}.lock`).mtimeMs).toBeGreaterThan(before);
    } finally {
      lock.release();
    }
  });

  it("the heartbeat runs in a process whose code is ES modules by default (node --input-type=module)", async () => {
    const dir = newDir();
    const lockModule = new URL("../dist/local/lock.js", import.meta.url).href;
    const code =
      `import { lockDirectory } from ${JSON.stringify(lockModule)};\n` +
      `process.on("warning", (w) => console.log("WARNING " + w.message));\n` +
      `const lock = await lockDirectory(process.argv[1], { heartbeatMs: 100, staleMs: 1000 });\n` +
      `console.log("locked");\n` +
      `process.stdin.resume();\n` +
      `process.stdin.on("end", () => { lock.release(); process.exit(0); });`;
    // The heartbeat thread inherits the flag: its code was read as an ES module, where require() does not exist.
    const child = spawn(process.execPath, ["--input-type=module", "-e", code, dir], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (out += d));
    const exited = new Promise((r) => child.on("exit", r));
    try {
      await expect.poll(() => out, { timeout: 20_000 }).toContain("locked");
      await new Promise((r) => setTimeout(r, 300)); // the heartbeat thread is up
      const before = fs.statSync(`${dir}.lock`).mtimeMs;
      await new Promise((r) => setTimeout(r, 400));
      expect(fs.statSync(`${dir}.lock`).mtimeMs).toBeGreaterThan(before);
    } finally {
      child.stdin.end();
      await exited;
    }
    expect(out).not.toContain("WARNING");
    expect(child.exitCode).toBe(0);
  });

  it("a holder whose lock was taken over is warned (OMINIPG_LOCK_LOST)", async () => {
    const dir = newDir();
    const lock = await lockDirectory(dir, { heartbeatMs: 50, staleMs: 500 });
    const warned = new Promise<Error>((resolve) => {
      const onWarning = (w: Error & { code?: string }) => {
        if (w.code !== "OMINIPG_LOCK_LOST") return;
        process.off("warning", onWarning);
        resolve(w);
      };
      process.on("warning", onWarning);
    });
    fs.writeFileSync(`${dir}.other`, JSON.stringify(otherContainer()));
    fs.renameSync(`${dir}.other`, `${dir}.lock`);
    expect((await warned).message).toContain(`${dir}.lock`);
    lock.release();
    expect(fs.existsSync(`${dir}.lock`)).toBe(true); // not ours any more: left alone
  });
});

describe("processes racing to take over one stale lock", () => {
  const stale = {
    "another container's, not refreshed": (dir: string) => fakeLock(dir, otherContainer({ staleMs: 1000 }), 60_000),
    "a dead process's on this host": (dir: string) => {
      const dead = spawn(process.execPath, ["-e", "0"]);
      return new Promise<string>((resolve) =>
        dead.on("exit", () => resolve(fakeLock(dir, { pid: dead.pid!, host: os.hostname(), since: "x" }))),
      );
    },
  };
  it.each(Object.keys(stale))("%s: exactly one wins, every time", { timeout: 120_000 }, async (kind) => {
    for (let round = 0; round < 6; round++) {
      const dir = newDir();
      await stale[kind as keyof typeof stale](dir);
      const children = Array.from({ length: 4 }, () =>
        spawn(process.execPath, fixtureArgs("lock-race.mjs", dir), { stdio: ["pipe", "pipe", "pipe"] }),
      );
      const runs = children.map((child) => {
        let out = "";
        const seen = (prefixes: string[]) =>
          new Promise<string>((resolve, reject) => {
            const check = () => {
              const line = out.split("\n").find((l) => prefixes.some((p) => l.startsWith(p)));
              if (line) resolve(line);
            };
            child.stdout.on("data", check);
            child.on("exit", () => reject(new Error(`child ended without ${prefixes.join(" or ")}: ${out}`)));
            check();
          });
        child.stdout.on("data", (d: Buffer) => (out += d));
        child.stderr.on("data", (d: Buffer) => (out += d));
        const outcome = seen(["WON", "LOCKED"]);
        outcome.catch(() => {}); // awaited below, once every child is ready
        return { ready: seen(["ready"]), outcome };
      });
      // All four started: they go at the same moment, a little later.
      await Promise.all(runs.map((r) => r.ready));
      const goAt = Date.now() + 100;
      for (const child of children) child.stdin.write(`${goAt}\n`);
      const outcomes = await Promise.all(runs.map((r) => r.outcome));
      const winners = children.filter((_, i) => outcomes[i] === "WON");
      expect(winners.length, `round ${round}: ${outcomes.join(" | ")}`).toBe(1);
      for (const outcome of outcomes.filter((o) => o !== "WON"))
        expect(outcome).toContain(`LOCAL_LOCKED the data directory ${dir} is in use by process ${winners[0]!.pid}`);
      for (const child of children) child.stdin.end();
      await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.on("exit", r)))));
      expect(fs.existsSync(`${dir}.lock`)).toBe(false);
      expect(fs.readdirSync(path.dirname(dir))).toEqual([]); // no claim or temporary file left
    }
  });
});
