// A push statement whose client gave up on it (close() past closeTimeoutMs ended its connection while it waited for
// a remote row lock) runs on at the server and commits, claiming its batch id (its smallest log entry id) in the
// ledger. The next sync of the reopened directory may send a batch with the same smallest entry and more: meeting
// that ledger row, it must not be taken for applied by an earlier attempt (its other entries would be dropped
// unsent): every change committed locally reaches the remote.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, tempDir, type TestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";
import { lockWaits, queued } from "./sync-helpers.js";

const cleanup = cleanupAfterEach();
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, n int NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS other (id int PRIMARY KEY, n int NOT NULL)`,
];

/**
 * `first` queued, then pushed while `lock` (run in a remote transaction) blocks it, the client closed under it; the
 * directory reopened, `then` queued and synced while the cut-off statement still waits; the lock released.
 */
async function cutOff(first: string, lock: string, then: string): Promise<{ remote: TestDatabase; db: Ominipg }> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  const dir = path.join(tempDir("ominipg-cut-off-"), "db");
  const holder = await remote.sql.reserve();
  cleanup(() => holder.release());
  const open = () =>
    Ominipg.connect({ url: dir, syncUrl: remote.url, schemaSQL: SCHEMA, sync: { closeTimeoutMs: 300 } });
  const before = await open();
  await before.query(`INSERT INTO items VALUES (1, 0), (2, 0); INSERT INTO other VALUES (1, 0), (2, 0)`);
  await before.sync();
  await before.query(first);
  await holder.unsafe(`BEGIN`);
  await holder.unsafe(lock);
  const cut = before.sync().catch((e: unknown) => e);
  await expect.poll(() => lockWaits(remote.sql)).toBe(1);
  await before.close(); // ends the connection; the server-side statement keeps waiting for the lock
  expect(await cut).toMatchObject({ retryable: true });
  const db = await open();
  cleanup(() => db.close());
  await db.query(then);
  const second = db.sync().catch((e: unknown) => e);
  await expect.poll(() => lockWaits(remote.sql)).toBeGreaterThanOrEqual(2);
  await holder.unsafe(`COMMIT`);
  // Met the cut-off statement's ledger row: fails, to be pushed by the next sync.
  expect(await second).toMatchObject({ code: "REMOTE_PUSH_FAILED", retryable: true });
  expect(await db.sync()).toMatchObject({ rejected: 0 });
  expect(await queued(db)).toBe(0);
  return { remote, db };
}

describe("a push statement cut off by close() that committed later", () => {
  it("a batch with its smallest entry and more: the other changes are pushed, not dropped", async () => {
    const { remote, db } = await cutOff(
      `UPDATE items SET n = 1 WHERE id = 1`,
      `SELECT * FROM items WHERE id = 1 FOR UPDATE`,
      `UPDATE items SET n = 2 WHERE id = 2`,
    );
    const local = (await db.query(`SELECT id, n FROM items ORDER BY id`)).rows;
    expect(local).toEqual([
      { id: 1, n: 1 },
      { id: 2, n: 2 },
    ]);
    expect(await remote.sql`SELECT id, n FROM items ORDER BY id`).toEqual(local);
  });

  it("a batch of truncations: the later one is pushed", async () => {
    const { remote } = await cutOff(`TRUNCATE items`, `SELECT * FROM items`, `TRUNCATE other`);
    expect(
      await remote.sql`SELECT (SELECT count(*) FROM items)::int AS items, (SELECT count(*) FROM other)::int AS other`,
    ).toEqual([{ items: 0, other: 0 }]);
  });
});
