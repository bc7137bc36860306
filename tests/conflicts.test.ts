// Conflicts between clients, against the real server: two or three local databases edit the same remote
// rows while "offline" (without syncing), then push and pull. Every strategy, both directions of update vs
// delete, insert key collisions, the record in _ominipg_conflicts and the `conflict` event.
import { afterAll, describe, expect, it } from "vitest";
import { Ominipg, type ConflictEvent, type SyncOptions } from "../src/index.js";
import type { TestHooks } from "../src/core/options.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";
import { queued } from "./sync-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS docs (id int PRIMARY KEY, title text NOT NULL, body text, qty int NOT NULL DEFAULT 0, tags jsonb, big int8, at timestamptz)`,
  `CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, doc_id int REFERENCES docs (id) ON DELETE CASCADE, text text)`,
];
const TABLES = { docs: "id", notes: "id" };

const cleanup = cleanupAfterEach();

interface Client {
  db: Ominipg;
  events: ConflictEvent[];
}

/** Fault injection handed to the clients this file opens (connect option `testHooks`). */
const testHooks: TestHooks = {};

/**
 * The file's remote, shared by its tests: its tables are set back to the same rows before each test, and each test
 * opens new clients. A new database per test, with Ominipg's remote set-up (ledger, change feed and its slot) made
 * again for each, was a third of the file's time. A test that changes more than docs and notes takes a remote of
 * its own (`own`).
 */
let shared: Promise<TestDatabase> | undefined;
afterAll(async () => {
  await (await shared)?.drop();
});

async function newRemote(): Promise<TestDatabase> {
  const remote = await createTestDatabase();
  for (const s of SCHEMA) await remote.sql.unsafe(s);
  return remote;
}

/** A remote with three docs and a note, and a client per strategy that pulled them. */
async function setup(
  strategies: SyncOptions["conflicts"][],
  own = false,
): Promise<{ remote: TestDatabase; clients: Client[] }> {
  let remote: TestDatabase;
  if (own) {
    remote = await newRemote();
    cleanup(() => remote.drop());
  } else remote = await (shared ??= newRemote());
  await remote.sql
    .unsafe(
      `
    TRUNCATE docs, notes;
    INSERT INTO docs VALUES (1, 'one', 'body 1', 1, '{"a": 1}', 9007199254740993, '2024-05-01 10:00+02'),
                            (2, 'two', 'body 2', 2, NULL, NULL, NULL),
                            (3, 'three', 'body 3', 3, NULL, NULL, NULL);
    INSERT INTO notes VALUES (1, 1, 'note 1');
  `,
    )
    .simple();
  const clients: Client[] = [];
  for (const conflicts of strategies) clients.push(await openClient(remote, conflicts));
  return { remote, clients };
}

/** A client of `remote` that pulled it, with its `conflict` events collected. */
async function openClient(remote: TestDatabase, conflicts: SyncOptions["conflicts"]): Promise<Client> {
  const db = await Ominipg.connect({
    testHooks,
    syncUrl: remote.url,
    schemaSQL: SCHEMA,
    sync: { retry: { attempts: 1 }, ...(conflicts === undefined ? {} : { conflicts }) },
  });
  cleanup(() => db.close());
  // A session time zone far from UTC: conflict checks compare values, not text.
  await db.query(`SET TimeZone TO 'Asia/Kolkata'`);
  const events: ConflictEvent[] = [];
  db.on("conflict", (c) => events.push(c));
  await db.pull();
  return { db, events };
}

async function remoteDoc(remote: TestDatabase, id: number): Promise<Record<string, unknown> | undefined> {
  const [row] = await remote.sql.unsafe(`SELECT id, title, body, qty FROM docs WHERE id = $1`, [id]);
  return row;
}

async function localDoc(db: Ominipg, id: number): Promise<Record<string, unknown> | undefined> {
  return (await db.query(`SELECT id, title, body, qty FROM docs WHERE id = $1`, [id])).rows[0];
}

