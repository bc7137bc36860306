// An identity ALWAYS column that is not the key: pushed with its local value on insert, never in an update.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS tagged (id int PRIMARY KEY, seq int GENERATED ALWAYS AS IDENTITY, v text)`];
let remote: TestDatabase;
beforeAll(async () => {
  remote = await createTestDatabase();
});
afterAll(async () => {
  await remote.drop();
});

it("inserts, then updates and re-inserts over an existing key, rows with a non-key identity ALWAYS column", async () => {
  const db = await openSynced(remote.url, SCHEMA);
  await db.query(`INSERT INTO tagged (id, v) VALUES (1, 'a'), (2, 'b')`);
  await db.sync();
  await db.query(`UPDATE tagged SET v = 'a2' WHERE id = 1`);
  await db.query(`DELETE FROM tagged WHERE id = 2`);
  await db.query(`INSERT INTO tagged (id, v) VALUES (2, 'b2')`);
  const result = await db.sync();
  expect(result.rejected).toBe(0);
  expect(await queued(db)).toBe(0);
  expect(await remote.sql`SELECT id, v FROM tagged ORDER BY id`).toEqual([
    { id: 1, v: "a2" },
    { id: 2, v: "b2" },
  ]);
  expect((await db.query(`SELECT id, v FROM tagged ORDER BY id`)).rows).toEqual([
    { id: 1, v: "a2" },
    { id: 2, v: "b2" },
  ]);
  await db.close();
});
