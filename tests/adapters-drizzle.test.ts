import { and, eq, relations, sql } from "drizzle-orm";
import { integer, jsonb, pgTable, serial, text, timestamp } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { drizzle, type OminipgDrizzleDatabase } from "../src/adapters/drizzle.js";
import { PGlite } from "@electric-sql/pglite";
import { Ominipg, type QueryResult } from "../src/index.js";
import { createTestDatabase, pgliteTemplate, type TestDatabase } from "./harness/index.js";

const users = pgTable("users", {
  id: serial("id").primaryKey(),
  name: text("name").notNull(),
  email: text("email").unique(),
  meta: jsonb("meta").$type<{ tags: string[] }>(),
  createdAt: timestamp("created_at", { withTimezone: true }).defaultNow(),
  seenAt: timestamp("seen_at"),
});
const posts = pgTable("posts", {
  id: serial("id").primaryKey(),
  userId: integer("user_id").notNull(),
  title: text("title").notNull(),
});
const usersRelations = relations(users, ({ many }) => ({ posts: many(posts) }));
const postsRelations = relations(posts, ({ one }) => ({
  author: one(users, { fields: [posts.userId], references: [users.id] }),
}));
const schema = { users, posts, usersRelations, postsRelations };

const schemaSQL = [
  `CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, meta jsonb,
     created_at timestamptz DEFAULT now(), seen_at timestamp)`,
  `CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, user_id int NOT NULL, title text NOT NULL)`,
];

