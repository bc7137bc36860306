// A primary-key change onto a key the remote already holds for another row (one the client has not pulled, or
// another client made meanwhile): for that key the moved row meets another row, as an insert would, and the
// table's strategy settles it. Not where the key comes from a sequence, or where foreign keys reference the table
// and the remote still has the old key's row: then it is refused as onReject says, both rows recorded.
import { afterAll, describe, expect, it } from "vitest";
import { Ominipg, type ConflictEvent, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";
import { expectSameRows } from "./pull-helpers.js";
import { queued } from "./sync-helpers.js";

const TAGS = `CREATE TABLE IF NOT EXISTS tags (name text PRIMARY KEY, n int NOT NULL, note text)`;
const cleanup = cleanupAfterEach();

/** The file's remotes, one per schema, shared by its tests: each test (each round of a loop) empties the tables. */
const remotes = new Map<string, Promise<TestDatabase>>();
afterAll(() => Promise.all([...remotes.values()].map(async (remote) => (await remote).drop())));

async function remoteWith(schema: string[]): Promise<TestDatabase> {
  const key = JSON.stringify(schema);
  if (!remotes.has(key)) remotes.set(key, createTestDatabase());
  const remote = await remotes.get(key)!;
  const tables = schema.map((s) => /CREATE TABLE IF NOT EXISTS (\w+)/.exec(s)![1]).join(", ");
  await remote.sql.unsafe(`${schema.join("; ")}; TRUNCATE ${tables}`).simple();
  return remote;
}

async function client(remote: TestDatabase, schema: string[], sync: Partial<SyncOptions> = {}) {
  const db = await Ominipg.connect({
    syncUrl: remote.url,
    schemaSQL: schema,
    sync: { retry: { attempts: 1 }, ...sync },
  });
  cleanup(() => db.close());
  const events: ConflictEvent[] = [];
  db.on("conflict", (c) => events.push(c));
  await db.pull();
  return { db, events };
}

const rows = async (db: Ominipg) => (await db.query(`SELECT name, n, note FROM tags ORDER BY name`)).rows;

describe("a key change onto a key the remote holds for another row", () => {
  it("is settled by the table's strategy; the other key changes of the batch go through", async () => {
    const remote = await remoteWith([TAGS]);
    const seen: unknown[] = [];
    const strategies: [SyncOptions["conflicts"], { name: string; n: number; note: string }[]][] = [
      // The moved row is written over the remote's row at the new key, the old key's row is deleted.
      ["overwrite", [{ name: "c", n: 2, note: "local" }]],
      // The remote's row keeps the new key: the key change is undone, the old key's row is the remote's again.
      [
        "remote-wins",
        [
          { name: "a", n: 1, note: "local" },
          { name: "c", n: 30, note: "remote c" },
        ],
      ],
      // No base for the new key (as for rows both sides inserted): the remote's row keeps it, as with remote-wins;
      // the local change's other columns are merged into the old key's row.
      [
        "merge",
        [
          { name: "a", n: 2, note: "local" },
          { name: "c", n: 30, note: "remote c" },
        ],
      ],
      // A resolver's row is written over the remote's at the new key, as "overwrite" would.
      [
        (c) => {
          seen.push(c);
          return { n: Number(c.local!.n) + Number(c.remote!.n), note: String(c.remote!.note) };
        },
        [{ name: "c", n: 32, note: "remote c" }],
      ],
    ];
    for (const [conflicts, expected] of strategies) {
      await remote.sql`TRUNCATE tags`;
      await remote.sql`INSERT INTO tags VALUES ('a', 1, 'local'), ('b', 2, 'local')`;
      const { db, events } = await client(remote, [TAGS], { conflicts });
      await remote.sql`INSERT INTO tags VALUES ('c', 30, 'remote c')`;
      await db.query(`UPDATE tags SET name = 'c', n = 2 WHERE name = 'a'`);
      await db.query(`UPDATE tags SET name = 'e' WHERE name = 'b'`); // a free key: moved as usual
      const r = await db.sync();
      expect(r).toMatchObject({ conflicts: 1, rejected: 0 });
      const all = [...expected, { name: "e", n: 2, note: "local" }].sort((x, y) => x.name.localeCompare(y.name));
      expect(await remote.sql`SELECT name, n, note FROM tags ORDER BY name`).toEqual(all);
      expect(await rows(db)).toEqual(all);
      expect(await queued(db)).toBe(0);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        table: "public.tags",
        key: { name: "c" },
        base: { name: "a", n: 1, note: "local" }, // the row before the key change (the decision has none)
        local: { name: "c", n: 2, note: "local" },
        remote: { name: "c", n: 30, note: "remote c" },
        resolution:
          typeof conflicts === "function"
            ? "custom"
            : { overwrite: "local", "remote-wins": "remote", merge: "merge" }[conflicts as string],
      });
      await expectSameRows(db, remote.sql, { tags: "name" });
      await db.close();
    }
    expect(seen).toEqual([
      {
        table: "public.tags",
        key: { name: "c" },
        base: null,
        local: { name: "c", n: 2, note: "local" },
        remote: { name: "c", n: 30, note: "remote c" },
      },
    ]);
  });

  it("remote-wins and merge put the old key's row back as the remote has it (merge: with the local change's other columns), not over a row the app wrote there since", async () => {
    const remote = await remoteWith([TAGS]);
    for (const conflicts of ["remote-wins", "merge"] as const) {
      await remote.sql`TRUNCATE tags`;
      await remote.sql`INSERT INTO tags VALUES ('a', 1, 'first'), ('b', 2, 'first')`;
      const { db } = await client(remote, [TAGS], { conflicts });
      await remote.sql`INSERT INTO tags VALUES ('c', 30, 'remote c'), ('f', 60, 'remote f')`;
      await remote.sql`UPDATE tags SET note = 'changed remotely' WHERE name IN ('a', 'b')`;
      await db.query(`UPDATE tags SET name = 'c', n = 5 WHERE name = 'a'`);
      await db.query(`UPDATE tags SET name = 'f' WHERE name = 'b'`);
      await db.query(`INSERT INTO tags VALUES ('b', 7, 'new local b')`); // the old key taken again locally
      const r = await db.sync();
      expect(r.conflicts).toBeGreaterThanOrEqual(2);
      // a: back as the remote has it (merge: with n = 5). b: the new local row met the remote's b, settled too.
      expect(await rows(db)).toEqual([
        { name: "a", n: conflicts === "merge" ? 5 : 1, note: "changed remotely" },
        { name: "b", n: 2, note: "changed remotely" },
        { name: "c", n: 30, note: "remote c" },
        { name: "f", n: 60, note: "remote f" },
      ]);
      await expectSameRows(db, remote.sql, { tags: "name" });
      expect(await queued(db)).toBe(0);
      await db.close();
    }
  });

  it('a resolver\'s "skip": the next pull from the change feed reads both keys again', async () => {
    const remote = await remoteWith([TAGS]);
    await remote.sql`INSERT INTO tags VALUES ('a', 1, 'local')`;
    const { db } = await client(remote, [TAGS], { conflicts: () => "skip", feed: "require" });
    await db.pull(); // the feed's cursors are set
    await remote.sql`INSERT INTO tags VALUES ('c', 30, 'remote c')`;
    await db.query(`UPDATE tags SET name = 'c', n = 2 WHERE name = 'a'`);
    expect(await db.sync()).toMatchObject({ conflicts: 1 });
    expect(await rows(db)).toEqual([{ name: "c", n: 2, note: "local" }]); // kept as it is, pushed nothing
    expect((await db.pull()).tables["public.tags"]!.strategy).toBe("feed");
    expect(await rows(db)).toEqual([
      { name: "a", n: 1, note: "local" },
      { name: "c", n: 30, note: "remote c" },
    ]);
    await expectSameRows(db, remote.sql, { tags: "name" });
  });

  it("with a UNIQUE column besides the key: the old row goes first, so the moved row takes its values to the new key", async () => {
    const schema = [`CREATE TABLE IF NOT EXISTS tu (k text PRIMARY KEY, u int UNIQUE, note text)`];
    const remote = await remoteWith(schema);
    await remote.sql`INSERT INTO tu VALUES ('a1', 1, 'x'), ('a2', 2, 'x')`;
    const { db } = await client(remote, schema);
    await remote.sql`INSERT INTO tu VALUES ('b1', 11, 'remote'), ('b2', 12, 'remote')`;
    await db.query(`UPDATE tu SET k = 'b' || substr(k, 2) WHERE k IN ('a1', 'a2')`);
    expect(await db.sync()).toMatchObject({ conflicts: 2, rejected: 0 });
    expect(await remote.sql`SELECT k, u, note FROM tu ORDER BY k`).toEqual([
      { k: "b1", u: 1, note: "x" },
      { k: "b2", u: 2, note: "x" },
    ]);
    await expectSameRows(db, remote.sql, { tu: "k" });
  });

  it("a new key equal to the old one in another form (-0 for 0) is no conflict", async () => {
    const schema = [`CREATE TABLE IF NOT EXISTS tf (k float8 PRIMARY KEY, note text)`];
    const remote = await remoteWith(schema);
    await remote.sql`INSERT INTO tf VALUES (0, 'x')`;
    const { db, events } = await client(remote, schema, { conflicts: "remote-wins" });
    await db.query(`UPDATE tf SET k = '-0', note = 'y' WHERE k = 0`);
    expect(await db.sync()).toMatchObject({ conflicts: 0 });
    expect(events).toEqual([]);
    expect(await remote.sql`SELECT k::text AS k, note FROM tf`).toEqual([{ k: "-0", note: "y" }]);
  });

  it("rows that change again while it is settled: given up for this sync (nothing written), settled by the next", async () => {
    const remote = await remoteWith([TAGS]);
    await remote.sql`INSERT INTO tags VALUES ('a', 1, 'local')`;
    let calls = 0;
    const { db } = await client(remote, [TAGS], {
      retry: { attempts: 1 },
      conflicts: async () => {
        // The first time, another writer changes the remote's row at the new key while we decide.
        if (calls++ === 0) await remote.sql`UPDATE tags SET note = 'again' WHERE name = 'c'`;
        return "local" as const;
      },
    });
    await remote.sql`INSERT INTO tags VALUES ('c', 30, 'remote c')`;
    await db.query(`UPDATE tags SET name = 'c', n = 2 WHERE name = 'a'`);
    await expect(db.sync()).rejects.toMatchObject({ code: "CONFLICT_CHURN", retryable: true });
    expect(await remote.sql`SELECT name, n, note FROM tags ORDER BY name`).toEqual([
      { name: "a", n: 1, note: "local" },
      { name: "c", n: 30, note: "again" },
    ]);
    expect(await queued(db)).toBe(1);
    expect(await db.sync()).toMatchObject({ conflicts: 1 });
    expect(await remote.sql`SELECT name, n, note FROM tags ORDER BY name`).toEqual([
      { name: "c", n: 2, note: "local" },
    ]);
    await expectSameRows(db, remote.sql, { tags: "name" });
  });

  it("is refused as onReject says, both rows recorded, where the key comes from a sequence or foreign keys reference the table", async () => {
    const schemas = {
      referenced: [
        TAGS,
        `CREATE TABLE IF NOT EXISTS uses (id int PRIMARY KEY, tag text REFERENCES tags (name) ON UPDATE CASCADE)`,
      ],
      sequence: [`CREATE TABLE IF NOT EXISTS tags (name serial PRIMARY KEY, n int NOT NULL, note text)`],
    };
    for (const [kind, schema] of Object.entries(schemas)) {
      for (const onReject of ["stop", "skip"] as const) {
        const remote = await remoteWith(schema);
        const [a, c] = kind === "sequence" ? [1, 3] : ["a", "c"];
        await remote.sql`INSERT INTO tags (name, n, note) VALUES (${a}, 1, 'local')`;
        const { db, events } = await client(remote, schema, { onReject });
        await remote.sql`INSERT INTO tags (name, n, note) VALUES (${c}, 30, 'remote')`;
        await db.query(`UPDATE tags SET name = $1 WHERE name = $2`, [c, a]);
        if (onReject === "stop") {
          const err = await db.sync().catch((e: unknown) => e);
          expect(err).toMatchObject({ code: "REMOTE_REJECTED", retryable: false });
          expect((err as Error).message).toMatch(
            kind === "sequence"
              ? /not settled by a strategy: its key comes from a local sequence/
              : /foreign keys reference "public"."tags"/,
          );
          expect(await queued(db)).toBe(1);
        } else {
          expect(await db.sync()).toMatchObject({ rejected: 1 });
          expect(await queued(db)).toBe(0);
        }
        expect(events).toEqual([
          expect.objectContaining({
            key: { name: c },
            local: { name: c, n: 1, note: "local" },
            remote: { name: c, n: 30, note: "remote" },
            resolution: "rejected",
          }),
        ]);
        expect(await remote.sql`SELECT name::text, n FROM tags ORDER BY name`).toEqual([
          { name: String(a), n: 1 },
          { name: String(c), n: 30 },
        ]);
        await db.close();
      }
    }
  });
});

