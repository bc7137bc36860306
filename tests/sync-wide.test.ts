// Wide rows between two clients (issue 18), against the real server: updates log only the columns they assign,
// and every strategy still decides on whole rows. A (offline) changes some columns of row 1 in several
// statements (coalesced into one push), B changes others and pushes first; when both changed a column, that is
// a conflict. The document and the long text are NOT NULL, so a push that wrote a partial row would fail.
import { describe, expect, it } from "vitest";
import { Ominipg, type Conflict, type ConflictEvent, type SyncOptions } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows } from "./pull-helpers.js";
import { queued } from "./sync-helpers.js";
import { DOC, WIDE_SCHEMA, wideRow } from "./wide-helpers.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const TABLES = { wide: "id" };
const cleanup = cleanupAfterEach();

interface Client {
  db: Ominipg;
  events: ConflictEvent[];
}

async function setup(strategy: SyncOptions["conflicts"]): Promise<{ remote: TestDatabase; A: Client; B: Client }> {
  const remote = await createTestDatabase();
  cleanup(() => remote.drop());
  for (const s of WIDE_SCHEMA) await remote.sql.unsafe(s);
  for (const id of [1, 2]) await remote.sql.unsafe(wideRow(id));
  const open = async (conflicts: SyncOptions["conflicts"]): Promise<Client> => {
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: WIDE_SCHEMA,
      sync: { retry: { attempts: 1 }, ...(conflicts === undefined ? {} : { conflicts }) },
    });
    cleanup(() => db.close());
    const events: ConflictEvent[] = [];
    db.on("conflict", (c) => events.push(c));
    await db.pull();
    return { db, events };
  };
  return { remote, A: await open(strategy), B: await open(undefined) };
}

const A_EDITS = [
  `UPDATE wide SET n1 = 11 WHERE id = 1`,
  `UPDATE wide SET doc = jsonb_set(doc, '{k0}', '"by A"') WHERE id = 1`,
  `UPDATE wide SET t1 = 'A' WHERE id = 1`,
];

async function row(db: Ominipg | TestDatabase, id = 1): Promise<Record<string, unknown>> {
  const sql = `SELECT n1, n2, t1, t2, doc ->> 'k0' AS k0, doc ->> 'k1' AS k1, length(body) AS body FROM wide WHERE id = ${id}`;
  return "sql" in db ? (await db.sql.unsafe(sql))[0]! : (await db.query(sql)).rows[0]!;
}

const ORIGINAL_K0 = (JSON.parse(DOC) as Record<string, string>).k0;

describe("two clients change different columns of a wide row", () => {
  it.each(["overwrite", "remote-wins", "merge"] as const)("%s: no conflict, both sides' columns kept", async (s) => {
    const { remote, A, B } = await setup(s);
    for (const q of A_EDITS) await A.db.query(q);
    await B.db.query(`UPDATE wide SET n2 = 22, t2 = 'B' WHERE id = 1`);
    await B.db.sync();
    expect((await A.db.sync()).conflicts).toBe(0);
    expect(await row(remote)).toEqual({
      n1: 11,
      n2: 22,
      t1: "A",
      t2: "B",
      k0: "by A",
      k1: expect.any(String),
      body: 1020,
    });
    await A.db.pull();
    await B.db.pull();
    await expectSameRows(A.db, remote.sql, TABLES);
    await expectSameRows(B.db, remote.sql, TABLES);
    expect(A.events).toEqual([]);
  });
});

describe("both change t1 (a conflict), each on other columns too", () => {
  const B_EDIT = `UPDATE wide SET t1 = 'B', n2 = 22 WHERE id = 1`;
  it.each([
    ["overwrite", { n1: 11, n2: 22, t1: "A", k0: "by A" }, "local"],
    ["remote-wins", { n1: 0, n2: 22, t1: "B", k0: ORIGINAL_K0 }, "remote"],
    // A column both changed takes the remote's value; the ones only A changed keep A's.
    ["merge", { n1: 11, n2: 22, t1: "B", k0: "by A" }, "merge"],
  ] as const)("%s", async (strategy, expected, resolution) => {
    const { remote, A, B } = await setup(strategy);
    for (const q of A_EDITS) await A.db.query(q);
    await B.db.query(B_EDIT);
    await B.db.sync();
    expect((await A.db.sync()).conflicts).toBe(1);
    expect(await row(remote)).toMatchObject({ ...expected, body: 1020 });
    expect(await row(A.db)).toMatchObject(expected);
    expect(A.events[0]).toMatchObject({ origin: "push", resolution });
    expect(await queued(A.db)).toBe(0);
    await B.db.pull();
    await expectSameRows(A.db, remote.sql, TABLES);
    await expectSameRows(B.db, remote.sql, TABLES);
  });

  it("a resolver sees whole rows: base, local and remote with every column", async () => {
    const seen: Conflict[] = [];
    const { remote, A } = await setup((c) => {
      seen.push(c);
      return { t1: `${String(c.local!.t1)}+${String(c.remote!.t1)}` };
    });
    for (const q of A_EDITS) await A.db.query(q);
    const { B } = { B: await Ominipg.connect({ syncUrl: remote.url, schemaSQL: WIDE_SCHEMA }) };
    cleanup(() => B.close());
    await B.pull();
    await B.query(B_EDIT);
    await B.sync();
    await A.db.sync();
    expect(seen).toHaveLength(1);
    const [c] = seen;
    for (const image of [c!.base, c!.local, c!.remote]) expect(Object.keys(image!)).toHaveLength(32);
    expect(c!.base).toMatchObject({ n1: 0, t1: "", n2: 0, email: "u1@x", body: expect.stringMatching(/^lorem/) });
    expect((c!.base!.doc as Record<string, string>).k0).toBe(ORIGINAL_K0);
    expect(c!.local).toMatchObject({ n1: 11, t1: "A", n2: 0, doc: expect.objectContaining({ k0: "by A" }) });
    expect(c!.remote).toMatchObject({ n1: 0, t1: "B", n2: 22 });
    // Columns the resolver leaves out are as "overwrite" leaves them.
    expect(await row(remote)).toMatchObject({ n1: 11, n2: 22, t1: "A+B", k0: "by A", body: 1020 });
    await expectSameRows(A.db, remote.sql, TABLES);
  });
});

