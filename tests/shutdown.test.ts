// Stopping a process that has a data directory open: SIGTERM / SIGINT (docker stop, Ctrl-C) close it
// cleanly; after SIGKILL the next open neither waits for the lock nor replays a long WAL.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { lockDirectory } from "../src/local/lock.js";
import { createTestDatabase, tempDir } from "./harness/index.js";
import { fixtureArgs } from "./process-helpers.js";
import { lockWaits } from "./sync-helpers.js";

interface Child {
  child: ChildProcessWithoutNullStreams;
  /** Resolves when a line starting with `prefix` is printed (to that line). */
  line(prefix: string): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>;
}

function start(script: string, arg: string): Child {
  const child = spawn(process.execPath, fixtureArgs(script, arg));
  let out = "";
  const waiting: { prefix: string; resolve: (line: string) => void }[] = [];
  const check = () => {
    for (const w of [...waiting]) {
      const line = out.split("\n").find((l) => l.startsWith(w.prefix));
      if (line !== undefined) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stdout.on("data", (d: Buffer) => {
    out += d;
    check();
  });
  child.stderr.on("data", (d: Buffer) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, out })),
  );
  return {
    child,
    exited,
    line: (prefix) =>
      Promise.race([
        new Promise<string>((resolve) => {
          waiting.push({ prefix, resolve });
          check();
        }),
        exited.then(({ out }) => Promise.reject(new Error(`the child ended before "${prefix}":\n${out}`))),
      ]),
  };
}

/**
 * A data directory opened and closed once by Ominipg (made from the test template, so no child runs initdb),
 * copied by each test that needs one: opening a new directory (writing its files out of the template) cost ~0.3 s
 * of CPU per test.
 */
let pristine: Promise<string> | undefined;
afterAll(async () => {
  if (pristine) fs.rmSync(path.dirname(await pristine), { recursive: true, force: true });
});

/** A new closed data directory (a copy of `pristine`), removed when the test finishes. */
async function newDirectory(): Promise<string> {
  const source = await (pristine ??= (async () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ominipg-shutdown-pristine-")), "db");
    const db = await Ominipg.connect({ url: dir });
    await db.close();
    return dir;
  })());
  const dir = path.join(tempDir("ominipg-shutdown-"), "db");
  fs.cpSync(source, dir, { recursive: true });
  return dir;
}

async function rowsOf(dir: string): Promise<number[]> {
  const db = await Ominipg.connect({ url: dir });
  try {
    return (await db.query<{ id: number }>(`SELECT id FROM items ORDER BY id`)).rows.map((r) => r.id);
  } finally {
    await db.close();
  }
}

describe("SIGTERM and SIGINT while a directory is open", () => {
  it.each(["SIGTERM", "SIGINT"] as const)(
    "%s: the client closes (the open transaction rolled back, the lock released), then the signal ends the process",
    async (signal) => {
      const dir = await newDirectory();
      const run = start("signal-close.mjs", JSON.stringify({ dir, mode: "default" }));
      await run.line("ready");
      expect(fs.existsSync(`${dir}.lock`)).toBe(true);
      run.child.kill(signal);
      const { code, signal: endedBy, out } = await run.exited;
      expect({ code, endedBy }, out).toEqual({ code: null, endedBy: signal }); // a shell reports 128 + n
      expect(fs.existsSync(`${dir}.lock`)).toBe(false);
      expect(await rowsOf(dir)).toEqual([1, 2, 3]);
    },
  );

  it("an app listening for the signal itself: Ominipg closes, the app decides when to exit", async () => {
    const dir = await newDirectory();
    const run = start("signal-close.mjs", JSON.stringify({ dir, mode: "app-handler" }));
    await run.line("ready");
    run.child.kill("SIGTERM");
    const { code, out } = await run.exited;
    expect(code, out).toBe(0);
    expect(out).toContain("APP closed=true");
    expect(fs.existsSync(`${dir}.lock`)).toBe(false);
    expect(await rowsOf(dir)).toEqual([1, 2, 3]);
  });

  it("handleSignals: false leaves the signal alone (it ends the process at once; the next open takes the lock over)", async () => {
    const dir = await newDirectory();
    const run = start("signal-close.mjs", JSON.stringify({ dir, mode: "no-handling" }));
    await run.line("ready");
    run.child.kill("SIGTERM");
    expect((await run.exited).signal).toBe("SIGTERM");
    expect(fs.existsSync(`${dir}.lock`)).toBe(true);
    expect(await rowsOf(dir)).toEqual([1, 2, 3]);
  });

  it("a sync in flight finishes before the client closes", { timeout: 120_000 }, async () => {
    const remote = await createTestDatabase();
    try {
      await remote.sql`CREATE TABLE items (id int PRIMARY KEY, note text)`;
      const dir = await newDirectory();
      const run = start("signal-close.mjs", JSON.stringify({ dir, mode: "syncing", syncUrl: remote.url, rows: 3000 }));
      await run.line("syncing");
      run.child.kill("SIGTERM");
      const { signal, out } = await run.exited;
      expect(signal, out).toBe("SIGTERM");
      expect(out).toContain("SYNCED 3003"); // all of it, in the sync that was running
      expect(fs.existsSync(`${dir}.lock`)).toBe(false);
      expect((await remote.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM items`)[0]!.n).toBe(3003);
      const db = await Ominipg.connect({ url: dir, syncUrl: remote.url });
      try {
        expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`)).rows[0]!.n).toBe(0);
      } finally {
        await db.close();
      }
    } finally {
      await remote.drop();
    }
  });
});

