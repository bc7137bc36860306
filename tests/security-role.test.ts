// The remote role needs only the privileges docs/API.md lists ("Remote privileges"): CONNECT on the
// database, USAGE on the schema, SELECT/INSERT/UPDATE/DELETE on the synced tables and on
// public._ominipg_ledger (created by the admin), USAGE/SELECT/UPDATE on their sequences. A push, a
// verify and leased sequences work with exactly that, and remoteSchema: "skip".
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEDGER_DDL } from "../src/remote/schema.js";
import { Ominipg } from "../src/index.js";
import { createLoginRoles, createTestDatabase, dropRoles, withAdmin, type TestDatabase } from "./harness/index.js";
import { expectSameRows } from "./sync-helpers.js";
import postgres from "postgres";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL, n int NOT NULL DEFAULT 0)`,
  `CREATE TABLE IF NOT EXISTS tags (note_id int NOT NULL REFERENCES notes (id) ON DELETE CASCADE, tag text NOT NULL, PRIMARY KEY (note_id, tag))`,
];

describe("security: a remote role with only the documented privileges", () => {
  let remote: TestDatabase;
  let role: string;
  let roleUrl: string;
  beforeAll(async () => {
    remote = await createTestDatabase();
    const db = new URL(remote.url).pathname.slice(1);
    role = `ominipg_app_${randomBytes(4).toString("hex")}`;
    roleUrl = (await createLoginRoles(remote.url, [role]))[role]!;
    await withAdmin((sql) => sql.unsafe(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`));
    // The admin sets the database up: the app's schema and Ominipg's ledger table (src/remote/schema.ts).
    for (const s of [...SCHEMA, LEDGER_DDL]) await remote.sql.unsafe(s).simple();
    await remote.sql.unsafe(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    await remote.sql.unsafe(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await remote.sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON notes, tags, public._ominipg_ledger TO ${role}`);
    await remote.sql.unsafe(`GRANT USAGE, SELECT, UPDATE ON SEQUENCE notes_id_seq TO ${role}`);
  });
  afterAll(async () => {
    await remote.drop();
    await dropRoles([role]);
  });

  it("the role cannot create anything (the set-up is as restrictive as documented)", async () => {
    const app = postgres(roleUrl, { max: 1, onnotice: () => {} });
    try {
      await expect(app.unsafe(`CREATE TABLE x (id int)`)).rejects.toMatchObject({ code: "42501" });
      await expect(app.unsafe(`TRUNCATE notes`)).rejects.toMatchObject({ code: "42501" });
    } finally {
      await app.end();
    }
  });

  it("push (inserts, updates, key changes, deletes), sequences advanced, verify: all with only those privileges", async () => {
    const errors: unknown[] = [];
    const db = await Ominipg.connect({
      syncUrl: roleUrl,
      schemaSQL: SCHEMA,
      remoteSchema: "skip",
      sync: { batchSize: 3 },
    });
    db.on("error", (e) => errors.push(e));
    try {
      await db.query(`SET TimeZone TO 'UTC'`);
      await db.query(`INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 10) g`);
      await db.query(`INSERT INTO tags SELECT id, 't' || id FROM notes WHERE id % 2 = 0`);
      await db.query(`UPDATE notes SET n = n + 1 WHERE id <= 5`);
      await db.query(`UPDATE notes SET id = 100 WHERE id = 9`);
      await db.query(`DELETE FROM notes WHERE id = 2`);
      expect(await db.sync()).toMatchObject({ rejected: 0 });
      await expectSameRows(db, remote.sql, { notes: "id", tags: "note_id, tag" });
      expect((await db.verify()).ok).toBe(true);
      await remote.sql`UPDATE notes SET n = 42 WHERE id = 1`;
      await db.pull(); // reads only: SELECT on the tables (and on their sequences)
      expect((await db.query(`SELECT n FROM notes WHERE id = 1`)).rows).toEqual([{ n: 42 }]);
      // The remote sequence was moved past the pushed ids (setval needs UPDATE on it).
      expect((await remote.sql`SELECT last_value::int AS v FROM notes_id_seq`)[0]!.v).toBeGreaterThanOrEqual(10);
      expect(await db.syncSequences()).toBeGreaterThanOrEqual(0);
      expect(await remote.sql`SELECT count(*)::int AS n FROM _ominipg_ledger`).toEqual([{ n: 0 }]);
      expect(errors).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it("without grants on the sequence: syncs go on, and warnings say what cannot be done", async () => {
    await remote.sql.unsafe(`REVOKE ALL ON SEQUENCE notes_id_seq FROM ${role}`);
    const db = await Ominipg.connect({ syncUrl: roleUrl, schemaSQL: SCHEMA, remoteSchema: "skip" });
    const warnings: string[] = [];
    db.on("warning", (w) => warnings.push(`${w.code} ${w.table}`));
    try {
      // Ids no other test of this file took: the lease fails, so they are minted locally.
      await db.query(`SELECT setval('notes_id_seq', 100000)`);
      await db.query(`INSERT INTO notes (body) VALUES ('no grants')`);
      // The push's move of the remote sequence failed with permission denied: every sync failed.
      expect(await db.sync()).toMatchObject({ pushed: 1, rejected: 0 });
      await db.query(`INSERT INTO notes (body) VALUES ('no grants')`);
      expect(await db.sync()).toMatchObject({ pushed: 1, rejected: 0 });
      expect(warnings.sort()).toEqual(["SEQUENCE_IDS_MAY_COLLIDE public.notes", "SEQUENCE_LEASE_FAILED public.notes"]);
    } finally {
      await db.close();
      await remote.sql.unsafe(`GRANT USAGE, SELECT, UPDATE ON SEQUENCE notes_id_seq TO ${role}`);
      await remote.sql`DELETE FROM notes WHERE body = 'no grants'`;
    }
  });

  it('sequences: "lease" leases blocks with only USAGE on the sequence', async () => {
    const db = await Ominipg.connect({
      syncUrl: roleUrl,
      schemaSQL: SCHEMA,
      remoteSchema: "skip",
      sequences: "lease",
      leaseSize: 5,
    });
    try {
      await db.sync();
      for (let i = 0; i < 7; i++) await db.query(`INSERT INTO notes (body) VALUES ('leased')`);
      expect(await db.sync()).toMatchObject({ pushed: 7, rejected: 0 });
      expect((await remote.sql`SELECT count(*)::int AS n FROM notes WHERE body = 'leased'`)[0]!.n).toBe(7);
    } finally {
      await db.close();
    }
  });
});
