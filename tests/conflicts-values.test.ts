// The remote row a conflict is settled against arrives with what to_jsonb would lose (an array's lower bounds, a
// float's -0; json's text): where the settled row takes the remote's values, the local row gets them exactly.
import { describe, expect, it } from "vitest";
import { Ominipg, type Conflict, type ConflictEvent, type SyncOptions } from "../src/index.js";
import { createTestDatabase } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";
import { queued } from "./sync-helpers.js";

const cleanup = cleanupAfterEach();
const SCHEMA = `CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, title text, a int[], f float8, fa float8[], j jsonb, d json)`;
const ROW = `SELECT id, title, a::text AS a, array_lower(a, 1) AS lower, f::text AS f, fa::text AS fa, j::text AS j, d::text AS d FROM t WHERE id = 1`;

describe("a settled conflict writes the remote's values into the local row exactly", () => {
  it("remote-wins, merge, a resolver answering remote or returning the remote's values: bounds, -0 (in an array too), json text kept", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    await remote.sql.unsafe(SCHEMA);
    const cases: [SyncOptions["conflicts"], string][] = [
      ["remote-wins", "r"],
      ["merge", "local"], // the title only the local side changed, a and f both changed: the remote's
      [() => "remote", "r"],
      // The remote's a and f as the resolver got them (the others as "overwrite" leaves them: d and j the remote's).
      [(c) => ({ title: "mine", a: c.remote!.a, f: c.remote!.f, fa: c.remote!.fa }), "mine"],
    ];
    for (const [conflicts, title] of cases) {
      await remote.sql`DELETE FROM t`;
      await remote.sql`INSERT INTO t VALUES (1, 'r', '{1}', 1, '{1}', '{}', '{}')`;
      const db = await Ominipg.connect({
        syncUrl: remote.url,
        schemaSQL: [SCHEMA],
        sync: { retry: { attempts: 1 }, conflicts },
      });
      cleanup(() => db.close());
      const events: ConflictEvent[] = [];
      db.on("conflict", (c) => events.push(c));
      await db.pull();
      await db.query(`UPDATE t SET title = 'local', a = '{7}', f = 5, fa = '{5}' WHERE id = 1`);
      await remote.sql.unsafe(
        `UPDATE t SET a = '[0:1]={1,2}', f = '-0', fa = '{-0,1}', j = '{"k": [1]}', d = ' {"k" : 1} ' WHERE id = 1`,
      );
      expect(await db.sync()).toMatchObject({ conflicts: 1 });
      expect(events).toHaveLength(1);
      const expected = {
        id: 1,
        title,
        a: "[0:1]={1,2}",
        lower: 0,
        f: "-0",
        fa: "{-0,1}",
        j: '{"k": [1]}',
        d: ' {"k" : 1} ',
      };
      expect((await db.query(ROW)).rows).toEqual([expected]);
      expect((await remote.sql.unsafe(ROW)).map((r) => ({ ...r }))).toEqual([expected]);
      expect((await db.verify()).ok).toBe(true);
      expect(await queued(db)).toBe(0);
      await db.close();
    }
  });
});

describe("a resolver's base with a STORED generated column", () => {
  // A one-column UPDATE logs the key and what it assigns; the base's other columns come from the local row, where a
  // generated column computed from the assigned one already shows its value after the change (found by a hunt).
  it("shows the generated column as it was before the change, in the resolver's base and the conflict record", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const seen: Conflict[] = [];
    const db = await Ominipg.connect({
      syncUrl: remote.url,
      schemaSQL: [
        `CREATE TABLE IF NOT EXISTS g (id int PRIMARY KEY, a int, b int, s int GENERATED ALWAYS AS (a + b) STORED)`,
      ],
      sync: {
        feed: "off",
        retry: { attempts: 1 },
        conflicts: (c) => {
          seen.push(c);
          return "remote";
        },
      },
    });
    cleanup(() => db.close());
    await db.query(`INSERT INTO g (id, a, b) VALUES (1, 0, 0)`);
    await db.sync();
    await remote.sql.unsafe(`UPDATE g SET a = 100 WHERE id = 1`);
    await db.query(`UPDATE g SET a = 1 WHERE id = 1`);
    await db.sync();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.base).toEqual({ id: 1, a: 0, b: 0, s: 0 });
    expect(seen[0]!.local).toEqual({ id: 1, a: 1, b: 0, s: 1 });
    const { rows } = await db.query<{ base: string }>(`SELECT base::text AS base FROM _ominipg_conflicts`);
    expect(JSON.parse(rows[0]!.base)).toEqual({ id: 1, a: 0, b: 0, s: 0 });
  });
});