describe("the same key change made by two clients", () => {
  // The second push finds the moved row at the new key and none at the old one: the change is there already, as
  // for identical inserts, updates and deletes. Not a conflict (nor, where foreign keys reference the table, a
  // refusal of a key change onto another row's key: a wedge, refused at every sync).
  const USES = `CREATE TABLE IF NOT EXISTS uses (id int PRIMARY KEY, tag text REFERENCES tags (name) ON UPDATE CASCADE)`;
  // The check that finds no conflict runs before any strategy: one that writes and one that asks are enough.
  const strategies: SyncOptions["conflicts"][] = ["remote-wins", () => "local"];

  it("is no conflict (no strategy or resolver asked), also where foreign keys reference the table", async () => {
    for (const schema of [[TAGS], [TAGS, USES]]) {
      for (const conflicts of strategies) {
        const remote = await remoteWith(schema);
        await remote.sql`INSERT INTO tags VALUES ('a', 1, 'x')`;
        if (schema.length > 1) await remote.sql`INSERT INTO uses VALUES (1, 'a')`;
        const first = await client(remote, schema);
        const { db, events } = await client(remote, schema, { conflicts });
        for (const c of [first.db, db]) await c.query(`UPDATE tags SET name = 'c', n = 2 WHERE name = 'a'`);
        await first.db.sync();
        expect(await db.sync()).toMatchObject({ conflicts: 0, rejected: 0 });
        expect(events).toEqual([]);
        expect(await queued(db)).toBe(0);
        await db.pull();
        await expectSameRows(db, remote.sql, schema.length > 1 ? { tags: "name", uses: "id" } : { tags: "name" });
        expect(await rows(db)).toEqual([{ name: "c", n: 2, note: "x" }]);
        await first.db.close();
        await db.close();
      }
    }
  });

  it("with a column both changed, also where foreign keys reference the table: settled for the new key alone", async () => {
    // No row at the old key: nothing is deleted or put back there, so the referencing rows need not follow.
    const cases: [SyncOptions["conflicts"], number][] = [
      ["overwrite", 3],
      ["remote-wins", 2],
      ["merge", 2],
    ];
    for (const [conflicts, n] of cases) {
      const remote = await remoteWith([TAGS, USES]);
      await remote.sql`INSERT INTO tags VALUES ('a', 1, 'x')`;
      await remote.sql`INSERT INTO uses VALUES (1, 'a')`;
      const first = await client(remote, [TAGS, USES]);
      const { db, events } = await client(remote, [TAGS, USES], { conflicts });
      await first.db.query(`UPDATE tags SET name = 'c', n = 2 WHERE name = 'a'`);
      await db.query(`UPDATE tags SET name = 'c', n = 3 WHERE name = 'a'`);
      await first.db.sync();
      expect(await db.sync()).toMatchObject({ conflicts: 1, rejected: 0 });
      expect(events.map((e) => e.key)).toEqual([{ name: "c" }]);
      expect(await remote.sql`SELECT name, n FROM tags`).toEqual([{ name: "c", n }]);
      await db.pull();
      await expectSameRows(db, remote.sql, { tags: "name", uses: "id" });
      await first.db.close();
      await db.close();
    }
  });

  it("a key change onto another record's key, the old key's row deleted remotely: a conflict, not taken as made already", async () => {
    // The change touched the key alone: compared in those columns, any row at the new key looked like the moved one.
    const remote = await remoteWith([TAGS]);
    await remote.sql`INSERT INTO tags VALUES ('a', 1, 'Alice')`;
    const { db, events } = await client(remote, [TAGS]);
    await db.query(`UPDATE tags SET name = 'c' WHERE name = 'a'`);
    await remote.sql`DELETE FROM tags WHERE name = 'a'`;
    await remote.sql`INSERT INTO tags VALUES ('c', 99, 'Bob')`;
    expect(await db.sync()).toMatchObject({ conflicts: 1 });
    expect(events.map((e) => e.key)).toEqual([{ name: "c" }]);
    expect(await remote.sql`SELECT name, n, note FROM tags`).toEqual([{ name: "c", n: 1, note: "Alice" }]); // overwrite
  });

  it("with another column changed by the other client: a conflict at the new key (not taken as made already), settled by the strategy", async () => {
    // Only a row equal to the moved one in every column it writes is the same key change: another record may hold
    // the new key, with the old key's row gone (tests/conflicts-key-change.test.ts, onto a taken key).
    const remote = await remoteWith([TAGS]);
    await remote.sql`INSERT INTO tags VALUES ('a', 1, 'x')`;
    const first = await client(remote, [TAGS]);
    const { db, events } = await client(remote, [TAGS], { conflicts: "remote-wins" });
    await first.db.query(`UPDATE tags SET name = 'c', note = 'first' WHERE name = 'a'`);
    await db.query(`UPDATE tags SET name = 'c' WHERE name = 'a'`);
    await first.db.sync();
    expect(await db.sync()).toMatchObject({ conflicts: 1, rejected: 0 });
    expect(events.map((e) => e.key)).toEqual([{ name: "c" }]);
    await db.pull();
    expect(await rows(db)).toEqual([{ name: "c", n: 1, note: "first" }]);
  });
});

