// Ominipg's remote objects gone under an open client (an admin dropped the ledger; the database was dropped and
// made again, as a restore does): the sync that meets it fails, the next one sets the remote up again and pushes.
import { describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, withAdmin } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const cleanup = cleanupAfterEach();
const schemaSQL = [`CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, n int NOT NULL)`];

describe("the remote's set-up gone while a client is open", () => {
  it("the ledger dropped by an admin: the next sync sets it up again and pushes", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL, sync: { retry: { attempts: 1 } } });
    cleanup(() => db.close());
    await db.query(`INSERT INTO items VALUES (1, 0)`);
    await db.sync();
    await remote.sql.unsafe(`DROP TABLE _ominipg_ledger CASCADE`);
    await db.query(`INSERT INTO items VALUES (2, 0)`);
    await expect(db.sync()).rejects.toMatchObject({ code: "REMOTE_LEDGER_FAILED" });
    expect(await db.sync()).toMatchObject({ pushed: 1, rejected: 0 });
    expect(await remote.sql`SELECT id FROM items ORDER BY id`).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it("the database dropped and made again: the next sync sets it up again (schemaSQL too) and pushes", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const name = new URL(remote.url).pathname.slice(1);
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL,
      sync: { retry: { attempts: 2, baseDelayMs: 50 } },
    });
    cleanup(() => db.close());
    await db.query(`INSERT INTO items VALUES (1, 0)`);
    await db.sync();
    await withAdmin(async (admin) => {
      await admin.unsafe(`DROP DATABASE "${name}" WITH (FORCE)`);
      await admin.unsafe(`CREATE DATABASE "${name}"`);
    });
    await db.query(`INSERT INTO items VALUES (2, 0)`);
    await db.sync().catch(() => undefined); // the first may meet the old connections' end, or the ledger gone
    await db.query(`INSERT INTO items VALUES (3, 0)`);
    expect(await db.sync()).toMatchObject({ rejected: 0 });
    expect((await remote.sql`SELECT id FROM items ORDER BY id`).map((r) => r.id)).toEqual([2, 3]);
  });
});
