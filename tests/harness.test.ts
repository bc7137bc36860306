import { existsSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { adminUrl, createTestDatabase, pgliteTemplate, tempDir, unreachableUrl } from "./harness/index.js";

describe("test harness", () => {
  it("creates a fresh database on a real PostgreSQL server", async () => {
    const db = await createTestDatabase();
    try {
      await db.sql`create table t (id int primary key, name text not null)`;
      await db.sql`insert into t ${db.sql({ id: 1, name: "one" })}`;
      expect(await db.sql`select id, name from t`).toEqual([{ id: 1, name: "one" }]);

      const [{ wal_level } = { wal_level: "" }] = await db.sql<{ wal_level: string }[]>`show wal_level`;
      if (!process.env["OMINIPG_TEST_REMOTE_URL"] || wal_level === "logical") {
        expect(wal_level).toBe("logical");
      }
    } finally {
      await db.drop();
    }
    const admin = postgres(adminUrl(), { max: 1 });
    try {
      const name = new URL(db.url).pathname.slice(1);
      expect(await admin`select 1 from pg_database where datname = ${name}`).toHaveLength(0);
    } finally {
      await admin.end();
    }
  });

  it("restores PGlite from the template dump", async () => {
    const pg = await PGlite.create({ loadDataDir: await pgliteTemplate() });
    try {
      expect((await pg.query<{ one: number }>("select 1 as one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await pg.close();
    }
  });

  it("gives a URL that refuses connections", async () => {
    const sql = postgres(unreachableUrl(), { max: 1, connect_timeout: 5 });
    try {
      await expect(sql`select 1`).rejects.toMatchObject({ code: "ECONNREFUSED" });
    } finally {
      await sql.end();
    }
  });

  let dir = "";
  it("makes temp dirs", () => {
    dir = tempDir("ominipg-harness-");
    expect(existsSync(dir)).toBe(true);
  });
  it("removed the previous test's temp dir", () => {
    expect(dir).not.toBe("");
    expect(existsSync(dir)).toBe(false);
  });
});
