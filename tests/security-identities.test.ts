// One process serving many users: each client acts as its own identity on the remote, a role (`remoteRole`)
// or JWT-style claims (`remoteClaims`, for policies reading request.jwt.claims), set per remote transaction
// (so PgBouncer in transaction mode keeps working). Row-level security then decides what each client's
// pushes may write and what its pulls see, and its ledger rows are attributed to that identity.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestHooks } from "../src/core/options.js";
import { Ominipg } from "../src/index.js";
import {
  createLoginRoles,
  createTestDatabase,
  dropRoles,
  poolerInfo,
  withAdmin,
  type TestDatabase,
} from "./harness/index.js";

const LOCAL = [
  `CREATE TABLE IF NOT EXISTS docs (id int PRIMARY KEY, owner text NOT NULL, body text NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS posts (id int PRIMARY KEY, sub text NOT NULL, body text NOT NULL)`,
];
const CLAIMED_SUB = `(current_setting('request.jwt.claims', true)::json ->> 'sub')`;

describe("security: one process, one remote identity per client", () => {
  let remote: TestDatabase;
  const suffix = randomBytes(4).toString("hex");
  const [api, tenantA, tenantB] = ["api", "tenant_a", "tenant_b"].map((r) => `ominipg_${r}_${suffix}`) as [
    string,
    string,
    string,
  ];
  let apiUrl: string;
  const hooks: TestHooks = {};
  beforeAll(async () => {
    remote = await createTestDatabase();
    apiUrl = (await createLoginRoles(remote.url, [api]))[api]!;
    await withAdmin(async (sql) => {
      await sql.unsafe(`CREATE ROLE ${tenantA}`);
      await sql.unsafe(`CREATE ROLE ${tenantB}`);
      await sql.unsafe(`GRANT ${tenantA}, ${tenantB} TO ${api}`);
    });
    await remote.sql
      .unsafe(
        `
      CREATE TABLE docs (id int PRIMARY KEY, owner text NOT NULL DEFAULT current_user, body text NOT NULL);
      ALTER TABLE docs ENABLE ROW LEVEL SECURITY; ALTER TABLE docs FORCE ROW LEVEL SECURITY;
      CREATE POLICY own ON docs USING (owner = current_user) WITH CHECK (owner = current_user);
      CREATE TABLE posts (id int PRIMARY KEY, sub text NOT NULL, body text NOT NULL);
      ALTER TABLE posts ENABLE ROW LEVEL SECURITY; ALTER TABLE posts FORCE ROW LEVEL SECURITY;
      CREATE POLICY own ON posts USING (sub = ${CLAIMED_SUB}) WITH CHECK (sub = ${CLAIMED_SUB});
      GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO ${tenantA}, ${tenantB};
      GRANT SELECT, INSERT, UPDATE, DELETE ON posts TO ${api};`,
      )
      .simple();
    for (const role of [tenantA, tenantB, api]) {
      await remote.sql.unsafe(`GRANT USAGE ON SCHEMA public TO ${role}`);
    }
    // Ominipg's ledger, set up by the administrator, with the tenant grants (docs/SECURITY.md).
    const { setUpRemote } = await import("../src/remote/remote.js");
    await setUpRemote(remote.sql as never, [tenantA, tenantB, api]);
  });
  afterAll(async () => {
    await remote.drop();
    await dropRoles([api, tenantA, tenantB]);
  });

  /** A client of one table: each identity is granted only its own table. */
  const open = async (
    syncUrl: string,
    table: "docs" | "posts",
    identity: { remoteRole?: string; remoteClaims?: Record<string, unknown> },
  ) =>
    Ominipg.connect({
      syncUrl,
      schemaSQL: LOCAL,
      remoteSchema: "skip",
      testHooks: hooks,
      sync: { retry: { attempts: 1 }, pull: false, tables: [table] },
      ...identity,
    });

  const ledgerOwners = async () =>
    (await remote.sql.unsafe<{ owner: string }[]>(`SELECT owner FROM public._ominipg_ledger ORDER BY 1`)).map(
      (r) => r.owner,
    );

  it("per-client roles: each client pushes and pulls as its role, and its ledger rows are that role's", async () => {
    const A = await open(apiUrl, "docs", { remoteRole: tenantA });
    const B = await open(apiUrl, "docs", { remoteRole: tenantB });
    try {
      await A.query(`INSERT INTO docs VALUES (1, $1, 'a')`, [tenantA]);
      await B.query(`INSERT INTO docs VALUES (2, $1, 'b')`, [tenantB]);
      expect((await A.sync()).pushed).toBe(1);
      expect((await B.sync()).pushed).toBe(1);
      expect(await remote.sql`SELECT id, owner FROM docs ORDER BY id`).toEqual([
        { id: 1, owner: tenantA },
        { id: 2, owner: tenantB },
      ]);
      // A ledger row left behind (the local clean-up never ran) is attributed to the client's role.
      await A.query(`INSERT INTO docs VALUES (3, $1, 'a3')`, [tenantA]);
      hooks.afterRemoteCommit = () => {
        throw new Error("crashed after the remote COMMIT");
      };
      await expect(A.sync()).rejects.toThrow();
      hooks.afterRemoteCommit = undefined;
      expect(await ledgerOwners()).toEqual([tenantA]);
      expect((await B.status()).remote).toMatchObject({ ledgerRows: 0 });
      expect((await A.sync()).pushed).toBe(0); // settled from its own ledger row
      expect(await ledgerOwners()).toEqual([]);
    } finally {
      await A.close();
      await B.close();
    }
    // A fresh client of each role pulls only its rows, and verify() compares only what it may see.
    for (const [role, ids] of [
      [tenantA, [1, 3]],
      [tenantB, [2]],
    ] as const) {
      const c = await open(apiUrl, "docs", { remoteRole: role });
      try {
        await c.pull();
        expect((await c.query<{ id: number }>(`SELECT id FROM docs ORDER BY id`)).rows.map((r) => r.id)).toEqual(ids);
        expect((await c.verify()).ok).toBe(true);
      } finally {
        await c.close();
      }
    }
  });

  const pooler = poolerInfo();
  const throughs: [string, () => string][] = [["directly", () => apiUrl]];
  if (!("skip" in pooler)) {
    // PgBouncer knows the administrator's login only: it becomes the api role per transaction.
    throughs.push([
      "through PgBouncer (transaction pooling)",
      () => {
        const u = new URL(pooler.url);
        u.pathname = new URL(remote.url).pathname;
        return u.href;
      },
    ]);
  }
  it.each(throughs)("per-client JWT claims, %s: policies see each client's sub", async (_how, url) => {
    const base = 100 * throughs.findIndex(([how]) => how === _how);
    const U1 = await open(url(), "posts", { remoteRole: api, remoteClaims: { sub: "u1", role: "authenticated" } });
    const U2 = await open(url(), "posts", { remoteRole: api, remoteClaims: { sub: "u2" } });
    try {
      await U1.query(`INSERT INTO posts VALUES ($1, 'u1', 'one')`, [base + 1]);
      await U2.query(`INSERT INTO posts VALUES ($1, 'u2', 'two')`, [base + 2]);
      expect((await U1.sync()).pushed).toBe(1);
      expect((await U2.sync()).pushed).toBe(1);
      await U1.query(`INSERT INTO posts VALUES ($1, 'u1', 'three')`, [base + 3]);
      hooks.afterRemoteCommit = () => {
        throw new Error("crashed after the remote COMMIT");
      };
      await expect(U1.sync()).rejects.toThrow();
      hooks.afterRemoteCommit = undefined;
      expect(await ledgerOwners()).toEqual([`${api}/u1`]);
      expect((await U1.sync()).pushed).toBe(0);
    } finally {
      await U1.close();
      await U2.close();
    }
    const fresh = await open(url(), "posts", { remoteRole: api, remoteClaims: { sub: "u2" } });
    try {
      await fresh.pull();
      expect((await fresh.query<{ id: number }>(`SELECT id FROM posts ORDER BY id`)).rows.map((r) => r.id)).toContain(
        base + 2,
      );
      expect((await fresh.query<{ sub: string }>(`SELECT DISTINCT sub FROM posts`)).rows).toEqual([{ sub: "u2" }]);
    } finally {
      await fresh.close();
    }
  });

  it("refuses identity options that cannot work", async () => {
    await expect(Ominipg.connect({ remoteRole: tenantA })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await expect(
      Ominipg.connect({ syncUrl: apiUrl, remoteClaims: "sub=u1" as unknown as Record<string, unknown> }),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    const stranger = await open(apiUrl, "docs", { remoteRole: "ominipg_no_such_role" });
    try {
      await stranger.query(`INSERT INTO docs VALUES (9, 'x', 'x')`);
      await expect(stranger.sync()).rejects.toThrow(/role "ominipg_no_such_role" does not exist/);
      expect((await remote.sql`SELECT count(*)::int AS n FROM docs WHERE id = 9`)[0]).toEqual({ n: 0 });
    } finally {
      await stranger.close();
    }
  });

  it('a role with a "/" in its name is refused: with claims, another role could take its identity', async () => {
    const slashed = `ominipg_t/x_${suffix}`;
    await withAdmin(async (sql) => {
      await sql.unsafe(`CREATE ROLE "${slashed}"`);
      await sql.unsafe(`GRANT "${slashed}" TO ${api}`);
    });
    const { setUpRemote } = await import("../src/remote/remote.js");
    try {
      await expect(setUpRemote(remote.sql as never, [slashed])).rejects.toMatchObject({
        code: "REMOTE_SETUP_FAILED",
        message: expect.stringContaining('has a "/" in its name'),
      });
      const db = await open(apiUrl, "docs", { remoteRole: slashed });
      try {
        await db.query(`INSERT INTO docs VALUES (50, $1, 'x')`, [slashed]);
        await expect(db.sync()).rejects.toMatchObject({ code: "REMOTE_SETUP_FAILED", retryable: false });
        expect((await db.status()).pending).toEqual([{ table: "public.docs", priority: 0, count: 1 }]);
      } finally {
        await db.close();
      }
    } finally {
      await withAdmin((sql) => sql.unsafe(`DROP ROLE IF EXISTS "${slashed}"`));
    }
  });
});