describe("a remote row gone under a one-column update", () => {
  it("overwrite recreates it whole from the local row", async () => {
    const { remote, A, B } = await setup("overwrite");
    await A.db.query(`UPDATE wide SET n1 = 11 WHERE id = 2`);
    await B.db.query(`DELETE FROM wide WHERE id = 2`);
    await B.db.sync();
    expect((await A.db.sync()).conflicts).toBe(1);
    expect(await row(remote, 2)).toMatchObject({ n1: 11, k0: ORIGINAL_K0, body: 1020 });
    await expectSameRows(A.db, remote.sql, TABLES);
  });
});

describe("a pull while a one-column update is pending", () => {
  it("a remote change to another column is no conflict; to the same column it is, with whole rows", async () => {
    const { remote, A, B } = await setup(undefined);
    await A.db.query(`UPDATE wide SET n1 = 11 WHERE id = 1`);
    await B.db.query(`UPDATE wide SET n2 = 22 WHERE id = 1`);
    await B.db.sync();
    await A.db.pull();
    expect(A.events).toEqual([]);
    await B.db.query(`UPDATE wide SET n1 = 99 WHERE id = 1`);
    await B.db.sync();
    await A.db.pull();
    expect(A.events).toHaveLength(1);
    expect(A.events[0]).toMatchObject({ origin: "pull", resolution: "local-pending" });
    expect(A.events[0]!.base).toMatchObject({ n1: 0, n2: 0, body: expect.stringMatching(/^lorem/) });
    expect(A.events[0]!.local).toMatchObject({ n1: 11 });
    expect(A.events[0]!.remote).toMatchObject({ n1: 99, n2: 22 });
    await A.db.sync();
    expect(await row(remote)).toMatchObject({ n1: 11, n2: 22 });
  });
});

describe("a conflict settled on a change that logged only the columns it assigned", () => {
  const SCHEMA = [
    `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY, a text, b text, code text UNIQUE, parent int REFERENCES p (id))`,
    `CREATE TABLE IF NOT EXISTS c (id int PRIMARY KEY, pid int REFERENCES p (id) ON UPDATE CASCADE ON DELETE CASCADE)`,
  ];

  async function open(conflicts: SyncOptions["conflicts"]): Promise<{ db: Ominipg; remote: TestDatabase }> {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const db = await Ominipg.connect({ syncUrl: remote.url, schemaSQL: SCHEMA, sync: { conflicts, feed: "off" } });
    cleanup(() => db.close());
    await db.query(
      `INSERT INTO p VALUES (1, 'a0', 'b0', 'x', NULL), (2, 'a0', 'b0', 'y', NULL), (3, 'a0', 'b0', NULL, NULL)`,
    );
    await db.query(`INSERT INTO c VALUES (100, 1)`);
    await db.sync();
    await remote.sql.unsafe(`UPDATE p SET a = 'remote' WHERE id = 1`);
    await db.query(`UPDATE p SET a = 'local' WHERE id = 1`); // a conflict at the push
    return { db, remote };
  }

  it.each(["overwrite", "remote-wins", "merge"] as const)(
    "%s: a later change of another column, queued behind it, is kept on both sides",
    async (strategy) => {
      const { db, remote } = await open(strategy);
      await db.query(`UPDATE p SET b = 'later', parent = 1 WHERE id = 1`); // a window of its own (a self-reference)
      expect((await db.sync()).conflicts).toBe(1);
      expect(await queued(db)).toBe(0);
      await expectSameRows(db, remote.sql, { p: "id", c: "id" });
      expect((await db.query(`SELECT b FROM p WHERE id = 1`)).rows).toEqual([{ b: "later" }]);
    },
  );

  it("overwrite: a later key change does not make it a delete (the remote's child rows stay)", async () => {
    const { db, remote } = await open("overwrite");
    await db.query(`UPDATE p SET code = 'z' WHERE id = 2`);
    await db.query(`UPDATE p SET code = 'y' WHERE id = 3`); // takes a value freed in the same window: the window ends
    await db.query(`UPDATE p SET id = 10 WHERE id = 1`); // the child follows locally
    expect((await db.sync()).conflicts).toBe(1);
    await expectSameRows(db, remote.sql, { p: "id", c: "id" });
    expect(await remote.sql.unsafe(`SELECT id, pid FROM c`)).toEqual([{ id: 100, pid: 10 }]);
  });
});
