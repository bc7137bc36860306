// Exactly once: a crash between a batch's remote COMMIT and the local clean-up of its log entries, and a
// lost COMMIT reply, must not apply anything twice nor lose anything. A remote-only trigger counts the
// writes each row receives.
import { spawn } from "node:child_process";
import { cp, rename } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestHooks } from "../src/core/options.js";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, tempDir, type TestDatabase } from "./harness/index.js";
import { fixtureArgs } from "./process-helpers.js";
import { expectSameRows, ledgerRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS counters (id int PRIMARY KEY, x int NOT NULL DEFAULT 0)`];
const HITS = [
  `CREATE TABLE IF NOT EXISTS hits (id int PRIMARY KEY, n int NOT NULL)`,
  `CREATE OR REPLACE FUNCTION count_hit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     INSERT INTO hits VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = hits.n + 1; RETURN NULL; END $$`,
  `CREATE OR REPLACE TRIGGER counters_hits AFTER INSERT OR UPDATE ON counters FOR EACH ROW EXECUTE FUNCTION count_hit()`,
];

function runChild(config: object): Promise<{ signal: NodeJS.Signals | null; code: number | null; out: string }> {
  const child = spawn(process.execPath, fixtureArgs("sync-crash.mjs", JSON.stringify(config)), {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, out })));
}

/** Fault injection handed to the clients this file opens (connect option `testHooks`). */
const testHooks: TestHooks = {};

describe("sync: exactly once", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
  });
  afterAll(async () => {
    testHooks.afterRemoteCommit = undefined;
    await remote.drop();
  });

  it("a process killed after a remote COMMIT and before the local clean-up: the next sync applies nothing twice", async () => {
    const dir = path.join(tempDir("ominipg-crash-"), "db");
    const sync = { batchSize: 2, concurrency: 1 };
    // A new directory from the template dump: much faster than a fresh initdb.
    let db = await Ominipg.connect({
      url: dir,
      syncUrl: remote.url,
      schemaSQL: SCHEMA,
      sync,
    });
    await db.query(`INSERT INTO counters (id) SELECT g FROM generate_series(1, 6) g`);
    await db.sync();
    for (const s of HITS) await remote.sql.unsafe(s);
    for (let i = 0; i < 5; i++) await db.query(`UPDATE counters SET x = x + 1`);
    await db.close();

    // 3 batches of 2 rows; killed right after the second one's COMMIT.
    const child = await runChild({ dir, syncUrl: remote.url, schemaSQL: SCHEMA, sync, killAfter: 2 });
    expect(child.signal, child.out).toBe("SIGKILL");
    expect(await ledgerRows(remote.sql)).toBeGreaterThan(0); // the crashed batch's ledger row is still there
    expect(await remote.sql`SELECT id, x FROM counters ORDER BY id`).toEqual(
      [1, 2, 3, 4, 5, 6].map((id) => ({ id, x: id <= 4 ? 5 : 0 })),
    );

    db = await Ominipg.connect({ url: dir, syncUrl: remote.url, schemaSQL: SCHEMA, sync });
    expect(await queued(db)).toBe(20); // rows 3..6: the second batch's entries were never cleaned up locally
    const result = await db.sync();
    expect(result).toMatchObject({ pushed: 10, applied: 2, rejected: 0 }); // rows 5 and 6 only
    await db.query(`SET TimeZone TO 'UTC'`);
    await expectSameRows(db, remote.sql, { counters: "id" });
    expect(await remote.sql`SELECT id, n FROM hits ORDER BY id`).toEqual(
      [1, 2, 3, 4, 5, 6].map((id) => ({ id, n: 1 })),
    );
    expect(await queued(db)).toBe(0);
    expect(await ledgerRows(remote.sql)).toBe(0);
    await db.close();
  });

  it("a lost COMMIT reply: the retried batch finds its ledger row and is not applied again", async () => {
    await remote.sql`TRUNCATE counters, hits`;
    const db = await openSynced(remote.url, SCHEMA, {
      testHooks,
      sync: { batchSize: 3, concurrency: 1, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } },
    });
    await db.query(`INSERT INTO counters (id) SELECT g FROM generate_series(1, 6) g`);
    for (let i = 0; i < 3; i++) await db.query(`UPDATE counters SET x = x + 1`);
    let lost = 0;
    testHooks.afterRemoteCommit = () => {
      if (lost++ === 0) throw Object.assign(new Error("connection reset after COMMIT"), { code: "ECONNRESET" });
    };
    try {
      const result = await db.sync();
      expect(result).toMatchObject({ pushed: 24, rejected: 0 });
    } finally {
      testHooks.afterRemoteCommit = undefined;
    }
    expect(lost).toBe(3); // the failure, its retry, the second batch
    await expectSameRows(db, remote.sql, { counters: "id" });
    expect(await remote.sql`SELECT id, n FROM hits ORDER BY id`).toEqual(
      [1, 2, 3, 4, 5, 6].map((id) => ({ id, n: 1 })),
    );
    expect(await queued(db)).toBe(0);
    expect(await ledgerRows(remote.sql)).toBe(0);
    await db.close();
  });

  it("a copied data directory is another client: a crash leftover of one copy never drops the other's changes", async () => {
    await remote.sql`TRUNCATE counters, hits`;
    const dir = path.join(tempDir("ominipg-copy-"), "db");
    const open = (url: string) =>
      Ominipg.connect({ url, syncUrl: remote.url, schemaSQL: SCHEMA, testHooks, sync: { retry: { attempts: 1 } } });
    let A = await open(dir);
    await A.query(`INSERT INTO counters (id) VALUES (1)`);
    await A.sync();
    const id = (await A.status()).clientId;
    await A.close();
    // Renamed: the same database, the same client id. Copied: a new one, with its own id.
    await rename(dir, `${dir}-moved`);
    A = await open(`${dir}-moved`);
    expect((await A.status()).clientId).toBe(id);
    await A.close();
    await cp(`${dir}-moved`, `${dir}-copy`, { recursive: true });
    A = await open(`${dir}-moved`);
    const B = await open(`${dir}-copy`);
    expect((await A.status()).clientId).toBe(id);
    expect((await B.status()).clientId).not.toBe(id);

    // Both copies continue the same log ids: A's entry and B's entry have the same id.
    await A.query(`INSERT INTO counters (id) VALUES (2)`);
    await B.query(`INSERT INTO counters (id) VALUES (3)`);
    testHooks.afterRemoteCommit = () => {
      throw new Error("crashed after the remote COMMIT");
    };
    await expect(A.sync()).rejects.toThrow();
    testHooks.afterRemoteCommit = undefined;
    expect((await B.sync()).pushed).toBe(1); // not taken for A's applied batch
    expect((await A.sync()).pushed).toBe(0); // A's leftover: settled from the ledger, not applied twice
    expect(await remote.sql`SELECT id FROM counters ORDER BY id`).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(await remote.sql`SELECT id, n FROM hits ORDER BY id`).toEqual([1, 2, 3].map((id) => ({ id, n: 1 })));
    await A.close();
    await B.close();
  });
});
