// Ominipg's own remote table, the ledger, is protected per tenant (docs/SECURITY.md): with the documented
// grants, and even after an administrator grants broadly (GRANT ALL ON ALL TABLES IN SCHEMA public), a tenant
// can neither read, claim for, change nor delete another client's ledger rows, nor truncate the table; a
// forged ledger row never makes another client drop its own pending changes. Set up by `ominipg setup`;
// an older ledger is upgraded in place by a privileged client, and an unprivileged one is told what to run.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestHooks } from "../src/core/options.js";
import { Ominipg } from "../src/index.js";
import { createLoginRoles, createTestDatabase, dropRoles, withAdmin, type TestDatabase } from "./harness/index.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text NOT NULL)`];
const LEDGER = "public._ominipg_ledger";
/** The ledger as it was before per-tenant protection (v1). */
const V1_LEDGER = `CREATE TABLE ${LEDGER} (client_id uuid NOT NULL, batch_id bigint NOT NULL, entry_ranges int8[] NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (client_id, batch_id))`;

function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "..", "dist", "cli", "main.js"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, out })));
}

describe("security: per-tenant protection of Ominipg's remote tables", () => {
  let remote: TestDatabase;
  const suffix = randomBytes(4).toString("hex");
  const roles = [`ominipg_tenant_a_${suffix}`, `ominipg_tenant_b_${suffix}`] as const;
  let urls: string[] = [];
  const hooks: TestHooks = {};
  beforeAll(async () => {
    remote = await createTestDatabase();
    for (const s of SCHEMA) await remote.sql.unsafe(s);
    const byRole = await createLoginRoles(remote.url, roles);
    urls = roles.map((role) => byRole[role]!);
    // A remote table with row-level security and no REPLICA IDENTITY FULL: setup names it (the feed needs it).
    await remote.sql
      .unsafe(
        `CREATE TABLE "Team docs" (id int PRIMARY KEY, team text); ALTER TABLE "Team docs" ENABLE ROW LEVEL SECURITY`,
      )
      .simple();
    const setup = await cli(["setup", "--remote", remote.url, "--grant", roles[0], "--grant", roles[1]]);
    expect(setup.out).toContain("set up");
    expect(setup.out).toMatch(/replica identity is not FULL: public\."Team docs"\. .*REPLICA IDENTITY FULL/);
    expect(setup.code).toBe(0);
    await remote.sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO ${roles[0]}, ${roles[1]}`);
    // The administrator then grants broadly: the ledger's protection must not depend on privileges.
    await remote.sql.unsafe(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${roles[1]}`);
  });
  afterAll(async () => {
    await remote.drop();
    await dropRoles(roles);
  });

  const open = async (url: string) =>
    Ominipg.connect({
      syncUrl: url,
      schemaSQL: SCHEMA,
      remoteSchema: "skip",
      testHooks: hooks,
      sync: { retry: { attempts: 1 } },
    });

  it("a tenant cannot read, claim for, change, delete or truncate another client's ledger rows", async () => {
    const A = await open(urls[0]!);
    const B = postgres(urls[1]!, { max: 1, onnotice: () => {} });
    try {
      // A leaves a ledger row behind: its batch committed remotely, its local clean-up never ran.
      await A.query(`INSERT INTO notes VALUES (1, 'a1')`);
      hooks.afterRemoteCommit = () => {
        throw new Error("crashed after the remote COMMIT");
      };
      await expect(A.sync()).rejects.toThrow();
      hooks.afterRemoteCommit = undefined;
      const clientA = (await A.status()).clientId!;
      expect((await A.status()).remote).toMatchObject({ ledgerRows: 1 });

      expect(await B.unsafe(`SELECT * FROM ${LEDGER}`)).toHaveLength(0);
      expect(await B.unsafe(`SELECT * FROM ${LEDGER} WHERE client_id = $1`, [clientA])).toHaveLength(0);
      await expect(
        B.unsafe(`INSERT INTO ${LEDGER} (owner, client_id, batch_id, entry_ranges) VALUES ($1, $2, 5, '{1,1000}')`, [
          roles[0],
          clientA,
        ]),
      ).rejects.toMatchObject({ code: "42501" });
      expect(
        (await B.unsafe(`UPDATE ${LEDGER} SET entry_ranges = '{1,1}' WHERE client_id = $1`, [clientA])).count,
      ).toBe(0);
      expect((await B.unsafe(`DELETE FROM ${LEDGER} WHERE client_id = $1`, [clientA])).count).toBe(0);
      await expect(B.unsafe(`TRUNCATE ${LEDGER}`)).rejects.toMatchObject({ code: "42501" });
      // Rows B writes are B's, whatever client id they name: claims for every batch A may push next.
      await B.unsafe(
        `INSERT INTO ${LEDGER} (client_id, batch_id, entry_ranges) SELECT $1, g, ARRAY[g, g + 1000] FROM generate_series(1, 50) g`,
        [clientA],
      );
      expect(await remote.sql.unsafe(`SELECT owner, count(*)::int AS n FROM ${LEDGER} GROUP BY 1 ORDER BY 1`)).toEqual([
        { owner: roles[0], n: 1 },
        { owner: roles[1], n: 50 },
      ]);

      // A's next sync settles its own leftover and pushes its new changes: none is taken for applied.
      await A.query(`INSERT INTO notes VALUES (2, 'a2')`);
      await A.query(`UPDATE notes SET body = 'a1 changed' WHERE id = 1`);
      expect((await A.sync()).pushed).toBe(2);
      expect(await remote.sql`SELECT id, body FROM notes ORDER BY id`).toEqual([
        { id: 1, body: "a1 changed" },
        { id: 2, body: "a2" },
      ]);
      expect((await A.verify()).ok).toBe(true);
      expect((await A.status()).remote).toMatchObject({ ledgerRows: 0 });
      expect(await remote.sql.unsafe(`SELECT count(*)::int AS n FROM ${LEDGER} WHERE owner = $1`, [roles[1]])).toEqual([
        { n: 50 },
      ]);
    } finally {
      await A.close();
      await B.end();
    }
  });

  it("a client under a role that skips policies (the administrator) is not fooled by forged rows either", async () => {
    const admin = await open(remote.url);
    const B = postgres(urls[1]!, { max: 1, onnotice: () => {} });
    try {
      const id = (await admin.status()).clientId!;
      await B.unsafe(
        `INSERT INTO ${LEDGER} (client_id, batch_id, entry_ranges) SELECT $1, g, ARRAY[g, g + 1000] FROM generate_series(1, 50) g`,
        [id],
      );
      await admin.query(`INSERT INTO notes VALUES (10, 'admin')`);
      expect((await admin.sync()).pushed).toBe(1);
      expect(await remote.sql`SELECT body FROM notes WHERE id = 10`).toEqual([{ body: "admin" }]);
    } finally {
      await admin.close();
      await B.end();
    }
  });

  it("an older ledger: an unprivileged client is told to run ominipg setup; a privileged one upgrades it in place", async () => {
    const old = await createTestDatabase();
    const db = new URL(old.url).pathname.slice(1);
    try {
      for (const s of [...SCHEMA, V1_LEDGER]) await old.sql.unsafe(s);
      await old.sql.unsafe(`INSERT INTO ${LEDGER} VALUES ('00000000-0000-0000-0000-000000000001', 7, '{7,9}')`);
      await withAdmin((sql) => sql.unsafe(`GRANT CONNECT ON DATABASE ${db} TO ${roles[0]}`));
      await old.sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON notes, ${LEDGER} TO ${roles[0]}`);
      const url = new URL(urls[0]!);
      url.pathname = `/${db}`;
      const tenant = await open(url.href);
      try {
        await tenant.query(`INSERT INTO notes VALUES (1, 'x')`);
        const err = await tenant.sync().catch((e: unknown) => e);
        expect(err).toMatchObject({ code: "REMOTE_SETUP_FAILED", retryable: false });
        expect(String((err as Error).message)).toContain("ominipg setup");
      } finally {
        await tenant.close();
      }
      const privileged = await open(old.url);
      try {
        await privileged.query(`INSERT INTO notes VALUES (2, 'y')`);
        expect((await privileged.sync()).pushed).toBe(1);
      } finally {
        await privileged.close();
      }
      const [table] = await old.sql.unsafe<{ rls: boolean; forced: boolean; version: string }[]>(
        `SELECT relrowsecurity AS rls, relforcerowsecurity AS forced, obj_description(oid, 'pg_class') AS version
           FROM pg_class WHERE oid = '${LEDGER}'::regclass`,
      );
      expect(table).toEqual({ rls: true, forced: true, version: "ominipg ledger v2" });
      expect(await old.sql.unsafe(`SELECT owner, batch_id::int AS b FROM ${LEDGER}`)).toEqual([{ owner: "", b: 7 }]);
      expect((await cli(["setup", "--print"])).out).toContain("FORCE ROW LEVEL SECURITY");
    } finally {
      await old.drop();
    }
  });
});
