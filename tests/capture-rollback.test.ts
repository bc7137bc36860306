// The log entry of a change commits and rolls back with the change: rolled-back work leaves no entry, committed
// work always has its entries (and they replay to the committed state).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OminipgError, type Ominipg } from "../src/index.js";
import {
  captureDb,
  closeAll,
  expectReplayGives,
  logSince,
  opsOf,
  snapshot,
  tablesWithKeys,
  watermark,
  type Snapshot,
  type Table,
} from "./capture-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS b (id int PRIMARY KEY, a_id int)`,
];

let db: Ominipg;
let tables: Table[];
let before: Snapshot;
let mark: number;

beforeAll(async () => {
  db = await captureDb(SCHEMA);
  tables = await tablesWithKeys(db);
});
afterAll(closeAll);
beforeEach(async () => {
  await db.query(`TRUNCATE a, b; INSERT INTO a VALUES (1, 'one'), (2, 'two'); INSERT INTO b VALUES (1, 1)`);
  before = await snapshot(db, tables);
  mark = await watermark(db);
});

/** The entries since the test began; they must replay the tables' state at its start into their state now. */
async function committed(): Promise<string[]> {
  const entries = await logSince(db, mark);
  expectReplayGives(before, entries, await snapshot(db, tables), tables);
  return opsOf(entries);
}

describe("rolled back work leaves no entry", () => {
  it("ROLLBACK", async () => {
    await db.query(`BEGIN`);
    await db.query(`INSERT INTO a VALUES (3, 'three')`);
    await db.query(`UPDATE a SET id = 10 WHERE id = 1`);
    await db.query(`TRUNCATE b`);
    await db.query(`ROLLBACK`);
    expect(await committed()).toEqual([]);
  });

  it("an error that aborts the transaction, then COMMIT (which rolls back) or ROLLBACK", async () => {
    for (const end of ["COMMIT", "ROLLBACK"]) {
      await db.query(`BEGIN`);
      await db.query(`INSERT INTO a VALUES (3, 'three')`);
      await expect(db.query(`INSERT INTO a VALUES (1, 'dup')`)).rejects.toMatchObject({ code: "23505" });
      await expect(db.query(`DELETE FROM a`)).rejects.toMatchObject({ code: "25P02" }); // aborted: ignored until the end
      expect((await db.query(end)).command).toBe("ROLLBACK");
    }
    expect(await committed()).toEqual([]);
  });

  it("a failing statement in autocommit: a multi-row write failing on a later row, and a script failing midway", async () => {
    await expect(db.query(`INSERT INTO a VALUES (3, 'x'), (4, 'y'), (1, 'dup')`)).rejects.toMatchObject({
      code: "23505",
    });
    await expect(
      db.query(`UPDATE a SET v = 'changed' WHERE id = 2; TRUNCATE b; INSERT INTO a VALUES (2, 'dup')`),
    ).rejects.toMatchObject({ code: "23505" });
    await expect(
      db.query(`WITH d AS (DELETE FROM b RETURNING *) INSERT INTO a SELECT 1, 'dup' FROM d`),
    ).rejects.toMatchObject({ code: "23505" });
    expect(await committed()).toEqual([]);
  });

  it("ROLLBACK TO SAVEPOINT drops the entries after the savepoint and keeps those before it", async () => {
    await db.query(`BEGIN`);
    await db.query(`INSERT INTO a VALUES (3, 'kept')`);
    await db.query(`SAVEPOINT s1`);
    await db.query(`UPDATE a SET v = 'undone' WHERE id = 3`);
    await db.query(`SAVEPOINT s2`);
    await db.query(`DELETE FROM b`);
    await db.query(`ROLLBACK TO SAVEPOINT s1`);
    await db.query(`UPDATE a SET id = 30 WHERE id = 3`);
    await db.query(`SAVEPOINT s3`);
    await expect(db.query(`INSERT INTO b VALUES (1, 0)`)).rejects.toMatchObject({ code: "23505" });
    await db.query(`ROLLBACK TO s3`); // recovers the aborted transaction
    await db.query(`INSERT INTO b VALUES (2, 30)`);
    await db.query(`RELEASE s3`);
    await db.query(`COMMIT`);
    expect(await committed()).toEqual(["I public.a", "U public.a", "I public.b"]);
  });

  it("a throwing transaction() callback, and a callback whose statement failed", async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query(`INSERT INTO a VALUES (3, 'x')`);
        await tx.query(`DELETE FROM b`);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    const err = await db
      .transaction(async (tx) => {
        await tx.query(`UPDATE a SET v = 'x'`);
        await tx.query(`SELECT 1 / 0`).catch(() => undefined);
      })
      .catch((e: unknown) => e);
    expect((err as OminipgError).code).toBe("TRANSACTION_ABORTED");
    expect(await committed()).toEqual([]);
  });
});

describe("recovering from an aborted transaction", () => {
  it("after DDL in the transaction and an error, ROLLBACK still works and the client goes on", async () => {
    await db.query(`BEGIN`);
    await db.query(`CREATE TABLE scratch (id int PRIMARY KEY)`);
    await expect(db.query(`SELEC 1`)).rejects.toMatchObject({ code: "42601" });
    await expect(db.query(`SELECT 1`)).rejects.toMatchObject({ code: "25P02" });
    expect((await db.query(`ROLLBACK`)).command).toBe("ROLLBACK");
    await db.query(`INSERT INTO a VALUES (3, 'after')`);
    expect(await committed()).toEqual(["I public.a"]);
  });

  // The statement after the error loads the capture catalog inside the aborted transaction and fails; the
  // client must not keep that failed load, and a COMMIT answered ROLLBACK must drop what the DDL changed.
  it("after DDL in the transaction and an error, COMMIT (which rolls back) leaves the client usable", async () => {
    const own = await captureDb(SCHEMA);
    await own.query(`BEGIN`);
    await own.query(`CREATE TABLE scratch (id int PRIMARY KEY)`);
    await expect(own.query(`SELEC 1`)).rejects.toMatchObject({ code: "42601" });
    await expect(own.query(`SELECT 1`)).rejects.toMatchObject({ code: "25P02" });
    expect((await own.query(`COMMIT`)).command).toBe("ROLLBACK");
    await own.query(`INSERT INTO a VALUES (3, 'after')`);
  });
});

describe("committed work has its entries", () => {
  it("in autocommit, in transaction() and in BEGIN / COMMIT, each transaction's entries sharing its txid", async () => {
    await db.query(`INSERT INTO a VALUES (3, 'auto')`);
    await db.transaction(async (tx) => {
      await tx.query(`UPDATE a SET v = 'tx' WHERE id = 3`);
      await tx.query(`INSERT INTO b VALUES (2, 3)`);
    });
    await db.query(`BEGIN`);
    await db.query(`DELETE FROM b WHERE id = 1`);
    await db.query(`UPDATE a SET id = 4 WHERE id = 3`);
    await db.query(`COMMIT`);
    expect(await committed()).toEqual(["I public.a", "U public.a", "I public.b", "D public.b", "U public.a"]);
    const txids = (await logSince(db, mark)).map((e) => e.txid);
    expect(new Set(txids).size).toBe(3);
    expect(txids[1]).toBe(txids[2]);
    expect(txids[3]).toBe(txids[4]);
  });

  it("a savepoint released, then the transaction committed", async () => {
    await db.query(`BEGIN; SAVEPOINT s; INSERT INTO a VALUES (5, 'x'); RELEASE SAVEPOINT s; COMMIT`);
    expect(await committed()).toEqual(["I public.a"]);
  });
});