describe("a pending change a pull meets", () => {
  it("after a key change, is compared with the row where it moved: no conflict for another column's remote change, which the push keeps", async () => {
    const remote = await remoteWith([TAGS]);
    await remote.sql`INSERT INTO tags VALUES ('a', 1, 'old')`;
    const { db, events } = await client(remote, [TAGS], { conflicts: "merge" });
    await db.query(`UPDATE tags SET name = 'b' WHERE name = 'a'`);
    await db.query(`UPDATE tags SET name = 'c' WHERE name = 'b'`); // a chain of moves: the row is at the last key
    await remote.sql`UPDATE tags SET note = 'remote' WHERE name = 'a'`;
    const pulled = await db.pull();
    expect(pulled.conflicts).toBe(0);
    expect(events).toEqual([]);
    expect(await db.sync()).toMatchObject({ conflicts: 0, rejected: 0 });
    expect(await remote.sql`SELECT name, n, note FROM tags`).toEqual([{ name: "c", n: 1, note: "remote" }]);
    await db.pull();
    expect(await rows(db)).toEqual([{ name: "c", n: 1, note: "remote" }]);
  });

  it("after a key change, in conflict, is recorded with the moved row as local, and the push settles that record", async () => {
    const remote = await remoteWith([TAGS]);
    await remote.sql`INSERT INTO tags VALUES ('a', 1, 'old')`;
    const { db, events } = await client(remote, [TAGS], { conflicts: "overwrite" });
    await db.query(`UPDATE tags SET name = 'b', note = 'local' WHERE name = 'a'`);
    await remote.sql`UPDATE tags SET note = 'remote' WHERE name = 'a'`;
    expect((await db.pull()).conflicts).toBe(1);
    expect(events).toMatchObject([
      { origin: "pull", key: { name: "a" }, local: { name: "b", note: "local" }, resolution: "local-pending" },
    ]);
    expect(await db.sync()).toMatchObject({ conflicts: 1, rejected: 0 });
    expect(await remote.sql`SELECT name, n, note FROM tags`).toEqual([{ name: "b", n: 1, note: "local" }]);
    const records = await db.query(`SELECT origin, resolution FROM _ominipg_conflicts`);
    expect(records.rows).toEqual([{ origin: "push", resolution: "local" }]);
  });

  it("after a key change of an int8 key past 2^53, is compared with the row at the key's exact digits", async () => {
    const BIG = `CREATE TABLE IF NOT EXISTS big (id int8 PRIMARY KEY, note text)`;
    const remote = await remoteWith([BIG]);
    await remote.sql`INSERT INTO big VALUES (9007199254740993, 'old')`;
    const { db, events } = await client(remote, [BIG], { conflicts: "overwrite" });
    await db.query(`UPDATE big SET id = 9007199254740995, note = 'local' WHERE id = 9007199254740993`);
    await remote.sql`UPDATE big SET note = 'remote' WHERE id = 9007199254740993`;
    expect((await db.pull()).conflicts).toBe(1);
    expect(events).toMatchObject([{ origin: "pull", local: { id: "9007199254740995", note: "local" } }]);
  });

  it("that cancels out: a pull's record of it is not left pending, the rows held back for it come back", async () => {
    const remote = await remoteWith([TAGS]);
    await remote.sql`INSERT INTO tags VALUES ('b', 1, 'old')`;
    const { db, events } = await client(remote, [TAGS]);
    await db.query(`INSERT INTO tags VALUES ('a', 1, 'local')`);
    await db.query(`DELETE FROM tags WHERE name = 'a'`);
    await db.query(`UPDATE tags SET n = 5 WHERE name = 'b'`);
    await db.query(`UPDATE tags SET n = 1 WHERE name = 'b'`);
    await remote.sql`INSERT INTO tags VALUES ('a', 2, 'remote')`;
    await remote.sql`UPDATE tags SET note = 'remote' WHERE name = 'b'`;
    expect((await db.pull()).conflicts).toBe(1);
    expect(events).toMatchObject([{ origin: "pull", resolution: "local-pending" }]);
    expect(await db.sync()).toMatchObject({ pushed: 4, applied: 0, conflicts: 0, rejected: 0 });
    expect((await db.query(`SELECT * FROM _ominipg_conflicts`)).rows).toEqual([]);
    // Pushed as nothing: the remote's rows the pull held back for them are read again by the next pull.
    await db.pull();
    expect(await rows(db)).toEqual([
      { name: "a", n: 2, note: "remote" },
      { name: "b", n: 1, note: "remote" },
    ]);
  });
});
