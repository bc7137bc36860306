// Row-level security: two tenant roles push to and pull from one RLS-protected table (policy owner =
// current_user, USING and WITH CHECK, FORCE ROW LEVEL SECURITY), with exactly the grants of docs/API.md
// ("Remote privileges"). A row a policy refuses is a row-level rejection like any other (traced to the row,
// the rest of its batch lands); a key that collides with a row the tenant cannot see is a rejection too, and
// nothing of the other tenant's row is recorded or emitted; pull and verify see only the tenant's own rows.
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Ominipg, SyncError, type ConflictEvent, type ConnectOptions, type SyncOptions } from "../src/index.js";
import { LEDGER_DDL } from "../src/remote/schema.js";
import { createLoginRoles, createTestDatabase, dropRoles, withAdmin, type TestDatabase } from "./harness/index.js";
import { localRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS notes (id text PRIMARY KEY, owner text NOT NULL, body text NOT NULL, code text UNIQUE)`,
  `CREATE TABLE IF NOT EXISTS tasks (id serial PRIMARY KEY, owner text NOT NULL, title text NOT NULL)`,
];
const SUFFIX = randomBytes(4).toString("hex");
/** Two tenants (roles are cluster-wide: names unique to this file's run). */
const A = `ominipg_rls_a_${SUFFIX}`;
const B = `ominipg_rls_b_${SUFFIX}`;

let remote: TestDatabase;
let urls: Record<string, string> = {};

beforeAll(async () => {
  remote = await createTestDatabase();
  const db = new URL(remote.url).pathname.slice(1);
  urls = await createLoginRoles(remote.url, [A, B]);
  await withAdmin((sql) => sql.unsafe(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`));
  // The administrator sets the database up: the app's tables with their policies, and Ominipg's ledger.
  for (const s of [...SCHEMA, LEDGER_DDL]) await remote.sql.unsafe(s);
  for (const t of ["notes", "tasks"]) {
    await remote.sql.unsafe(`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`);
    await remote.sql.unsafe(`ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`);
    await remote.sql.unsafe(`CREATE POLICY own ON ${t} USING (owner = current_user) WITH CHECK (owner = current_user)`);
  }
  // Exactly docs/API.md's "Remote privileges".
  await remote.sql.unsafe(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
  await remote.sql.unsafe(`GRANT USAGE ON SCHEMA public TO ${A}, ${B}`);
  await remote.sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON notes, tasks, public._ominipg_ledger TO ${A}, ${B}`);
  await remote.sql.unsafe(`GRANT USAGE, SELECT, UPDATE ON SEQUENCE tasks_id_seq TO ${A}, ${B}`);
});

afterAll(async () => {
  await remote?.drop();
  await dropRoles([A, B]);
});

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups = [];
  await remote.sql`TRUNCATE notes, tasks`;
  await remote.sql`DELETE FROM _ominipg_ledger`;
});

interface Tenant {
  db: Ominipg;
  conflicts: ConflictEvent[];
}

/** A client of tenant `role`, with the documented grants and no remote DDL. */
async function tenant(role: string, sync: SyncOptions = {}, extra: Partial<ConnectOptions> = {}): Promise<Tenant> {
  const db = await openSynced(urls[role]!, SCHEMA, {
    remoteSchema: "skip",
    sequences: "advance",
    sync: { retry: { attempts: 2, baseDelayMs: 0, maxDelayMs: 0 }, ...sync },
    ...extra,
  });
  cleanups.push(() => db.close());
  const conflicts: ConflictEvent[] = [];
  db.on("conflict", (c) => conflicts.push(c));
  return { db, conflicts };
}

/** A table of the administrator's (`ddl`), with forced row-level security, these policies and the tenants' grants. */
async function policyTable(ddl: string, table: string, policies: string[]): Promise<void> {
  await remote.sql
    .unsafe(
      `${ddl}; ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${table} FORCE ROW LEVEL SECURITY; ` +
        policies.map((p) => `CREATE POLICY ${p}; `).join("") +
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO ${A}, ${B}`,
    )
    .simple();
}