describe("ominipg/drizzle", () => {
  let remote: TestDatabase;
  let db: Ominipg;
  let orm: OminipgDrizzleDatabase<typeof schema>;

  beforeAll(async () => {
    remote = await createTestDatabase();
    db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL });
    orm = drizzle(db, { schema });
  });
  afterAll(async () => {
    await db?.close();
    await remote?.drop();
  });

  const queued = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`)).rows[0]!.n;

  it("inserts, updates, deletes and selects through query(), captured and synced", async () => {
    const [ada] = await orm
      .insert(users)
      .values({ name: "Ada", email: "ada@x", meta: { tags: ["math"] } })
      .returning();
    expect(ada).toMatchObject({ id: 1, name: "Ada", email: "ada@x", meta: { tags: ["math"] }, seenAt: null });
    expect(ada!.createdAt).toBeInstanceOf(Date);
    expectTypeOf(ada!).toEqualTypeOf<typeof users.$inferSelect>();

    const ins = await orm
      .insert(users)
      .values([
        { name: "Bob", email: "bob@x", seenAt: new Date("2024-05-06T07:08:09.123Z") },
        { name: "Cy", email: "cy@x" },
      ])
      .returning({ id: users.id, email: users.email });
    expect(ins).toEqual([
      { id: 2, email: "bob@x" },
      { id: 3, email: "cy@x" },
    ]);

    const upd = await orm
      .update(users)
      .set({ meta: { tags: ["eng"] } })
      .where(eq(users.email, "bob@x"))
      .returning({ id: users.id, meta: users.meta });
    expect(upd).toEqual([{ id: 2, meta: { tags: ["eng"] } }]);
    await orm.update(users).set({ name: "Cyrus" }).where(eq(users.id, 3)); // no RETURNING: "execute"
    await orm.delete(users).where(eq(users.email, "ada@x"));

    const rows = await orm
      .select()
      .from(users)
      .where(and(eq(users.name, "Bob"), sql`${users.meta}->'tags' ? 'eng'`));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: 2, email: "bob@x", seenAt: new Date("2024-05-06T07:08:09.123Z") });
    const partial = await orm.select({ name: users.name }).from(users).orderBy(users.id);
    expect(partial).toEqual([{ name: "Bob" }, { name: "Cyrus" }]);
    expect(await queued()).toBeGreaterThan(0);

    await db.sync();
    expect(await queued()).toBe(0);
    const remoteRows = await remote.sql`SELECT id, name, email, meta, seen_at FROM users ORDER BY id`;
    expect(remoteRows.map((r) => ({ ...r }))).toEqual([
      { id: 2, name: "Bob", email: "bob@x", meta: { tags: ["eng"] }, seen_at: new Date("2024-05-06T07:08:09.123Z") },
      { id: 3, name: "Cyrus", email: "cy@x", meta: null, seen_at: null },
    ]);
  });

  it("runs a transaction that commits, and rolls back one that throws (nothing local, nothing queued)", async () => {
    const made = await orm.transaction(async (tx) => {
      const [dee] = await tx.insert(users).values({ name: "Dee", email: "dee@x" }).returning({ id: users.id });
      await tx.insert(posts).values({ userId: dee!.id, title: "hello" });
      await tx.update(users).set({ name: "Bob B." }).where(eq(users.id, 2));
      return dee!.id;
    });
    expect(made).toBe(4);
    const before = await queued();

    const boom = new Error("boom");
    const err = await orm
      .transaction(async (tx) => {
        await tx.insert(users).values({ name: "Eve", email: "eve@x" });
        await tx.delete(users).where(eq(users.id, 2));
        expect(await tx.select().from(users).where(eq(users.email, "eve@x"))).toHaveLength(1);
        throw boom;
      })
      .catch((e: unknown) => e);
    expect(err).toBe(boom);
    // tx.rollback() throws drizzle's TransactionRollbackError, also a rollback.
    await expect(
      orm.transaction(async (tx) => {
        await tx.insert(users).values({ name: "Fay", email: "fay@x" });
        tx.rollback();
      }),
    ).rejects.toThrow(/Rollback/);
    // A statement that fails inside: the transaction rolls back and the error comes out.
    await expect(
      orm.transaction(async (tx) => {
        await tx.insert(users).values({ name: "Gus", email: "gus@x" });
        await tx.insert(users).values({ name: "Bob again", email: "bob@x" });
      }),
    ).rejects.toMatchObject({ cause: { code: "23505" } });

    expect(await orm.select({ email: users.email }).from(users).orderBy(users.id)).toEqual([
      { email: "bob@x" },
      { email: "cy@x" },
      { email: "dee@x" },
    ]);
    expect(await queued()).toBe(before);
    const leaked = await db.query(
      `SELECT count(*)::int AS n FROM _sync_queue WHERE new_row->>'email' IN ('eve@x', 'fay@x', 'gus@x') OR op = 'D'`,
    );
    expect(leaked.rows).toEqual([{ n: 0 }]);

    await db.sync();
    expect((await remote.sql`SELECT id, name, email FROM users ORDER BY id`).map((r) => ({ ...r }))).toEqual([
      { id: 2, name: "Bob B.", email: "bob@x" },
      { id: 3, name: "Cyrus", email: "cy@x" },
      { id: 4, name: "Dee", email: "dee@x" },
    ]);
    expect((await remote.sql`SELECT user_id, title FROM posts`).map((r) => ({ ...r }))).toEqual([
      { user_id: 4, title: "hello" },
    ]);
  });

  it("nests transactions as savepoints and honours transaction config", async () => {
    await orm.transaction(
      async (tx) => {
        await tx.insert(posts).values({ userId: 3, title: "kept" });
        await expect(
          tx.transaction(async (inner) => {
            await inner.insert(posts).values({ userId: 3, title: "dropped" });
            throw new Error("inner");
          }),
        ).rejects.toThrow("inner");
        await tx.transaction(async (inner) => {
          await inner.insert(posts).values({ userId: 3, title: "kept too" });
        });
        const level = await tx.execute<{ transaction_isolation: string }>(sql`SHOW transaction_isolation`);
        expect(level[0]).toEqual({ transaction_isolation: "serializable" });
      },
      { isolationLevel: "serializable" },
    );
    expect(
      (await orm.select({ title: posts.title }).from(posts).where(eq(posts.userId, 3)).orderBy(posts.id)).map(
        (p) => p.title,
      ),
    ).toEqual(["kept", "kept too"]);
    await db.sync();
    expect((await remote.sql`SELECT title FROM posts WHERE user_id = 3 ORDER BY id`).map((r) => r.title)).toEqual([
      "kept",
      "kept too",
    ]);
  });

  it("maps joins with same-named columns, relational queries and raw execute()", async () => {
    const joined = await orm.select().from(posts).innerJoin(users, eq(posts.userId, users.id)).orderBy(posts.id);
    expect(joined.map((j) => [j.posts.id, j.posts.title, j.users.id, j.users.name])).toEqual([
      [1, "hello", 4, "Dee"],
      [2, "kept", 3, "Cyrus"],
      [4, "kept too", 3, "Cyrus"],
    ]);
    const withPosts = await orm.query.users.findMany({
      with: { posts: { columns: { title: true } } },
      orderBy: users.id,
      columns: { id: true },
    });
    expect(withPosts).toEqual([
      { id: 2, posts: [] },
      { id: 3, posts: [{ title: "kept" }, { title: "kept too" }] },
      { id: 4, posts: [{ title: "hello" }] },
    ]);
    const raw = await orm.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM ${users}`);
    expect(raw).toEqual([{ n: 3 }]);
    const locked = await orm.transaction((tx) =>
      tx
        .select({ postId: posts.id, userId: users.id })
        .from(posts)
        .innerJoin(users, eq(posts.userId, users.id))
        .where(eq(posts.id, 1))
        .for("update"),
    );
    expect(locked).toEqual([{ postId: 1, userId: 4 }]);
  });

  it("maps RETURNING with a column named twice, and same-named columns from a write in WITH", async () => {
    const twice = await orm
      .insert(posts)
      .values({ userId: 2, title: "twice" })
      .returning({ a: posts.id, b: posts.id, t: posts.title });
    expect(twice).toEqual([{ a: 5, b: 5, t: "twice" }]);
    const gone = orm
      .$with("gone")
      .as(orm.delete(posts).where(eq(posts.title, "twice")).returning({ id: posts.id, userId: posts.userId }));
    const result = await orm
      .with(gone)
      .select({ postId: gone.id, userId: users.id })
      .from(gone)
      .innerJoin(users, eq(gone.userId, users.id))
      .catch((e: unknown) => e);
    // Without array rows from query(), a write inside a SELECT returning same-named columns cannot run twice.
    if (result instanceof Error) expect((result.cause as Error).message).toMatch(/named alike/);
    else expect(result).toEqual([{ postId: 5, userId: 2 }]);
    await orm.delete(posts).where(eq(posts.title, "twice"));
    expect(await orm.select().from(posts).where(eq(posts.title, "twice"))).toEqual([]);
  });

  it("takes array rows when query() offers { rowMode: 'array' } (joins then run once)", async () => {
    const pg = await PGlite.create({ loadDataDir: await pgliteTemplate() });
    await pg.exec(
      schemaSQL.join(";") +
        `; INSERT INTO users (name) VALUES ('A'); INSERT INTO posts (user_id, title) VALUES (1, 'p')`,
    );
    const seen: string[] = [];
    const query = async (text: string, params: readonly unknown[] = [], options?: { rowMode?: "array" | "object" }) => {
      seen.push(text);
      const r = await pg.query(text, params as unknown[], { rowMode: options?.rowMode ?? "object" });
      return {
        rows: r.rows,
        fields: r.fields,
        rowCount: r.affectedRows ?? r.rows.length,
        command: "SELECT",
      } as QueryResult<never>;
    };
    const fake = {
      query,
      transaction: async <T>(fn: (tx: { query: typeof query }) => Promise<T>) => fn({ query }),
    } as unknown as Parameters<typeof drizzle>[0];
    const joined = await drizzle(fake).select().from(posts).innerJoin(users, eq(posts.userId, users.id));
    expect(joined.map((j) => [j.posts.id, j.users.id, j.users.name])).toEqual([[1, 1, "A"]]);
    expect(seen, seen.join("\n")).toHaveLength(1);
    await pg.close();
  });
});