async function records(db: Ominipg): Promise<Record<string, unknown>[]> {
  return (
    await db.query(`SELECT origin, table_name, row_key, base ->> 'title' AS base, local ->> 'title' AS local, remote ->> 'title' AS remote,
                           resolution, resolved ->> 'title' AS resolved FROM _ominipg_conflicts ORDER BY id`)
  ).rows;
}

/** B changes doc 1 and pushes; A, offline, changed it too, then pushes: A meets B's change. */
async function sameRow(strategy: SyncOptions["conflicts"], a: string, b: string) {
  const { remote, clients } = await setup([strategy, undefined]);
  const [A, B] = clients as [Client, Client];
  await A.db.query(a);
  await B.db.query(b);
  await B.db.sync();
  const result = await A.db.sync();
  return { remote, A, B, result };
}

describe("offline edits of the same column", () => {
  const a = `UPDATE docs SET title = 'A', body = 'body by A' WHERE id = 1`;
  const b = `UPDATE docs SET title = 'B', qty = 20 WHERE id = 1`;

  it("overwrite (the default): A's columns win, B's other column stays, and the conflict is recorded", async () => {
    const { remote, A, result } = await sameRow(undefined, a, b);
    expect(result.conflicts).toBe(1);
    expect(await remoteDoc(remote, 1)).toEqual({ id: 1, title: "A", body: "body by A", qty: 20 });
    expect(await records(A.db)).toEqual([
      {
        origin: "push",
        table_name: "docs",
        row_key: { id: 1 },
        base: "one",
        local: "A",
        remote: "B",
        resolution: "local",
        resolved: "A",
      },
    ]);
    const [event] = A.events;
    expect(event).toMatchObject({ origin: "push", table: "public.docs", key: { id: 1 }, resolution: "local" });
    // Rows as to_jsonb gives them in UTC; an int8 beyond 2^53 stays exact (as a string).
    expect(event!.base).toMatchObject({
      id: 1,
      title: "one",
      qty: 1,
      tags: { a: 1 },
      big: "9007199254740993",
      at: "2024-05-01T08:00:00+00:00",
    });
    expect(event!.remote).toMatchObject({ title: "B", qty: 20 });
    expect(event!.resolved).toMatchObject({ title: "A", body: "body by A", qty: 20 });
    expect(await queued(A.db)).toBe(0);
    await A.db.pull();
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it.each([
    [
      "remote-wins",
      "the remote row stays and A's row becomes it, A's other column change included",
      { id: 1, title: "B", body: "body 1", qty: 20 },
      "remote",
    ],
    [
      "merge",
      "a column both changed takes the remote value, a column only A changed keeps A's",
      { id: 1, title: "B", body: "body by A", qty: 20 },
      "merge",
    ],
  ] as const)("%s: %s", async (strategy, _what, expected, resolution) => {
    const { remote, A, result } = await sameRow(strategy, a, b);
    expect(result.conflicts).toBe(1);
    expect(await remoteDoc(remote, 1)).toEqual(expected);
    expect(await localDoc(A.db, 1)).toEqual(expected);
    expect((await records(A.db))[0]).toMatchObject({ resolution, resolved: "B" });
    expect(await queued(A.db)).toBe(0); // the local row was set without capture: no echo
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it("a custom resolver sees table, key, base, local and remote, and its row goes to both sides", async () => {
    const seen: unknown[] = [];
    const { remote, A, result } = await sameRow(
      (c) => {
        seen.push(c);
        return { title: `${String(c.local!.title)}+${String(c.remote!.title)}`, qty: Number(c.remote!.qty) + 1 };
      },
      a,
      b,
    );
    expect(result.conflicts).toBe(1);
    expect(seen).toEqual([
      {
        table: "public.docs",
        key: { id: 1 },
        base: expect.objectContaining({ title: "one", body: "body 1", qty: 1 }),
        local: expect.objectContaining({ title: "A", body: "body by A", qty: 1 }),
        remote: expect.objectContaining({ title: "B", body: "body 1", qty: 20 }),
      },
    ]);
    // Columns the resolver left out are as "overwrite" leaves them: A's change to body.
    const expected = { id: 1, title: "A+B", body: "body by A", qty: 21 };
    expect(await remoteDoc(remote, 1)).toEqual(expected);
    expect(await localDoc(A.db, 1)).toEqual(expected);
    expect((await records(A.db))[0]).toMatchObject({ resolution: "custom", resolved: "A+B" });
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it('a resolver answering "remote", "local" or "skip"', async () => {
    for (const answer of ["remote", "local", "skip"] as const) {
      const { remote, A, B } = await sameRow(() => answer, a, b);
      const title = (await remoteDoc(remote, 1))!.title;
      expect(title).toBe(answer === "local" ? "A" : "B");
      // skip: nothing pushed, the local row left as it was; the change is off the queue, and on record.
      expect((await localDoc(A.db, 1))!.title).toBe(answer === "remote" ? "B" : "A");
      expect(await queued(A.db)).toBe(0);
      expect((await records(A.db))[0]).toMatchObject({
        resolution: answer === "skip" ? "skip" : answer,
        local: "A",
        remote: "B",
      });
      await B.db.pull();
      expect((await localDoc(B.db, 1))!.title).toBe(title);
    }
  });
});

describe("offline edits of different columns", () => {
  const never = () => {
    throw new Error("a resolver is not called without a conflict");
  };
  it.each([
    ["overwrite", "overwrite"],
    ["remote-wins", "remote-wins"],
    ["merge", "merge"],
    ["a resolver", never],
  ] as const)("%s: no conflict, both changes kept on both sides", async (_name, strategy) => {
    const { remote, A, result, B } = await sameRow(
      strategy,
      `UPDATE docs SET title = 'A' WHERE id = 1`,
      `UPDATE docs SET qty = 20, body = NULL WHERE id = 1`,
    );
    expect(result.conflicts).toBe(0);
    expect(A.events).toEqual([]);
    expect(await remoteDoc(remote, 1)).toEqual({ id: 1, title: "A", body: null, qty: 20 });
    await A.db.pull();
    await B.db.pull();
    await expectSameRows(A.db, remote.sql, TABLES);
    await expectSameRows(B.db, remote.sql, TABLES);
    expect(await records(A.db)).toEqual([]);
  });

  it("the same value written by both is no conflict", async () => {
    const { result, A } = await sameRow(
      undefined,
      `UPDATE docs SET title = 'same' WHERE id = 1`,
      `UPDATE docs SET title = 'same' WHERE id = 1`,
    );
    expect(result.conflicts).toBe(0);
    expect(A.events).toEqual([]);
  });
});

describe("update against delete", () => {
  const update = `UPDATE docs SET title = 'edited' WHERE id = 2`;
  const del = `DELETE FROM docs WHERE id = 2`;

  it.each([
    ["overwrite", { id: 2, title: "edited", body: "body 2", qty: 2 }, "local"],
    ["remote-wins", undefined, "remote"],
    ["merge", undefined, "merge"],
  ] as const)("A updates a row B deleted, %s", async (strategy, after, resolution) => {
    const { remote, A, result } = await sameRow(strategy, update, del);
    expect(result.conflicts).toBe(1);
    expect(await remoteDoc(remote, 2)).toEqual(after);
    expect(await localDoc(A.db, 2)).toEqual(after);
    expect(A.events[0]).toMatchObject({
      key: { id: 2 },
      base: { title: "two" },
      local: { title: "edited" },
      remote: null,
      resolution,
    });
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it.each([
    ["overwrite", undefined, "local"],
    ["remote-wins", { id: 2, title: "edited", body: "body 2", qty: 2 }, "remote"],
    ["merge", { id: 2, title: "edited", body: "body 2", qty: 2 }, "merge"],
  ] as const)("A deletes a row B updated, %s", async (strategy, after, resolution) => {
    const { remote, A, result } = await sameRow(strategy, del, update);
    expect(result.conflicts).toBe(1);
    expect(await remoteDoc(remote, 2)).toEqual(after);
    expect(await localDoc(A.db, 2)).toEqual(after);
    expect(A.events[0]).toMatchObject({
      key: { id: 2 },
      base: { title: "two" },
      local: null,
      remote: { title: "edited" },
      resolution,
    });
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it("both deleted the row: no conflict", async () => {
    const { result, remote } = await sameRow(undefined, del, del);
    expect(result.conflicts).toBe(0);
    expect(await remoteDoc(remote, 2)).toBeUndefined();
  });
});

describe("a key change against an update", () => {
  it("no conflict when the update did not touch what the key change touched: B's title moves with the key", async () => {
    const { remote, A, result } = await sameRow(
      undefined,
      `UPDATE docs SET id = 30 WHERE id = 3`,
      `UPDATE docs SET title = 'B' WHERE id = 3`,
    );
    expect(result.conflicts).toBe(0);
    expect(await remote.sql`SELECT id, title FROM docs WHERE id IN (3, 30)`).toEqual([{ id: 30, title: "B" }]);
    await A.db.pull();
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it.each([
    ["overwrite", { id: 30, title: "A" }],
    ["remote-wins", { id: 3, title: "B" }],
  ] as const)("a conflict on the title, %s: the row ends at the winner's key", async (strategy, after) => {
    const { remote, A, result } = await sameRow(
      strategy,
      `UPDATE docs SET id = 30, title = 'A' WHERE id = 3`,
      `UPDATE docs SET title = 'B' WHERE id = 3`,
    );
    expect(result.conflicts).toBe(1);
    expect(A.events[0]).toMatchObject({
      key: { id: 3 },
      base: { id: 3, title: "three" },
      local: { id: 30, title: "A" },
      remote: { id: 3, title: "B" },
    });
    expect(await remote.sql`SELECT id, title FROM docs WHERE id IN (3, 30)`).toEqual([after]);
    expect((await A.db.query(`SELECT id, title FROM docs WHERE id IN (3, 30)`)).rows).toEqual([after]);
    await expectSameRows(A.db, remote.sql, TABLES);
  });
});

describe("insert key collision", () => {
  it.each([
    ["overwrite", "by A"],
    ["remote-wins", "by B"],
    ["merge", "by B"],
  ] as const)("%s", async (strategy, title) => {
    const { remote, A, result } = await sameRow(
      strategy,
      `INSERT INTO docs (id, title) VALUES (10, 'by A')`,
      `INSERT INTO docs (id, title, qty) VALUES (10, 'by B', 5)`,
    );
    expect(result.conflicts).toBe(1);
    expect(A.events[0]).toMatchObject({
      key: { id: 10 },
      base: null,
      local: { title: "by A" },
      remote: { title: "by B" },
    });
    expect((await remoteDoc(remote, 10))!.title).toBe(title);
    expect((await localDoc(A.db, 10))!.title).toBe(title);
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it("the same row inserted by both is no conflict", async () => {
    const insert = `INSERT INTO docs (id, title) VALUES (10, 'same')`;
    const { result } = await sameRow(undefined, insert, insert);
    expect(result.conflicts).toBe(0);
  });
});

describe("strategies per table", () => {
  it("a default and per-table strategies; notes by name, docs by schema-qualified name", async () => {
    const { remote, clients } = await setup([
      { default: "overwrite", tables: { notes: "remote-wins", "public.docs": "merge" } },
      undefined,
    ]);
    const [A, B] = clients as [Client, Client];
    await A.db.query(`UPDATE docs SET title = 'A', body = 'A' WHERE id = 1; UPDATE notes SET text = 'A' WHERE id = 1`);
    await B.db.query(`UPDATE docs SET title = 'B' WHERE id = 1; UPDATE notes SET text = 'B' WHERE id = 1`);
    await B.db.sync();
    expect((await A.db.sync()).conflicts).toBe(2);
    expect(await remoteDoc(remote, 1)).toMatchObject({ title: "B", body: "A" });
    expect((await remote.sql`SELECT text FROM notes WHERE id = 1`)[0]).toEqual({ text: "B" });
    expect(A.events.map((e) => [e.table, e.resolution]).sort()).toEqual([
      ["public.docs", "merge"],
      ["public.notes", "remote"],
    ]);
    await expectSameRows(A.db, remote.sql, TABLES);
  });

  it("bad strategies are refused at connect, unknown tables at the first sync", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const connect = (conflicts: unknown) =>
      Ominipg.connect({
        loadDataDir: undefined,
        syncUrl: remote.url,
        schemaSQL: SCHEMA,
        sync: { conflicts: conflicts as SyncOptions["conflicts"] },
      });
    await expect(connect("last-write-wins")).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining("sync.conflicts must be"),
    });
    await expect(connect({ tables: { docs: "local" } })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await expect(connect({ byTable: {} })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining('"byTable"'),
    });
    const db = await connect({ tables: { doc: "merge" } });
    cleanup(() => db.close());
    await expect(db.sync()).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining('"doc"'),
    });
  });
});

describe("resolvers that fail", () => {
  it("a throwing resolver stops the sync with nothing lost; a fixed one then settles it", async () => {
    let fail = true;
    const { remote, clients } = await setup([
      () => {
        if (fail) throw new Error("no idea");
        return "local";
      },
      undefined,
    ]);
    const [A, B] = clients as [Client, Client];
    await A.db.query(`UPDATE docs SET title = 'A' WHERE id = 1`);
    await B.db.query(`UPDATE docs SET title = 'B' WHERE id = 1`);
    await B.db.sync();
    await expect(A.db.sync()).rejects.toMatchObject({
      code: "CONFLICT_RESOLVER_FAILED",
      message: expect.stringContaining("no idea"),
    });
    expect(await queued(A.db)).toBe(1);
    expect((await remoteDoc(remote, 1))!.title).toBe("B");
    fail = false;
    expect((await A.db.sync()).conflicts).toBe(1);
    expect((await remoteDoc(remote, 1))!.title).toBe("A");
  });

  it("a row with another key, or not a row, is refused with a clear error", async () => {
    let answer: unknown;
    let message: string;
    const { remote, clients } = await setup([() => answer as never, undefined]);
    const [A, B] = clients as [Client, Client];
    await A.db.query(`UPDATE docs SET title = 'A' WHERE id = 1`);
    await B.db.query(`UPDATE docs SET title = 'B' WHERE id = 1`);
    await B.db.sync();
    for ([answer, message] of [
      [{ id: 99 }, "another primary key"],
      [42, "expected a row object"],
      [{ nope: 1 }, "unknown columns: nope"],
    ] as const) {
      await expect(A.db.sync()).rejects.toMatchObject({
        code: "CONFLICT_RESOLUTION_INVALID",
        message: expect.stringContaining(message),
      });
      expect(await queued(A.db)).toBe(1);
      expect((await remoteDoc(remote, 1))!.title).toBe("B");
    }
  });
});

describe("a remote row that changes while its conflict is settled", () => {
  it("is a new conflict: the resolver sees the newer row, and nothing it did not see is overwritten", async () => {
    const { remote } = await setup([]);
    const seen: unknown[] = [];
    let changes = 0;
    const { db } = await openClient(remote, async (c) => {
      seen.push(c.remote!.title);
      // Another writer changes the row again while we decide, the first time only.
      if (changes++ === 0) await remote.sql`UPDATE docs SET title = 'newer' WHERE id = 1`;
      return { title: `${String(c.remote!.title)} + mine` };
    });
    await db.query(`UPDATE docs SET title = 'mine' WHERE id = 1`);
    await remote.sql`UPDATE docs SET title = 'theirs' WHERE id = 1`;
    const result = await db.sync();
    expect(seen).toEqual(["theirs", "newer"]);
    expect(result.conflicts).toBe(2);
    expect((await remoteDoc(remote, 1))!.title).toBe("newer + mine");
    expect((await localDoc(db, 1))!.title).toBe("newer + mine");
    // One record per local change: the latest settlement.
    expect((await db.query(`SELECT resolution, remote ->> 'title' AS remote FROM _ominipg_conflicts`)).rows).toEqual([
      { resolution: "custom", remote: "newer" },
    ]);
  });

  it("the second settling sets the local row from what the first left: a value back to the local change's is not skipped", async () => {
    const { remote } = await setup([]);
    let calls = 0;
    const { db } = await openClient(remote, async (c) => {
      // The first time, the remote row changes again to the local change's own title while we decide.
      if (calls++ === 0) await remote.sql`UPDATE docs SET title = 'mine' WHERE id = 1`;
      return { title: c.remote!.title, body: c.local!.body };
    });
    await db.query(`UPDATE docs SET title = 'mine', body = 'my body' WHERE id = 1`);
    await remote.sql`UPDATE docs SET title = 'theirs' WHERE id = 1`;
    expect(await db.sync()).toMatchObject({ conflicts: 2 });
    // The first settling set the local title to "theirs"; the second decided "mine", the local change's own value.
    expect(await remoteDoc(remote, 1)).toMatchObject({ title: "mine", body: "my body" });
    expect(await localDoc(db, 1)).toMatchObject({ title: "mine", body: "my body" });
  });

  it("a key another session inserts while the batch statement runs (after its check) is a conflict, not overwritten", async () => {
    const { remote } = await setup([], true); // it slows the remote's ledger down
    const { db, events } = await openClient(remote, undefined);
    // Hold every batch statement between its check and its writes: the ledger claim sleeps.
    await remote.sql
      .unsafe(
        `
      CREATE FUNCTION slow_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.8); RETURN NEW; END $$;
      CREATE TRIGGER slow_claim BEFORE INSERT ON _ominipg_ledger FOR EACH ROW EXECUTE FUNCTION slow_claim();
    `,
      )
      .simple();
    await db.query(`INSERT INTO docs (id, title) VALUES (20, 'mine')`);
    const syncing = db.sync();
    // Once the batch statement is in the claim (its check done: no row 20), another session inserts row 20.
    for (let i = 0; i < 100; i++) {
      const [busy] =
        await remote.sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'WITH ominipg_g0 %' AND wait_event = 'PgSleep'`;
      if (busy!.n > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await remote.sql`INSERT INTO docs (id, title) VALUES (20, 'theirs')`;
    // The statement writes nothing and fails, retryable (this client makes one attempt per sync).
    await expect(syncing).rejects.toMatchObject({ code: "CONFLICT_RACE", retryable: true });
    expect(await remote.sql`SELECT title FROM docs WHERE id = 20`).toEqual([{ title: "theirs" }]);
    expect(await queued(db)).toBe(1);
    const result = await db.sync();
    expect(result.conflicts).toBe(1);
    expect(events).toMatchObject([
      {
        origin: "push",
        key: { id: 20 },
        base: null,
        local: { title: "mine" },
        remote: { title: "theirs" },
        resolution: "local",
      },
    ]);
    expect(await remote.sql`SELECT title FROM docs WHERE id = 20`).toEqual([{ title: "mine" }]);
  });

  it("gives up for this sync (retryable) when the row changes at every attempt", async () => {
    const { remote } = await setup([]);
    let n = 0;
    const { db } = await openClient(remote, async () => {
      await remote.sql`UPDATE docs SET qty = ${++n} WHERE id = 1`;
      return "local" as const;
    });
    await db.query(`UPDATE docs SET qty = 100 WHERE id = 1`);
    await remote.sql`UPDATE docs SET qty = 50 WHERE id = 1`;
    await expect(db.sync()).rejects.toMatchObject({ code: "CONFLICT_CHURN", retryable: true });
    expect(await queued(db)).toBe(1);
  });
});

describe("three clients", () => {
  it("pull while local changes are pending, remote deletes, offline across many changes, no echo", async () => {
    const { remote, clients } = await setup(["merge", undefined, "remote-wins"]);
    const [A, B, C] = clients as [Client, Client, Client];

    // A goes offline with edits; B and C keep syncing many changes, including deletes and inserts.
    await A.db.query(
      `UPDATE docs SET body = 'A was here' WHERE id = 1; UPDATE docs SET title = 'A3' WHERE id = 3; INSERT INTO docs (id, title) VALUES (50, 'A new')`,
    );
    for (let round = 0; round < 20; round++) {
      await B.db.query(`INSERT INTO docs (id, title, qty) VALUES ($1, $2, $3)`, [100 + round, `B ${round}`, round]);
      await B.db.query(`UPDATE docs SET qty = qty + 1 WHERE id = 1`);
      await B.db.sync();
      await C.db.pull();
      await C.db.query(`UPDATE docs SET title = $1 WHERE id = $2`, [`C ${round}`, 100 + round]);
      if (round % 5 === 4) await C.db.query(`DELETE FROM docs WHERE id = $1`, [100 + round - 2]);
      await C.db.sync();
      await B.db.pull();
    }
    await C.db.query(`UPDATE docs SET title = 'C3' WHERE id = 3; DELETE FROM docs WHERE id = 2`);
    await C.db.sync();

    // A pulls first, with its changes pending: other rows arrive, remote deletes too, its own rows are held.
    const pulled = await A.db.pull();
    expect(pulled.conflicts).toBe(1); // doc 3: C changed the title A changed
    expect(A.events).toMatchObject([
      { origin: "pull", key: { id: 3 }, resolution: "local-pending", local: { title: "A3" }, remote: { title: "C3" } },
    ]);
    expect(await localDoc(A.db, 2)).toBeUndefined();
    // Doc 1 is held as it is (B's qty arrives after A's push): A's change touched body only, so no conflict.
    expect(await localDoc(A.db, 1)).toMatchObject({ body: "A was here", qty: 1 });
    expect(await queued(A.db)).toBe(3); // pulled rows are not queued
    const pushed = await A.db.sync();
    expect(pushed.conflicts).toBe(1);
    // merge: C's title for doc 3 (both changed it), A's body for doc 1 (only A changed it).
    expect(await remoteDoc(remote, 3)).toMatchObject({ title: "C3" });
    expect(await remoteDoc(remote, 1)).toMatchObject({ body: "A was here", qty: 21 });
    // The pull's record of doc 3 became the push's settlement: one row.
    expect(await records(A.db)).toEqual([
      {
        origin: "push",
        table_name: "docs",
        row_key: { id: 3 },
        base: "three",
        local: "A3",
        remote: "C3",
        resolution: "merge",
        resolved: "C3",
      },
    ]);

    // Everyone converges; a sync after a pull pushes nothing (no echo).
    for (const c of [A, B, C]) {
      await c.db.pull();
      expect((await c.db.sync()).pushed).toBe(0);
      await expectSameRows(c.db, remote.sql, TABLES);
    }
  });
});

describe("unregister()", () => {
  it("removes only this client's server-side state, after settling what it says was applied", async () => {
    const { remote, clients } = await setup([undefined, undefined], true); // it counts the remote's ledger rows
    const [A, B] = clients as [Client, Client];
    // Each client leaves a ledger row behind: its batch committed remotely, the local clean-up never ran.
    const crash = () => {
      throw new Error("crashed after the remote COMMIT");
    };
    for (const [c, id] of [
      [A, 60],
      [B, 61],
    ] as const) {
      await c.db.query(`INSERT INTO docs (id, title) VALUES ($1, 'x')`, [id]);
      testHooks.afterRemoteCommit = crash;
      await expect(c.db.sync()).rejects.toThrow();
      testHooks.afterRemoteCommit = undefined;
    }
    expect((await A.db.status()).remote).toMatchObject({ reachable: true, ledgerRows: 1 });
    expect((await B.db.status()).remote).toMatchObject({ ledgerRows: 1 });
    expect(await queued(A.db)).toBe(1);

    expect(await A.db.unregister()).toEqual({ ledgerRows: 1 });
    expect((await A.db.status()).remote).toMatchObject({ ledgerRows: 0 });
    expect((await B.db.status()).remote).toMatchObject({ ledgerRows: 1 });
    // The applied batch is off A's queue (never pushed twice); B's state is intact and B finishes normally.
    expect(await queued(A.db)).toBe(0);
    expect((await B.db.sync()).pushed).toBe(0);
    expect((await B.db.status()).remote).toMatchObject({ ledgerRows: 0 });
    expect(await remote.sql`SELECT id FROM docs WHERE id >= 60 ORDER BY id`).toEqual([{ id: 60 }, { id: 61 }]);
    // A keeps working after unregister().
    await A.db.query(`UPDATE docs SET title = 'after' WHERE id = 60`);
    expect((await A.db.sync()).pushed).toBe(1);
    expect(await remote.sql`SELECT title FROM docs WHERE id = 60`).toEqual([{ title: "after" }]);
  });
});

describe("keys and types", () => {
  it("a composite key, a generated column, an identity column and arrays go through a resolver and a merge", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const schema = [
      `CREATE TABLE IF NOT EXISTS lines (order_id int, n int, serial int GENERATED ALWAYS AS IDENTITY, qty int NOT NULL, total int GENERATED ALWAYS AS (qty * 2) STORED,
         tags text[], note text, PRIMARY KEY (order_id, n))`,
    ];
    await remote.sql.unsafe(schema[0]!);
    await remote.sql`INSERT INTO lines (order_id, n, qty, tags) VALUES (1, 1, 10, '{a}'), (1, 2, 20, '{b}')`;
    const open = async (conflicts: SyncOptions["conflicts"]) => {
      const db = await Ominipg.connect({
        syncUrl: remote.url,
        schemaSQL: schema,
        sync: { conflicts, retry: { attempts: 1 } },
      });
      cleanup(() => db.close());
      await db.pull();
      return db;
    };
    const A = await open({
      tables: {
        lines: ({ local, remote: r }) => ({
          qty: Number(local!.qty) + Number(r!.qty),
          tags: [...(r!.tags as string[]), ...(local!.tags as string[])],
        }),
      },
    });
    const M = await open("merge");
    const B = await open("overwrite");
    await A.query(`UPDATE lines SET qty = 11, tags = '{a,x}' WHERE order_id = 1 AND n = 1`);
    await M.query(`UPDATE lines SET qty = 21, note = 'M' WHERE order_id = 1 AND n = 2`);
    await B.query(
      `UPDATE lines SET qty = 12, tags = '{a,y}' WHERE order_id = 1 AND n = 1; UPDATE lines SET qty = 22 WHERE order_id = 1 AND n = 2`,
    );
    await B.sync();
    expect((await A.sync()).conflicts).toBe(1);
    expect((await M.sync()).conflicts).toBe(1);
    expect(await remote.sql`SELECT order_id, n, serial, qty, total, tags, note FROM lines ORDER BY n`).toEqual([
      { order_id: 1, n: 1, serial: 1, qty: 23, total: 46, tags: ["a", "y", "a", "x"], note: null },
      { order_id: 1, n: 2, serial: 2, qty: 22, total: 44, tags: ["b"], note: "M" },
    ]);
    // The records' resolved rows have the generated column as computed from the row written, not the remote's before.
    const resolved = async (db: Ominipg) =>
      (
        await db.query<{ qty: number; total: number }>(
          `SELECT (resolved->>'qty')::int AS qty, (resolved->>'total')::int AS total FROM _ominipg_conflicts`,
        )
      ).rows;
    expect(await resolved(A)).toEqual([{ qty: 23, total: 46 }]);
    expect(await resolved(M)).toEqual([{ qty: 22, total: 44 }]);
    for (const db of [A, M, B]) {
      await db.pull();
      await expectSameRows(db, remote.sql, { lines: "order_id, n" });
    }
  });
});