async function rejected(db: Ominipg): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT table_name, op, row_key, new_row ->> 'owner' AS owner, error_code, error_message FROM _ominipg_rejected ORDER BY queue_ids[1]`,
  );
  return rows;
}

async function remoteNotes(): Promise<{ id: string; owner: string; body: string }[]> {
  return remote.sql<{ id: string; owner: string; body: string }[]>`SELECT id, owner, body FROM notes ORDER BY id`;
}

async function localConflicts(db: Ominipg): Promise<Record<string, unknown>[]> {
  return (await db.query<Record<string, unknown>>(`SELECT row_key, local, remote, resolution FROM _ominipg_conflicts`))
    .rows;
}

describe("a row a policy refuses is a row-level rejection", () => {
  it('onReject "skip": the forged rows are set aside with their cause, the rest of the batch lands', async () => {
    const { db } = await tenant(A, { onReject: "skip", batchSize: 50 });
    await db.query(
      `INSERT INTO notes (id, owner, body) SELECT 'n' || g, $1, 'mine ' || g FROM generate_series(1, 20) g`,
      [A],
    );
    // Forged: a row in the other tenant's name, and one of its own rows handed over to the other tenant.
    await db.query(`INSERT INTO notes (id, owner, body) VALUES ('forged', $1, 'planted')`, [B]);
    expect(await db.sync()).toMatchObject({ pushed: 21, rejected: 1 });
    await db.query(`UPDATE notes SET owner = $1 WHERE id = 'n7'`, [B]);
    await db.query(`UPDATE notes SET body = 'edited' WHERE id = 'n8'`);
    expect(await db.sync()).toMatchObject({ rejected: 1 });
    expect(await queued(db)).toBe(0);

    const kept = await rejected(db);
    expect(kept).toHaveLength(2);
    expect(kept[0]).toMatchObject({ table_name: "notes", op: "I", row_key: { id: "forged" }, owner: B });
    expect(kept[1]).toMatchObject({ table_name: "notes", op: "U", row_key: { id: "n7" }, owner: B });
    for (const r of kept) {
      expect(r.error_code).toBe("42501");
      expect(r.error_message).toContain("row-level security policy");
    }
    // Everything else landed, and nothing in the other tenant's name.
    const rows = await remoteNotes();
    expect(rows.map((r) => r.id).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `n${i + 1}`).sort((x, y) => x.localeCompare(y)),
    );
    expect(rows.every((r) => r.owner === A)).toBe(true);
    expect(rows.find((r) => r.id === "n8")!.body).toBe("edited");
  });

  it('onReject "stop": REMOTE_REJECTED names the table and the key; nothing is lost', async () => {
    const { db } = await tenant(A, { batchSize: 50 });
    await db.query(`INSERT INTO notes (id, owner, body) SELECT 'n' || g, $1, 'mine' FROM generate_series(1, 10) g`, [
      A,
    ]);
    await db.query(`INSERT INTO notes (id, owner, body) VALUES ('forged', $1, 'planted')`, [B]);
    const err = await db.sync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ code: "REMOTE_REJECTED", retryable: false });
    expect((err as Error).message).toContain("public.notes");
    expect((err as Error).message).toContain(`key ("forged")`);
    expect((err as Error).message).toContain("row-level security policy");
    // The forged row is still queued; the others landed (traced to the one row, not the whole batch).
    expect(await queued(db)).toBe(1);
    expect((await remoteNotes()).map((r) => r.id)).not.toContain("forged");
    expect(await remote.sql`SELECT count(*)::int AS n FROM notes`).toEqual([{ n: 10 }]);
    expect(await rejected(db)).toEqual([]);
  });

  it("a run of inserts that would go by COPY: the refused COPY falls back to batches, the forged row is rejected", async () => {
    const { db } = await tenant(A, { onReject: "skip", batchSize: 10 });
    await db.query(
      `INSERT INTO notes (id, owner, body) SELECT 'c' || g, CASE WHEN g = 33 THEN $2 ELSE $1 END, 'bulk' FROM generate_series(1, 60) g`,
      [A, B],
    );
    expect(await db.sync()).toMatchObject({ pushed: 60, rejected: 1 });
    expect(await rejected(db)).toMatchObject([{ row_key: { id: "c33" }, owner: B, error_code: "42501" }]);
    expect(await remote.sql`SELECT count(*)::int AS n FROM notes WHERE owner = ${A}`).toEqual([{ n: 59 }]);
  });
});

describe("a table the tenant may write but not read (an audit log)", () => {
  const EVENTS = `CREATE TABLE IF NOT EXISTS events (id text PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`;
  beforeAll(() =>
    policyTable(EVENTS, "events", [
      `file ON events FOR INSERT WITH CHECK (owner = current_user)`,
      `audit ON events FOR SELECT USING (current_user = 'an_auditor')`,
    ]),
  );

  it("its inserts land as a plain INSERT would (ON CONFLICT needs them readable); a forged one is still refused", async () => {
    const { db } = await tenant(A, { onReject: "skip" }, { schemaSQL: [...SCHEMA, EVENTS] });
    await db.query(`INSERT INTO events VALUES ('e1', $1, 'one'), ('e2', $1, 'two')`, [A]);
    expect(await db.sync()).toMatchObject({ pushed: 2, applied: 2, rejected: 0 });
    await db.query(`INSERT INTO events VALUES ('e3', $1, 'three'), ('e4', $2, 'forged')`, [A, B]);
    expect(await db.sync()).toMatchObject({ pushed: 2, applied: 1, rejected: 1 });
    expect(await rejected(db)).toEqual([expect.objectContaining({ row_key: { id: "e4" }, error_code: "42501" })]);
    expect(await remote.sql`SELECT id, owner FROM events ORDER BY id`).toEqual(
      ["e1", "e2", "e3"].map((id) => ({ id, owner: A })),
    );
    expect(await queued(db)).toBe(0);
  });

  it("batches of one row each, several at once: every one lands (each batch judged by the statement it sent)", async () => {
    const sync = { onReject: "stop", batchSize: 1, concurrency: 4, copyBatchSize: 0 } as const;
    const { db } = await tenant(A, sync, { schemaSQL: [...SCHEMA, EVENTS] });
    for (let i = 0; i < 8; i++) await db.query(`INSERT INTO events VALUES ($1, $2, 'x')`, [`c${i}`, A]);
    expect(await db.sync()).toMatchObject({ pushed: 8, applied: 8, rejected: 0 });
  });
});

describe("a delete a policy hides (read all, write your own)", () => {
  const SHARED = `CREATE TABLE IF NOT EXISTS shared (id text PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`;
  beforeAll(() =>
    policyTable(SHARED, "shared", [
      `see ON shared FOR SELECT USING (true)`,
      `ins ON shared FOR INSERT WITH CHECK (owner = current_user)`,
      `upd ON shared FOR UPDATE USING (owner = current_user)`,
      `del ON shared FOR DELETE USING (owner = current_user)`,
    ]),
  );
  afterEach(async () => {
    await remote.sql`TRUNCATE shared`;
  });
  const seed = () =>
    remote.sql`INSERT INTO shared VALUES ('s1', ${B}, 'B''s'), ('s2', ${A}, 'A''s'), ('s3', ${A}, 'A''s')`;

  it("its batch applied already (the COMMIT reply lost): the row is still read again", async () => {
    await seed();
    let lost = 0;
    const testHooks = {
      afterRemoteCommit: () => {
        if (lost++ === 0) throw Object.assign(new Error("connection reset after COMMIT"), { code: "ECONNRESET" });
      },
    };
    const { db } = await tenant(A, {}, { schemaSQL: [...SCHEMA, SHARED], testHooks });
    await db.pull();
    await db.query(`DELETE FROM shared WHERE id = 's1'`);
    await db.sync();
    expect(lost).toBe(2); // the lost reply, then the retry that found the batch applied
    expect((await db.query(`SELECT count(*)::int AS n FROM _ominipg_reread`)).rows).toEqual([{ n: 1 }]);
  });

  it("its batch settled from the ledger after a crash past the remote COMMIT: its deletes are read again", async () => {
    await seed();
    let crashed = false;
    const testHooks = {
      afterRemoteCommit: () => {
        if (crashed) return;
        crashed = true;
        throw new Error("crashed after the remote COMMIT");
      },
    };
    const { db } = await tenant(A, { retry: { attempts: 1 } }, { schemaSQL: [...SCHEMA, SHARED], testHooks });
    db.on("error", () => {});
    await db.pull();
    await db.query(`DELETE FROM shared WHERE id = 's1'`);
    await expect(db.sync()).rejects.toThrow(/crashed/);
    expect(await db.sync()).toMatchObject({ pushed: 0 }); // settled from the ledger
    expect((await db.query(`SELECT count(*)::int AS n FROM _ominipg_reread`)).rows).toEqual([{ n: 1 }]);
  });

  it("is not carried out and not refused: the next pull brings the row back", async () => {
    await seed();
    const { db } = await tenant(A, {}, { schemaSQL: [...SCHEMA, SHARED] });
    await db.pull();
    await db.query(`DELETE FROM shared WHERE id IN ('s1', 's2')`); // PostgreSQL deletes s2 alone, silently
    expect(await db.sync()).toMatchObject({ pushed: 2, applied: 1, rejected: 0 });
    expect((await remote.sql`SELECT id FROM shared ORDER BY id`).map((r) => r.id)).toEqual(["s1", "s3"]);
    await db.pull();
    expect((await db.query(`SELECT id FROM shared ORDER BY id`)).rows.map((r) => r.id)).toEqual(["s1", "s3"]);
  });
});

describe("a row the tenant may see but not update (read all, write your own)", () => {
  // Table "shared" of the block above. FOR UPDATE passes over such a row: the push's check took it for a row
  // deleted remotely, a conflict, which remote-wins and merge settled by deleting the row locally.
  afterEach(async () => {
    await remote.sql`TRUNCATE shared`;
  });
  it.each(["remote-wins", "merge", "resolver", "overwrite"] as const)(
    "%s: an update or key change of another tenant's row is refused as onReject says, not a conflict; the row stays",
    async (strategy) => {
      await remote.sql`INSERT INTO shared VALUES ('s1', ${B}, 'B''s'), ('s2', ${B}, 'B''s'), ('s3', ${A}, 'A''s')`;
      const asked: unknown[] = [];
      const conflicts: SyncOptions["conflicts"] = strategy === "resolver" ? (c) => (asked.push(c), "remote") : strategy;
      const { db, conflicts: events } = await tenant(
        A,
        { onReject: "skip", conflicts },
        {
          schemaSQL: [
            ...SCHEMA,
            `CREATE TABLE IF NOT EXISTS shared (id text PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`,
          ],
        },
      );
      await db.pull();
      await db.query(`UPDATE shared SET body = 'edited by A' WHERE id = 's1'`);
      await db.query(`UPDATE shared SET id = 's2-moved' WHERE id = 's2'`);
      await db.query(`UPDATE shared SET body = 'edited by A' WHERE id = 's3'`);
      expect(await db.sync()).toMatchObject({ rejected: 2 });
      expect((await db.query(`SELECT row_key FROM _ominipg_rejected ORDER BY 1`)).rows).toEqual([
        { row_key: { id: "s1" } },
        { row_key: { id: "s2" } },
      ]);
      expect([asked, events, await localConflicts(db)]).toEqual([[], [], []]);
      expect(await remote.sql`SELECT id, body FROM shared ORDER BY id`).toEqual([
        { id: "s1", body: "B's" },
        { id: "s2", body: "B's" },
        { id: "s3", body: "edited by A" },
      ]);
      await db.pull();
      expect((await db.query(`SELECT id, body FROM shared ORDER BY id`)).rows).toEqual([
        { id: "s1", body: "B's" },
        { id: "s2", body: "B's" },
        { id: "s3", body: "edited by A" },
      ]);
    },
  );

  it("a delete of a row the tenant may delete but not update, changed remotely meanwhile, is a conflict", async () => {
    const T = `CREATE TABLE IF NOT EXISTS board (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`;
    await remote.sql.unsafe(
      `${T};
       ALTER TABLE board ENABLE ROW LEVEL SECURITY;
       CREATE POLICY see ON board FOR SELECT USING (true);
       CREATE POLICY upd ON board FOR UPDATE USING (owner = current_user);
       CREATE POLICY del ON board FOR DELETE USING (true);
       GRANT SELECT, INSERT, UPDATE, DELETE ON board TO ${A}, ${B};
       INSERT INTO board VALUES (1, '${B}', 'v1'), (2, '${A}', 'v1'), (3, '${B}', 'v1');`,
    );
    const { db, conflicts } = await tenant(A, { conflicts: "remote-wins" }, { schemaSQL: [...SCHEMA, T] });
    await db.pull();
    await remote.sql`UPDATE board SET body = 'v2' WHERE id IN (1, 2)`;
    await db.query(`DELETE FROM board`);
    await db.sync();
    // Rows 1 (B's) and 2 (A's) changed remotely: kept, as remote-wins says; row 3 deleted.
    expect(conflicts.map((c) => c.key).sort((a, b) => Number(a.id) - Number(b.id))).toEqual([{ id: 1 }, { id: 2 }]);
    expect(await remote.sql`SELECT id, body FROM board ORDER BY id`).toEqual([
      { id: 1, body: "v2" },
      { id: 2, body: "v2" },
    ]);
  });
});

describe("a row another session deletes or re-keys while the push waits for it", () => {
  // Under row-level security the check also lets through a row the snapshot shows but FOR UPDATE passed over (the
  // role may see it but not update it): a row deleted or re-keyed meanwhile is one too, and must not be written back.
  it.each([`DELETE FROM notes WHERE id = 'n1'`, `UPDATE notes SET id = 'n2' WHERE id = 'n1'`])(
    "%s: a conflict, settled as remote-wins says; the row is not written back",
    async (change) => {
      const { db, conflicts } = await tenant(A, { conflicts: "remote-wins", retry: { attempts: 3, baseDelayMs: 0 } });
      await db.query(`INSERT INTO notes (id, owner, body) VALUES ('n1', '${A}', 'v1')`);
      await db.sync();
      await db.query(`UPDATE notes SET body = 'local', owner = '${A}', code = NULL WHERE id = 'n1'`); // a whole row
      const other = await remote.sql.reserve();
      try {
        await other`BEGIN`;
        await other.unsafe(change);
        const sync = db.sync();
        await expect
          .poll(
            async () =>
              (await remote.sql`SELECT 1 FROM pg_stat_activity WHERE usename = ${A} AND wait_event_type = 'Lock'`)
                .length,
          )
          .toBe(1);
        await other`COMMIT`;
        expect(await sync).toMatchObject({ conflicts: 1 });
      } finally {
        other.release();
      }
      expect(conflicts).toHaveLength(1);
      expect(await remote.sql`SELECT id, body FROM notes WHERE id = 'n1'`).toEqual([]);
    },
  );
});

describe("a key collision with a row the tenant cannot see", () => {
  it.each(["overwrite", "remote-wins", "merge", "resolver"] as const)(
    "%s: a rejection, with nothing of the other tenant's row recorded or emitted",
    async (strategy) => {
      let asked = 0;
      const conflicts: SyncOptions["conflicts"] =
        strategy === "resolver"
          ? () => {
              asked++;
              return "local";
            }
          : strategy;
      const b = await tenant(B);
      await b.db.query(`INSERT INTO notes (id, owner, body, code) VALUES ('shared-key', $1, 'secret of B', 'b-code')`, [
        B,
      ]);
      await b.db.sync();
      const a = await tenant(A, { onReject: "skip", conflicts, batchSize: 50 });
      await a.db.query(`INSERT INTO notes (id, owner, body) SELECT 'a' || g, $1, 'mine' FROM generate_series(1, 9) g`, [
        A,
      ]);
      await a.db.query(`INSERT INTO notes (id, owner, body) VALUES ('shared-key', $1, 'by A')`, [A]);
      expect(await a.db.sync()).toMatchObject({ pushed: 10, rejected: 1, conflicts: 0 });
      expect(asked).toBe(0);
      expect(a.conflicts).toEqual([]);
      expect(await localConflicts(a.db)).toEqual([]);
      const [kept] = await rejected(a.db);
      expect(kept).toMatchObject({ row_key: { id: "shared-key" }, owner: A, error_code: "23505" });
      expect(JSON.stringify(kept)).not.toContain("secret of B");
      expect(JSON.stringify(kept)).not.toContain(B);
      // B's row is untouched; A's other rows landed.
      expect(await remote.sql`SELECT owner, body FROM notes WHERE id = 'shared-key'`).toEqual([
        { owner: B, body: "secret of B" },
      ]);
      expect(await remote.sql`SELECT count(*)::int AS n FROM notes WHERE owner = ${A}`).toEqual([{ n: 9 }]);
      // The pull cannot bring B's row either: the rejected row is kept in _ominipg_rejected only.
      await a.db.pull();
      expect((await a.db.query(`SELECT owner, body FROM notes WHERE id = 'shared-key'`)).rows).toEqual([]);
    },
  );

  it('onReject "stop": REMOTE_REJECTED names the table and key, without the other row', async () => {
    const b = await tenant(B);
    await b.db.query(`INSERT INTO notes (id, owner, body) VALUES ('taken', $1, 'secret of B')`, [B]);
    await b.db.sync();
    const a = await tenant(A);
    await a.db.query(`INSERT INTO notes (id, owner, body) VALUES ('taken', $1, 'by A')`, [A]);
    const err = await a.db.sync().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "REMOTE_REJECTED", retryable: false });
    expect((err as Error).message).toContain(`public.notes key ("taken")`);
    expect((err as Error).message).not.toContain("secret of B");
    expect(await queued(a.db)).toBe(1);
    expect(a.conflicts).toEqual([]);
  });

  it("ON CONFLICT against a row that became invisible (handed to the other tenant): rejected, never written over", async () => {
    const a = await tenant(A, { onReject: "skip" });
    await a.db.query(`INSERT INTO notes (id, owner, body) VALUES ('moved', $1, 'v1')`, [A]);
    await a.db.sync();
    // The administrator hands the row to B; A, offline, edits it.
    await remote.sql.unsafe(`UPDATE notes SET owner = '${B}', body = 'now B''s' WHERE id = 'moved'`);
    await a.db.query(`UPDATE notes SET body = 'v2' WHERE id = 'moved'`);
    const result = await a.db.sync();
    expect(result.rejected).toBe(1);
    for (const c of [...a.conflicts, ...(await localConflicts(a.db))]) {
      expect(JSON.stringify(c)).not.toContain("now B");
      expect(JSON.stringify(c)).not.toContain(B);
    }
    expect(await remote.sql`SELECT owner, body FROM notes WHERE id = 'moved'`).toEqual([{ owner: B, body: "now B's" }]);
  });

  it("a unique value on another column that only the other tenant's row holds: rejected, its detail names nothing of B", async () => {
    const b = await tenant(B);
    await b.db.query(`INSERT INTO notes (id, owner, body, code) VALUES ('b1', $1, 'secret of B', 'XYZ')`, [B]);
    await b.db.sync();
    const a = await tenant(A, { onReject: "skip" });
    await a.db.query(
      `INSERT INTO notes (id, owner, body, code) VALUES ('a1', $1, 'mine', 'XYZ'), ('a2', $1, 'mine', 'ok')`,
      [A],
    );
    expect(await a.db.sync()).toMatchObject({ rejected: 1 });
    const [kept] = await rejected(a.db);
    expect(kept).toMatchObject({ row_key: { id: "a1" }, error_code: "23505" });
    expect(String(kept!.error_message)).not.toContain("b1");
    expect(String(kept!.error_message)).not.toContain("secret");
  });
});

describe("pull and verify under each tenant's role", () => {
  it("each tenant's pull brings only its own rows, and verify compares only those", async () => {
    const a = await tenant(A);
    const b = await tenant(B);
    await a.db.query(`INSERT INTO notes (id, owner, body) SELECT 'a' || g, $1, 'of A' FROM generate_series(1, 5) g`, [
      A,
    ]);
    await b.db.query(`INSERT INTO notes (id, owner, body) SELECT 'b' || g, $1, 'of B' FROM generate_series(1, 7) g`, [
      B,
    ]);
    await a.db.sync();
    await b.db.sync();
    await remote.sql`INSERT INTO notes (id, owner, body) VALUES ('server-a', ${A}, 'from the server'), ('server-b', ${B}, 'from the server')`;
    for (const [t, role, n] of [
      [a, A, 6],
      [b, B, 8],
    ] as const) {
      await t.db.pull();
      const rows = (await t.db.query<{ owner: string }>(`SELECT owner FROM notes`)).rows;
      expect(rows).toHaveLength(n);
      expect(rows.every((r) => r.owner === role)).toBe(true);
      expect((await t.db.verify()).ok).toBe(true);
    }
    // A fresh client of A starts with A's rows only.
    const fresh = await tenant(A);
    await fresh.db.pull();
    expect(await localRows(fresh.db, "notes", "id")).toEqual(await localRows(a.db, "notes", "id"));
  });
});
