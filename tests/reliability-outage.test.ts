// Remote outage: the server "stops" (a loopback proxy in front of the shared server stops listening and
// cuts its connections: tests/sync-helpers.ts) during connect, between syncs and in the middle of a sync,
// and comes back. The app keeps working locally throughout, error events say what happened, the next sync
// completes with nothing lost and nothing applied twice. Background syncs back off (no retry storm) and
// failing syncs do not accumulate memory.
import net from "node:net";
import v8 from "node:v8";
import vm from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SyncError, type OminipgError } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import {
  connectUpstream,
  expectSameRows,
  ledgerRows,
  openSynced,
  queued,
  startProxy,
  type Proxy,
} from "./sync-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS docs (id int PRIMARY KEY, body text, n int NOT NULL DEFAULT 0)`];
const FAST_RETRY = { attempts: 2, baseDelayMs: 10, maxDelayMs: 40 };

/** Remote-only trigger: how many times each docs row version (id, n) was written. */
const HITS = [
  `CREATE TABLE IF NOT EXISTS hits (id int NOT NULL, n int NOT NULL, times int NOT NULL, PRIMARY KEY (id, n))`,
  `CREATE OR REPLACE FUNCTION count_hit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO hits VALUES (NEW.id, NEW.n, 1) ON CONFLICT (id, n) DO UPDATE SET times = hits.times + 1; RETURN NULL; END $$`,
  `CREATE OR REPLACE TRIGGER docs_hits AFTER INSERT OR UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION count_hit()`,
];

/**
 * A proxy that lets the first `n` connections through start-up and cuts them right after the server's first
 * ReadyForQuery (the moment the driver sends its first query on a new connection), then cuts the next few
 * connections at once (a server going down).
 */
