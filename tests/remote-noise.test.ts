// What Ominipg says to the server and to the app is what it means: no COMMIT or ROLLBACK outside a
// transaction (each one a WARNING in the server's log), and one failure, one `error` event.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, unreachableUrl, type TestDatabase } from "./harness/index.js";

/** A TCP relay to the server that keeps every byte the server sent (its notices and warnings among them). */
async function tap(targetUrl: string): Promise<{ url: string; heard: () => string; close: () => Promise<void> }> {
  const target = new URL(targetUrl);
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: target.hostname, port: Number(target.port || 5432) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on("data", (d: Buffer) => chunks.push(d));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(targetUrl);
  url.port = String((server.address() as net.AddressInfo).port);
  url.hostname = "127.0.0.1";
  return {
    url: url.href,
    heard: () => Buffer.concat(chunks).toString("latin1"),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const SCHEMA = [`CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text)`];

describe("remote noise", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(async () => {
    await remote.drop();
  });

  it("sync (windows and COPY), pull and verify send no COMMIT or ROLLBACK outside a transaction", async () => {
    const relay = await tap(remote.url);
    const db = await Ominipg.connect({
      syncUrl: relay.url,
      schemaSQL: SCHEMA,
      sync: { batchSize: 10, copyBatchSize: 100 },
    });
    try {
      await db.query(`INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 500) g`);
      await db.query(`UPDATE notes SET body = 'changed' WHERE id <= 20`);
      expect((await db.sync()).pushed).toBe(520);
      await remote.sql`UPDATE notes SET body = 'remote' WHERE id = 7`;
      await db.pull();
      expect((await db.verify()).ok).toBe(true);
    } finally {
      await db.close();
      await relay.close();
    }
    expect(relay.heard()).not.toContain("there is no transaction in progress");
    expect(relay.heard()).toContain("COMMIT"); // the relay did carry the transactions
  });

  it("a sync that fails on an unreachable remote emits one error event", async () => {
    const db = await Ominipg.connect({ syncUrl: unreachableUrl(), sync: { retry: { attempts: 1 } } });
    const seen: string[] = [];
    db.on("error", (e) => seen.push(`${e.code}: ${e.message}`));
    try {
      await expect(db.sync()).rejects.toMatchObject({ code: "REMOTE_SETUP_FAILED" });
      await new Promise((r) => setTimeout(r, 300)); // a second event would arrive by now
      expect(seen).toHaveLength(1);
    } finally {
      await db.close();
    }
  });
});
