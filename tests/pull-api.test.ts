import { afterAll, beforeAll, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { type PullResult } from "../src/pull/types.js";

let remote: TestDatabase;
const schemaSQL = [
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL DEFAULT 0)`,
];

beforeAll(async () => {
  remote = await createTestDatabase();
  await remote.sql.unsafe(schemaSQL[0]!);
  await remote.sql`INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2)`;
});
afterAll(async () => {
  await remote.drop();
});

it("sync.pull 'initial' pulls in the background, pull() records conflicts, status() shows the last pull", async () => {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL,
    sync: { pull: "initial" },
  });
  const ended = await new Promise<PullResult>((resolve) => db.once("pull:end", resolve));
  expect(ended.tables["public.items"]?.upserted).toBe(2);
  expect((await db.query(`SELECT id, name FROM items ORDER BY id`)).rows).toEqual([
    { id: 1, name: "one" },
    { id: 2, name: "two" },
  ]);
  expect((await db.query(`SELECT count(*)::int AS n FROM _sync_queue`)).rows).toEqual([{ n: 0 }]);

  // A local change pending while the remote changes the same row: the local change is kept, the conflict recorded.
  await db.query(`UPDATE items SET qty = 10 WHERE id = 1`);
  await remote.sql`UPDATE items SET qty = 99 WHERE id = 1`;
  await remote.sql`INSERT INTO items VALUES (3, 'three', 3)`;
  await remote.sql`DELETE FROM items WHERE id = 2`;
  const seen: unknown[] = [];
  db.on("conflict", (c) => seen.push([c.origin, c.key, c.resolution]));
  const second = await db.pull();
  expect(second.conflicts).toBe(1);
  expect(seen).toEqual([["pull", { id: 1 }, "local-pending"]]);
  expect((await db.query(`SELECT id, qty FROM items ORDER BY id`)).rows).toEqual([
    { id: 1, qty: 10 },
    { id: 3, qty: 3 },
  ]);
  const conflicts = await db.query<{ table_name: string; resolution: string; remote: { qty: number } }>(
    `SELECT table_name, resolution, remote FROM _ominipg_conflicts`,
  );
  expect(conflicts.rows).toEqual([
    { table_name: "items", resolution: "local-pending", remote: expect.objectContaining({ qty: 99 }) },
  ]);
  expect((await db.status()).lastPull?.conflicts).toBe(1);

  // The pending change still goes out on the next sync, and push and pull never run at once.
  const [pushed] = await Promise.all([db.sync(), db.pull()]);
  expect(pushed.pushed).toBe(1);
  expect(await remote.sql`SELECT qty FROM items WHERE id = 1`).toEqual([{ qty: 10 }]);
  await db.close();
});