async function cutAfterReady(
  targetUrl: string,
  n: number,
): Promise<{ url: string; cut: () => number; close: () => Promise<void> }> {
  const target = new URL(targetUrl);
  let cuts = 0;
  let refuse = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (refuse > 0) {
      // Down for a moment after each cut: the driver's reconnection fails.
      refuse--;
      return void client.destroy();
    }
    const upstream = connectUpstream(client, target, sockets);
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    let armed = cuts < n;
    upstream.on("data", (chunk: Buffer) => {
      if (!armed) return void client.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      let at = 0;
      while (pending.length - at >= 5) {
        const len = pending.readInt32BE(at + 1);
        if (pending.length - at < 1 + len) break;
        if (pending[at] === 0x5a /* Z */) {
          armed = false;
          cuts++;
          refuse = 5;
          client.write(pending.subarray(0, at + 1 + len), () => {
            client.destroy();
            upstream.destroy();
          });
          return;
        }
        at += 1 + len;
      }
      // Whole messages before ReadyForQuery (authentication goes back and forth) pass at once.
      client.write(pending.subarray(0, at));
      pending = pending.subarray(at);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = new URL(targetUrl);
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.href,
    cut: () => cuts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

describe("reliability: the remote goes down and comes back", () => {
  let remote: TestDatabase;
  let proxy: Proxy;
  beforeAll(async () => {
    remote = await createTestDatabase();
    for (const s of SCHEMA) await remote.sql.unsafe(s);
    proxy = await startProxy(remote.url);
  });
  afterAll(async () => {
    await proxy.close();
    await remote.drop();
  });

  it("down during connect: connect returns at once, the error event says so, local work goes on; back up: the first sync sets up the remote and pushes everything", async () => {
    await proxy.close();
    const errors: OminipgError[] = [];
    const { value: db, ms } = await timed(() => openSynced(proxy.url, SCHEMA, { sync: { retry: FAST_RETRY } }));
    db.on("error", (e) => errors.push(e));
    expect(ms).toBeLessThan(10_000); // never waits on the network (a fresh PGlite takes most of this)
    await db.query(`INSERT INTO docs (id, body) SELECT g, 'offline ' || g FROM generate_series(1, 20) g`);
    await db.transaction(async (tx) => {
      await tx.query(`UPDATE docs SET n = n + 1 WHERE id <= 10`);
      await tx.query(`DELETE FROM docs WHERE id = 20`);
    });
    await expect.poll(() => errors.length).toBeGreaterThan(0);
    expect(errors[0]).toBeInstanceOf(SyncError);
    expect(errors[0]).toMatchObject({ code: "REMOTE_SETUP_FAILED", retryable: true });
    expect(errors[0]!.message).toMatch(/setting up the remote database: .*(ECONNREFUSED|connect)/);
    const failed = await db.sync().catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: "REMOTE_SETUP_FAILED", retryable: true });
    expect((await db.status()).remote).toMatchObject({ reachable: false });
    expect(await queued(db)).toBe(31);

    await proxy.open();
    expect(await db.sync()).toMatchObject({ pushed: 31, rejected: 0 });
    await expectSameRows(db, remote.sql, { docs: "id" });
    expect((await db.status()).remote).toMatchObject({ reachable: true });
    await db.close();
  });

  it("connections cut while connect() sets the remote up: the set-up is retried by the next sync, nothing half-applied", async () => {
    await remote.sql`DROP TABLE IF EXISTS docs`;
    const schema = [...SCHEMA, `CREATE INDEX IF NOT EXISTS docs_body ON docs (body)`];
    const db = await openSynced(proxy.url, schema, { sync: { retry: FAST_RETRY } });
    db.on("error", () => {});
    proxy.drop(); // whatever the background set-up had open
    await db.query(`INSERT INTO docs VALUES (1, 'a')`);
    let pushed = false;
    for (let i = 0; i < 5 && !pushed; i++) {
      const r = await db.sync().catch(() => undefined);
      pushed = r?.pushed === 1;
    }
    expect(pushed).toBe(true);
    await expectSameRows(db, remote.sql, { docs: "id" });
    expect(await remote.sql`SELECT indexname FROM pg_indexes WHERE tablename = 'docs' ORDER BY 1`).toEqual([
      { indexname: "docs_body" },
      { indexname: "docs_pkey" },
    ]);
    await db.close();
  });

  it("down between syncs: local reads, writes and transactions stay fast; the failed sync keeps the log; back up: nothing lost", async () => {
    await remote.sql.unsafe(`${SCHEMA[0]}; TRUNCATE docs`).simple();
    const db = await openSynced(proxy.url, SCHEMA, {
      sync: { retry: { attempts: 4, baseDelayMs: 300, maxDelayMs: 600 } },
    });
    await db.query(`INSERT INTO docs VALUES (1, 'before')`);
    await db.sync();
    await proxy.close();
    const errors: OminipgError[] = [];
    db.on("error", (e) => errors.push(e));
    // A sync that waits out its back-off against the dead server ...
    const failing = db.sync().catch((e: unknown) => e);
    // ... does not hold up local work.
    for (let i = 2; i <= 30; i++) {
      const { ms } = await timed(() => db.query(`INSERT INTO docs VALUES ($1, 'during the outage')`, [i]));
      expect(ms).toBeLessThan(2000);
    }
    const { ms } = await timed(() =>
      db.transaction(async (tx) => tx.query(`UPDATE docs SET n = n + 1 WHERE id <= 15`)),
    );
    expect(ms).toBeLessThan(2000);
    expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM docs`)).rows[0]!.n).toBe(30);
    const err = await failing;
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ retryable: true });
    expect((err as Error).message).toMatch(/ECONNREFUSED|connect/);
    expect(errors).toEqual([err]);
    expect(await queued(db)).toBe(29 + 15);

    await proxy.open();
    expect(await db.sync()).toMatchObject({ pushed: 44, rejected: 0 });
    await expectSameRows(db, remote.sql, { docs: "id" });
    await db.close();
  });

  it("down in the middle of a sync, at several points: the next sync finishes, every row version applied exactly once", async () => {
    await remote.sql.unsafe(`${SCHEMA[0]}; TRUNCATE docs`).simple();
    for (const s of HITS) await remote.sql.unsafe(s);
    const db = await openSynced(proxy.url, SCHEMA, { sync: { batchSize: 50, concurrency: 2, retry: FAST_RETRY } });
    db.on("error", () => {});
    let next = 1;
    for (const cutAt of [1, 150, 400, 49]) {
      await db.query(
        `INSERT INTO docs (id, body) SELECT g, 'row ' || g FROM generate_series($1::int, $1::int + 499) g`,
        [next],
      );
      await db.query(`UPDATE docs SET n = n + 1 WHERE id % 3 = 0`);
      next += 500;
      let cut = false;
      const onProgress = ({ done }: { done: number }) => {
        if (!cut && done >= cutAt) {
          cut = true;
          void proxy.close();
        }
      };
      db.on("sync:progress", onProgress);
      const err = await db.sync().catch((e: unknown) => e);
      db.off("sync:progress", onProgress);
      expect(cut).toBe(true);
      expect(err).toBeInstanceOf(SyncError);
      expect(err).toMatchObject({ retryable: true });
      expect(await queued(db)).toBeGreaterThan(0);
      // Still down: local work goes on.
      await db.query(`UPDATE docs SET n = n + 1 WHERE id = 1`);
      await proxy.open();
      const done = await db.sync();
      expect(done.rejected).toBe(0);
      expect(await queued(db)).toBe(0);
      await expectSameRows(db, remote.sql, { docs: "id" });
      expect(await ledgerRows(remote.sql)).toBe(0);
    }
    expect(await remote.sql`SELECT count(*)::int AS n FROM hits WHERE times > 1`).toEqual([{ n: 0 }]);
    await db.close();
  });

  it("background sync against a dead server backs off with jitter up to the cap: no retry storm", async () => {
    await remote.sql.unsafe(`${SCHEMA[0]}; TRUNCATE docs`).simple();
    const dead = await startProxy(remote.url);
    dead.refuseNext(Infinity); // accepts and cuts every connection: each attempt is counted
    const db = await openSynced(dead.url, SCHEMA, {
      sync: { intervalMs: 20, retry: { attempts: 2, baseDelayMs: 50, maxDelayMs: 800 } },
    });
    const errors: OminipgError[] = [];
    db.on("error", (e) => errors.push(e));
    let syncs = 0;
    db.on("sync:start", () => syncs++);
    await db.query(`INSERT INTO docs VALUES (1, 'x')`);
    const before = dead.accepted;
    await new Promise((r) => setTimeout(r, 4000));
    const connections = dead.accepted - before;
    // Without back-off between background syncs: a sync every ~20-60 ms (~80 syncs, ~800 connections).
    // With it: waits grow to the 800 ms cap (full jitter: ~400 ms on average): a dozen or so syncs.
    expect(syncs).toBeGreaterThan(2);
    expect(syncs).toBeLessThan(25);
    expect(connections).toBeLessThan(250);
    expect(errors.length).toBeLessThan(30);
    expect(errors.every((e) => e instanceof SyncError && e.retryable)).toBe(true);

    // Back up: the next background sync goes through (within the cap), and the pace is normal again.
    dead.refuseNext(0);
    await expect
      .poll(async () => (await remote.sql`SELECT count(*)::int AS n FROM docs`)[0]!.n, {
        timeout: 10_000,
        interval: 50,
      })
      .toBe(1);
    await db.query(`INSERT INTO docs VALUES (2, 'y')`);
    await expect
      .poll(async () => (await remote.sql`SELECT count(*)::int AS n FROM docs`)[0]!.n, { timeout: 3_000, interval: 20 })
      .toBe(2);
    await db.close();
    await dead.close();
  });

  it("connections lost right after start-up (as the driver sends its first query) fail the attempt, never the process", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const flaky = await cutAfterReady(remote.url, 6);
    try {
      const db = await openSynced(flaky.url, SCHEMA, {
        sync: { retry: { attempts: 10, baseDelayMs: 20, maxDelayMs: 100 } },
      });
      db.on("error", () => {});
      await db.query(`INSERT INTO docs VALUES (424242, 'through a flaky link') ON CONFLICT (id) DO NOTHING`);
      let result;
      for (let i = 0; i < 5 && !result; i++) result = await db.sync().catch(() => undefined);
      expect(result).toMatchObject({ rejected: 0 });
      expect(flaky.cut()).toBeGreaterThan(0);
      await db.close();
      await new Promise((r) => setTimeout(r, 200)); // let any stray rejection surface
      expect(unhandled.map((e) => String((e as Error)?.message ?? e))).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await flaky.close();
    }
  });

  it("another service on the port (an HTTP proxy answering 400): the sync fails and close() returns, nothing spins", async () => {
    const http = net.createServer((c) =>
      c.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n", () => c.destroy()),
    );
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    let connections = 0;
    http.on("connection", () => connections++);
    const url = new URL(remote.url);
    url.host = `127.0.0.1:${(http.address() as net.AddressInfo).port}`;
    try {
      const db = await openSynced(url.toString(), SCHEMA, {
        sync: { retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 50 } },
      });
      db.on("error", () => {});
      await db.query(`INSERT INTO docs VALUES (515151, 'behind a proxy') ON CONFLICT (id) DO NOTHING`);
      const started = Date.now();
      await expect(db.sync()).rejects.toMatchObject({ retryable: true });
      expect(Date.now() - started).toBeLessThan(15_000);
      await db.close();
      expect(connections).toBeLessThan(100); // not a reconnect loop
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it("a server that accepts connections and never answers: the error names its address and the timeout in words", async () => {
    const silent = net.createServer((c) => c.resume()); // reads, so it sees the client close
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const where = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const url = new URL(remote.url);
    url.host = where;
    url.searchParams.set("connect_timeout", "1");
    try {
      const db = await openSynced(url.toString(), SCHEMA, { sync: { retry: { attempts: 1 } } });
      db.on("error", () => {});
      await expect(db.sync()).rejects.toMatchObject({
        code: "REMOTE_SETUP_FAILED",
        message: `setting up the remote database: no answer from ${where} within the connect timeout (CONNECT_TIMEOUT)`,
      });
      // The next attempt does not connect again at once (the last one never got an answer): status says why.
      expect((await db.status()).remote).toMatchObject({
        reachable: false,
        error: `the last connection to ${where} ended before the server answered`,
      });
      await db.close();
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("hundreds of failed syncs during a long outage do not grow memory", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    await proxy.close();
    const db = await openSynced(proxy.url, SCHEMA, { sync: { retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } } });
    db.on("error", () => {});
    await db.query(`INSERT INTO docs VALUES (100000, 'pending')`);
    const round = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await expect(db.sync()).rejects.toMatchObject({ retryable: true });
        await db.status();
      }
    };
    await round(50); // warm up
    gc();
    const before = process.memoryUsage().heapUsed;
    await round(300);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(grown).toBeLessThan(8 * 1024 * 1024);
    await proxy.open();
    expect(await db.sync()).toMatchObject({ pushed: 1 });
    await db.close();
  });
});
