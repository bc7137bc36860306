// A script through query() that commits DDL and then fails keeps the DDL before its COMMIT: the names capture
// resolves must follow it (a temp table that hid a synced table dropped, or made), or later writes are logged for
// the wrong table, or not at all.
import { afterEach, describe, expect, it } from "vitest";
import type { Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, openSynced } from "./sync-helpers.js";

const ITEMS = `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v text)`;
const opened: { db: Ominipg; remote: TestDatabase }[] = [];
afterEach(async () => {
  for (const { db, remote } of opened.splice(0)) {
    await db.close();
    await remote.drop();
  }
});

async function synced(): Promise<{ db: Ominipg; remote: TestDatabase }> {
  const remote = await createTestDatabase();
  const db = await openSynced(remote.url, [ITEMS]);
  opened.push({ db, remote });
  return { db, remote };
}

describe("a script that commits DDL, then fails", () => {
  it("a dropped temp table that hid a synced table: the next write is the synced table's", async () => {
    const { db, remote } = await synced();
    await db.query(`CREATE TEMP TABLE items (id int PRIMARY KEY, v text)`);
    await db.query(`INSERT INTO items VALUES (1, 'temp')`);
    await expect(db.query(`BEGIN; DROP TABLE pg_temp.items; COMMIT; VACUUM items`)).rejects.toThrow(/VACUUM/);
    await db.query(`INSERT INTO items VALUES (2, 'public')`);
    expect((await db.query(`SELECT id FROM public.items`)).rows).toEqual([{ id: 2 }]);
    await db.sync();
    await expectSameRows(db, remote.sql, { "public.items": "id" });
  });

  it("a temp table it made hides the synced table: its rows are not logged as the synced table's", async () => {
    const { db, remote } = await synced();
    await db.query(`INSERT INTO items VALUES (1, 'public')`);
    await expect(
      db.query(`BEGIN; CREATE TEMP TABLE items (id int PRIMARY KEY, v text); COMMIT; VACUUM items`),
    ).rejects.toThrow(/VACUUM/);
    await db.query(`INSERT INTO items VALUES (2, 'temp')`);
    expect((await db.query(`SELECT id FROM public.items`)).rows).toEqual([{ id: 1 }]);
    await db.sync();
    await expectSameRows(db, remote.sql, { "public.items": "id" });
  });
});

describe("an event trigger", () => {
  it("whose function may write is refused: it would run at every DDL statement, uncaptured", async () => {
    const { db } = await synced();
    await db.query(
      `CREATE OR REPLACE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO items VALUES ((SELECT coalesce(max(id), 0) + 1 FROM items), 'by event trigger'); END $$`,
    );
    await expect(
      db.query(`CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION on_ddl()`),
    ).rejects.toMatchObject({ code: "CAPTURE_UNSUPPORTED", message: expect.stringMatching(/on_ddl/) });
  });
});