describe("close() while the app is still at work", () => {
  it("refuses the app's statements from the moment it is called: a BEGIN ... COMMIT through query() is all rolled back", async () => {
    const dir = await newDirectory();
    const db = await Ominipg.connect({
      url: dir,
      schemaSQL: [`CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY)`],
    });
    await db.query(`BEGIN`);
    await db.query(`INSERT INTO items VALUES (1)`);
    const closing = db.close(); // a signal handler, or another part of the app shutting down
    const later = await Promise.all(
      [`INSERT INTO items VALUES (2)`, `COMMIT`].map((sql) => db.query(sql).catch((e: unknown) => e)),
    );
    expect(later).toMatchObject([{ code: "CLIENT_CLOSED" }, { code: "CLIENT_CLOSED" }]);
    await closing;
    expect(await rowsOf(dir)).toEqual([]);
  });

  it("a second close() resolves only once the database is closed and its lock released", async () => {
    const dir = await newDirectory();
    const db = await Ominipg.connect({ url: dir });
    const first = db.close();
    await db.close();
    expect(fs.existsSync(`${dir}.lock`)).toBe(false);
    await first;
  });

  it("waits for verify(), syncSequences() and unregister() in flight; refuses them once called", async () => {
    const remote = await createTestDatabase();
    try {
      const db = await Ominipg.connect({
        syncUrl: remote.url,
        schemaSQL: [`CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY)`],
      });
      await db.query(`INSERT INTO items DEFAULT VALUES`);
      await db.sync();
      const calls = [db.verify(), db.syncSequences(), db.unregister()];
      await db.close();
      expect(await Promise.all(calls)).toMatchObject([{ ok: true }, 0, { ledgerRows: expect.any(Number) }]);
      const after = [db.verify(), db.syncSequences(), db.unregister()].map((p) => p.catch((e: unknown) => e));
      expect(await Promise.all(after)).toMatchObject([
        { code: "CLIENT_CLOSED" },
        { code: "CLIENT_CLOSED" },
        { code: "CLIENT_CLOSED" },
      ]);
    } finally {
      await remote.drop();
    }
  });

  it("a sync held up by a remote row lock: close() ends it after sync.closeTimeoutMs; its change is pushed once later", async () => {
    const remote = await createTestDatabase();
    const dir = await newDirectory();
    const schemaSQL = [`CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, n int NOT NULL)`];
    const holder = remote.sql.reserve();
    try {
      let db = await Ominipg.connect({ url: dir, syncUrl: remote.url, schemaSQL, sync: { closeTimeoutMs: 300 } });
      await db.query(`INSERT INTO items VALUES (1, 0)`);
      await db.sync();
      await db.query(`UPDATE items SET n = n + 1 WHERE id = 1`);
      const lock = await holder;
      await lock.unsafe(`BEGIN; SELECT * FROM items WHERE id = 1 FOR UPDATE`);
      const errors: unknown[] = [];
      db.on("error", (e) => errors.push(e));
      const syncing = db.sync().catch((e: unknown) => e);
      await expect.poll(() => lockWaits(remote.sql)).toBe(1);
      const started = Date.now();
      await db.close(); // waited without limit while the lock was held
      expect(Date.now() - started).toBeLessThan(5000);
      const err = await syncing;
      expect(err).toMatchObject({ code: "REMOTE_PUSH_FAILED", retryable: true });
      expect(String((err as Error).message)).toMatch(/stopped by close\(\) after waiting 300 ms/);
      expect(errors).toEqual([err]);
      await lock.unsafe(`ROLLBACK`);
      lock.release();

      db = await Ominipg.connect({ url: dir, syncUrl: remote.url, schemaSQL });
      // The cut-off push either rolled back or (its COMMIT sent before the lock was released) committed, which
      // the ledger tells: either way the update is applied once, and the queue is empty.
      await db.sync();
      expect(await remote.sql`SELECT n FROM items`).toEqual([{ n: 1 }]);
      expect((await db.query(`SELECT count(*)::int AS n FROM _sync_queue`)).rows).toEqual([{ n: 0 }]);
      await db.close();
    } finally {
      (await holder).release();
      await remote.drop();
    }
  });

  it("close() inside a transaction() callback is refused (it would wait for the transaction)", async () => {
    const db = await Ominipg.connect({ url: ":memory:" });
    const err = await db.transaction(() => db.close()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "TRANSACTION_ACTIVE" });
    await db.close();
  });
});

describe("reopening after SIGKILL", () => {
  it("checkpoints while open (PGlite alone never does), so a reopen replays little WAL and does not wait for the lock", async () => {
    const dir = await newDirectory();
    const run = start("wal-kill.mjs", dir);
    const written = Number((await run.line("WRITTEN ")).split(" ")[1]);
    expect(written).toBeGreaterThan(32 << 20); // enough WAL to need a checkpoint
    const left = Number((await run.line("CHECKPOINTED ")).split(" ")[1]);
    expect(left).toBeLessThan(1 << 20);
    run.child.kill("SIGKILL");
    await run.exited;
    expect(fs.existsSync(`${dir}.lock`)).toBe(true);

    // The lock of a dead process in this pid namespace is taken over at once: no heartbeat timeout.
    const lockStarted = performance.now();
    (await lockDirectory(dir)).release();
    expect(performance.now() - lockStarted).toBeLessThan(2000);

    const started = performance.now();
    const db = await Ominipg.connect({ url: dir });
    const afterKill = performance.now() - started;
    expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM big`)).rows[0]!.n).toBe(150_000);
    await db.close();
    const again = performance.now();
    await (await Ominipg.connect({ url: dir })).close();
    console.log(
      `reopen after SIGKILL ${afterKill.toFixed(0)} ms, clean reopen ${(performance.now() - again).toFixed(0)} ms`,
    );
  });
});
