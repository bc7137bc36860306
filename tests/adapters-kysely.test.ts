import { Kysely, sql, type Generated, type Insertable, type Selectable } from "kysely";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { OminipgDialect } from "../src/adapters/kysely.js";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";

interface UsersTable {
  id: Generated<number>;
  name: string;
  email: string | null;
  meta: { tags: string[] } | null;
}
interface Database {
  users: UsersTable;
}

const schemaSQL = [
  `CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, meta jsonb)`,
];

describe("ominipg/kysely", () => {
  let remote: TestDatabase;
  let db: Ominipg;
  let k: Kysely<Database>;

  beforeAll(async () => {
    remote = await createTestDatabase();
    db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL });
    k = new Kysely<Database>({ dialect: new OminipgDialect({ client: db }) });
  });
  afterAll(async () => {
    await k?.destroy();
    await db?.close();
    await remote?.drop();
  });

  const queued = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`)).rows[0]!.n;
  const remoteUsers = async () =>
    (await remote.sql`SELECT id, name, email, meta FROM users ORDER BY id`).map((r) => ({ ...r }));

  it("inserts, updates, deletes and selects through query(), captured and synced", async () => {
    const ada = await k
      .insertInto("users")
      .values({ name: "Ada", email: "ada@x", meta: { tags: ["math"] } })
      .returningAll()
      .executeTakeFirstOrThrow();
    expect(ada).toEqual({ id: 1, name: "Ada", email: "ada@x", meta: { tags: ["math"] } });
    expectTypeOf(ada).toEqualTypeOf<Selectable<UsersTable>>();

    const rows: Insertable<UsersTable>[] = [
      { name: "Bob", email: "bob@x" },
      { name: "Cy", email: "cy@x" },
    ];
    const ins = await k.insertInto("users").values(rows).executeTakeFirstOrThrow();
    expect(ins.numInsertedOrUpdatedRows).toBe(2n);

    const upd = await k
      .updateTable("users")
      .set({ meta: sql`'{"tags":["eng"]}'::jsonb` })
      .where("email", "=", "bob@x")
      .executeTakeFirstOrThrow();
    expect(upd.numUpdatedRows).toBe(1n);
    const renamed = await k
      .updateTable("users")
      .set({ name: "Cyrus" })
      .where("id", "=", 3)
      .returning(["id", "name"])
      .execute();
    expect(renamed).toEqual([{ id: 3, name: "Cyrus" }]);
    const del = await k.deleteFrom("users").where("email", "=", "ada@x").executeTakeFirstOrThrow();
    expect(del.numDeletedRows).toBe(1n);
    const none = await k.deleteFrom("users").where("id", "=", 999).executeTakeFirstOrThrow();
    expect(none.numDeletedRows).toBe(0n);

    const bob = await k
      .selectFrom("users")
      .select(["id", "name", "meta"])
      .where("name", "=", "Bob")
      .where(sql<boolean>`meta->'tags' ? 'eng'`)
      .execute();
    expect(bob).toEqual([{ id: 2, name: "Bob", meta: { tags: ["eng"] } }]);
    const count = await k
      .selectFrom("users")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(2);
    expect(await queued()).toBeGreaterThan(0);

    await db.sync();
    expect(await queued()).toBe(0);
    expect(await remoteUsers()).toEqual([
      { id: 2, name: "Bob", email: "bob@x", meta: { tags: ["eng"] } },
      { id: 3, name: "Cyrus", email: "cy@x", meta: null },
    ]);
  });

  it("runs a transaction that commits, and rolls back one that throws (nothing local, nothing queued)", async () => {
    const id = await k.transaction().execute(async (trx) => {
      const dee = await trx
        .insertInto("users")
        .values({ name: "Dee", email: "dee@x" })
        .returning("id")
        .executeTakeFirstOrThrow();
      await trx.updateTable("users").set({ name: "Bob B." }).where("id", "=", 2).execute();
      return dee.id;
    });
    expect(id).toBe(4);
    const before = await queued();

    const boom = new Error("boom");
    const err = await k
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto("users").values({ name: "Eve", email: "eve@x" }).execute();
        await trx.deleteFrom("users").where("id", "=", 2).execute();
        expect(await trx.selectFrom("users").selectAll().where("email", "=", "eve@x").execute()).toHaveLength(1);
        throw boom;
      })
      .catch((e: unknown) => e);
    expect(err).toBe(boom);
    // A failing statement (caught in the callback or not) rolls the whole transaction back.
    await expect(
      k.transaction().execute(async (trx) => {
        await trx.insertInto("users").values({ name: "Gus", email: "gus@x" }).execute();
        await trx.insertInto("users").values({ name: "Bob again", email: "bob@x" }).execute();
      }),
    ).rejects.toMatchObject({ code: "23505" });
    await expect(
      k.transaction().execute(async (trx) => {
        await trx.insertInto("users").values({ name: "Hal", email: "hal@x" }).execute();
        await trx
          .insertInto("users")
          .values({ name: "Bob again", email: "bob@x" })
          .execute()
          .catch(() => {});
      }),
    ).rejects.toMatchObject({ code: "TRANSACTION_ABORTED" });

    expect(await k.selectFrom("users").select("email").orderBy("id").execute()).toEqual([
      { email: "bob@x" },
      { email: "cy@x" },
      { email: "dee@x" },
    ]);
    expect(await queued()).toBe(before);
    const leaked = await db.query(
      `SELECT count(*)::int AS n FROM _sync_queue WHERE new_row->>'email' IN ('eve@x', 'gus@x', 'hal@x') OR op = 'D'`,
    );
    expect(leaked.rows).toEqual([{ n: 0 }]);

    await db.sync();
    expect(await remoteUsers()).toEqual([
      { id: 2, name: "Bob B.", email: "bob@x", meta: { tags: ["eng"] } },
      { id: 3, name: "Cyrus", email: "cy@x", meta: null },
      { id: 4, name: "Dee", email: "dee@x", meta: null },
    ]);
  });

  it("serializes transactions: two never interleave, and outside queries wait for them", async () => {
    const events: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let begun!: () => void;
    const firstBegun = new Promise<void>((r) => (begun = r));
    const first = k.transaction().execute(async (trx) => {
      events.push("first:begin");
      await trx.insertInto("users").values({ name: "T1", email: "t1@x" }).execute();
      begun();
      await held;
      await trx.deleteFrom("users").where("email", "=", "t1@x").execute();
      events.push("first:end");
    });
    await firstBegun;
    const second = k.transaction().execute(async (trx) => {
      events.push("second:begin");
      // Runs after the first committed: its row, inserted and deleted inside it, was never seen outside.
      expect(await trx.selectFrom("users").select("id").where("email", "=", "t1@x").execute()).toEqual([]);
      events.push("second:end");
    });
    const outside = k
      .selectFrom("users")
      .select("email")
      .where("email", "=", "t1@x")
      .execute()
      .then((r) => {
        events.push(`outside:${r.length}`);
      });
    const direct = db.query(`SELECT count(*)::int AS n FROM users WHERE email = 't1@x'`).then((r) => {
      events.push(`direct:${r.rows[0]!.n}`);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual(["first:begin"]);
    release();
    await Promise.all([first, second, outside, direct]);
    expect(events.slice(0, 2)).toEqual(["first:begin", "first:end"]);
    expect(events).toContain("second:end");
    expect(events).toContain("outside:0");
    expect(events).toContain("direct:0");
  });

  it("supports isolation settings, controlled transactions with savepoints, streaming and introspection", async () => {
    await k
      .transaction()
      .setIsolationLevel("serializable")
      .execute(async (trx) => {
        const { rows } = await sql<{ transaction_isolation: string }>`SHOW transaction_isolation`.execute(trx);
        expect(rows).toEqual([{ transaction_isolation: "serializable" }]);
      });

    const trx = await k.startTransaction().execute();
    await trx.insertInto("users").values({ name: "Ivy", email: "ivy@x" }).execute();
    const sp = await trx.savepoint("before_jo").execute();
    await sp.insertInto("users").values({ name: "Jo", email: "jo@x" }).execute();
    const back = await sp.rollbackToSavepoint("before_jo").execute();
    await back.releaseSavepoint("before_jo").execute();
    await trx.commit().execute();
    expect(
      (await k.selectFrom("users").select("email").where("email", "in", ["ivy@x", "jo@x"]).execute()).map(
        (r) => r.email,
      ),
    ).toEqual(["ivy@x"]);

    const rolled = await k.startTransaction().execute();
    await rolled.insertInto("users").values({ name: "Kim", email: "kim@x" }).execute();
    await rolled.rollback().execute();

    const streamed: string[] = [];
    for await (const row of k.selectFrom("users").select("name").orderBy("id").stream(2)) streamed.push(row.name);
    expect(streamed).toEqual(["Bob B.", "Cyrus", "Dee", "Ivy"]);

    const tables = await k.introspection.getTables();
    expect(tables.find((t) => t.name === "users")?.columns.map((c) => c.name)).toEqual(["id", "name", "email", "meta"]);

    await db.sync();
    expect((await remoteUsers()).map((u) => u.email)).toEqual(["bob@x", "cy@x", "dee@x", "ivy@x"]);
  });
});
