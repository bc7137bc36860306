// The applier reorders and merges the log (truncates, then upserts parents first, then deletes children
// first). These cases each depend on the log's order in a way that reordering would break on the remote
// (unique values handed over, keys reused, cascades the log does not show, self-references); plus a
// seeded random workload over all of it. Remote rows must equal local rows after every sync.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Ominipg } from "../src/index.js";
import { createTestDatabase, type TestDatabase } from "./harness/index.js";
import { expectSameRows, openSynced, queued } from "./sync-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY, name text, email text UNIQUE)`,
  `CREATE TABLE IF NOT EXISTS c (id int PRIMARY KEY, pid int REFERENCES p ON UPDATE CASCADE ON DELETE CASCADE, v text)`,
  `CREATE TABLE IF NOT EXISTS nodes (id int PRIMARY KEY, parent_id int REFERENCES nodes, label text)`,
  `CREATE TABLE IF NOT EXISTS tags (id int PRIMARY KEY, label text NOT NULL, n int)`,
  `CREATE UNIQUE INDEX IF NOT EXISTS tags_label ON tags (lower(label))`,
  `CREATE TABLE IF NOT EXISTS ud (id int PRIMARY KEY, code text UNIQUE DEFERRABLE INITIALLY DEFERRED, slot int UNIQUE DEFERRABLE)`,
];
const ALL = { p: "id", c: "id", nodes: "id", tags: "id", ud: "id" };

const CASES: { name: string; before: string[]; work: string[] }[] = [
  {
    name: "a key freed by a delete, then taken by a key change",
    before: [`INSERT INTO p VALUES (1,'a',null),(2,'b',null)`],
    work: [`DELETE FROM p WHERE id=2`, `UPDATE p SET id=2 WHERE id=1`],
  },
  {
    name: "a unique value freed by a delete, then taken by an insert",
    before: [`INSERT INTO p VALUES (1,'a','a@x')`],
    work: [`DELETE FROM p WHERE id=1`, `INSERT INTO p VALUES (3,'c','a@x')`],
  },
  {
    name: "a unique value handed over to a row written earlier in the window",
    before: [`INSERT INTO p VALUES (1,'a','a@x'),(2,'b','b@x')`],
    work: [
      `UPDATE p SET name='x' WHERE id=1`,
      `UPDATE p SET email=NULL WHERE id=2`,
      `UPDATE p SET email='b@x' WHERE id=1`,
    ],
  },
  {
    name: "unique values swapped through a temporary value",
    before: [`INSERT INTO p VALUES (1,'a','a@x'),(2,'b','b@x')`],
    work: [
      `UPDATE p SET email='tmp' WHERE id=1`,
      `UPDATE p SET email='a@x' WHERE id=2`,
      `UPDATE p SET email='b@x' WHERE id=1`,
    ],
  },
  {
    name: "keys swapped through a temporary key",
    before: [`INSERT INTO p VALUES (1,'a',null),(2,'b',null)`],
    work: [`UPDATE p SET id=3 WHERE id=1`, `UPDATE p SET id=1 WHERE id=2`, `UPDATE p SET id=2 WHERE id=3`],
  },
  {
    name: "keys shifted up one by one",
    before: [`INSERT INTO p VALUES (1,'a',null),(2,'b',null),(3,'c',null)`],
    work: [`UPDATE p SET id=4 WHERE id=3`, `UPDATE p SET id=3 WHERE id=2`, `UPDATE p SET id=2 WHERE id=1`],
  },
  {
    name: "a key moved away, then reused by an insert",
    before: [`INSERT INTO p VALUES (1,'a',null)`],
    work: [`INSERT INTO p VALUES (2,'b',null)`, `UPDATE p SET id=5 WHERE id=1`, `INSERT INTO p VALUES (1,'new',null)`],
  },
  {
    name: "deleted, inserted again, then given another key",
    before: [`INSERT INTO p VALUES (1,'a',null)`],
    work: [`DELETE FROM p WHERE id=1`, `INSERT INTO p VALUES (1,'b',null)`, `UPDATE p SET id=9 WHERE id=1`],
  },
  {
    name: "parent inserted, child inserted, parent deleted (cascade)",
    before: [],
    work: [`INSERT INTO p VALUES (1,'a',null)`, `INSERT INTO c VALUES (1,1,'c')`, `DELETE FROM p WHERE id=1`],
  },
  {
    name: "child updated, then its parent deleted (cascade)",
    before: [`INSERT INTO p VALUES (1,'a',null)`, `INSERT INTO c VALUES (1,1,'c')`],
    work: [`UPDATE c SET v='v2' WHERE id=1`, `DELETE FROM p WHERE id=1`],
  },
  {
    name: "parent deleted (cascade) and inserted again",
    before: [`INSERT INTO p VALUES (1,'a',null)`, `INSERT INTO c VALUES (1,1,'c')`],
    work: [`DELETE FROM p WHERE id=1`, `INSERT INTO p VALUES (1,'a2',null)`, `INSERT INTO c VALUES (2,1,'c2')`],
  },
  {
    name: "parent's key changes (cascade), then the child is updated: both in one remote statement",
    before: [`INSERT INTO p VALUES (1,'a',null)`, `INSERT INTO c VALUES (1,1,'c'), (2,1,'d')`],
    work: [`UPDATE p SET id=5 WHERE id=1`, `UPDATE c SET v='after' WHERE id=1`, `DELETE FROM c WHERE id=2`],
  },
  {
    name: "child inserted, then its parent's key changes (cascade)",
    before: [`INSERT INTO p VALUES (1,'a',null)`],
    work: [`INSERT INTO c VALUES (1,1,'c')`, `UPDATE p SET id=5 WHERE id=1`],
  },
  {
    name: "a value of a unique index on an expression freed, then taken by another row",
    before: [`INSERT INTO tags VALUES (1, 'Red', 0), (2, 'blue', 0)`],
    work: [
      `UPDATE tags SET n = 1`,
      `UPDATE tags SET label = 'Green' WHERE id = 1`,
      `UPDATE tags SET label = 'RED' WHERE id = 2`,
    ],
  },
  {
    name: "values of a DEFERRABLE unique column swapped in one statement",
    before: [`INSERT INTO ud VALUES (1,'a',1),(2,'b',2)`],
    work: [`UPDATE ud SET code = CASE id WHEN 1 THEN 'b' ELSE 'a' END`],
  },
  {
    name: "values of DEFERRABLE unique columns rotated in one statement, then a row deleted and its values taken",
    before: [`INSERT INTO ud VALUES (1,'a',1),(2,'b',2),(3,'c',3)`],
    work: [
      `UPDATE ud SET code = CASE code WHEN 'a' THEN 'b' WHEN 'b' THEN 'c' ELSE 'a' END, slot = 4 - slot`,
      `DELETE FROM ud WHERE id = 2`,
      `INSERT INTO ud VALUES (4,'c',2)`,
    ],
  },
  {
    name: "self-reference: a row pointed at a row inserted after its first change",
    before: [`INSERT INTO nodes VALUES (1,NULL,'a')`],
    work: [
      `UPDATE nodes SET label='b' WHERE id=1`,
      `INSERT INTO nodes VALUES (2,NULL,'c')`,
      `UPDATE nodes SET parent_id=2 WHERE id=1`,
    ],
  },
  {
    name: "self-reference: a parent updated early, deleted after its child",
    before: [`INSERT INTO nodes VALUES (1,NULL,'root'),(2,1,'leaf')`],
    work: [
      `UPDATE nodes SET label='r2' WHERE id=1`,
      `INSERT INTO nodes VALUES (3,NULL,'x')`,
      `DELETE FROM nodes WHERE id=2`,
      `DELETE FROM nodes WHERE id=1`,
    ],
  },
];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Side {
  remote: TestDatabase;
  db: Ominipg;
  batchSize: number;
}

async function openSide(batchSize: number, remote?: TestDatabase): Promise<Side> {
  remote ??= await createTestDatabase();
  return {
    remote,
    batchSize,
    db: await openSynced(remote.url, SCHEMA, { sync: { retry: { attempts: 1 }, batchSize } }),
  };
}

/** Empty both databases; after a failed case (changes the remote refused are left), start over. */
async function reset(side: Side): Promise<Side> {
  try {
    await side.db.query(
      `DELETE FROM c; DELETE FROM p; UPDATE nodes SET parent_id = NULL; DELETE FROM nodes; DELETE FROM tags; DELETE FROM ud`,
    );
    await side.db.sync();
    return side;
  } catch {
    await side.db.close();
    await side.remote.sql`TRUNCATE c, p, nodes, tags, ud`;
    return openSide(side.batchSize, side.remote);
  }
}

describe("sync: order-dependent changes", () => {
  // Each case runs twice at once: with one-row batches (separate remote transactions, batches of one table
  // in parallel) and with the default batch size (a group of rows in one statement). Either can hide an
  // ordering bug that the other shows.
  let sides: Side[] = [];
  beforeAll(async () => {
    sides = await Promise.all([openSide(1), openSide(1000)]);
  });
  afterAll(async () => {
    for (const side of sides) {
      await side.db.close();
      await side.remote.drop();
    }
  });

  for (const { name, before, work } of CASES) {
    it(name, async () => {
      sides = await Promise.all(sides.map(reset));
      await Promise.all(
        sides.map(async ({ db, remote, batchSize }) => {
          for (const s of before) await db.query(s);
          await db.sync();
          for (const s of work) await db.query(s);
          const result = await db.sync().catch((e: Error) => {
            throw new Error(`batchSize ${batchSize}: ${e.message}`);
          });
          expect(result.rejected).toBe(0);
          await expectSameRows(db, remote.sql, ALL);
          expect(await queued(db)).toBe(0);
        }),
      );
    });
  }

  it("a seeded random workload keeps the remote equal to the local database", async () => {
    const { db, remote } = (sides[0] = await reset(sides[0]!));
    const r = rng(20240229);
    const pick = (n: number) => Math.floor(r() * n);
    const id = () => 1 + pick(10);
    const email = () => (r() < 0.3 ? "NULL" : `'e${pick(4)}'`);
    const ops = [
      () => `INSERT INTO p VALUES (${id()}, 'n${pick(9)}', ${email()})`,
      () => `UPDATE p SET email = ${email()} WHERE id = ${id()}`,
      () => `UPDATE p SET id = ${id()} WHERE id = ${id()}`,
      () => `DELETE FROM p WHERE id = ${id()}`,
      () => `INSERT INTO p VALUES (${id()}, 'u', ${email()}) ON CONFLICT (id) DO UPDATE SET name = p.name || '+'`,
      () => `INSERT INTO c VALUES (${id()}, ${id()}, 'v${pick(9)}')`,
      () => `UPDATE c SET pid = ${id()}, v = v || '.' WHERE id = ${id()}`,
      () => `DELETE FROM c WHERE id = ${id()}`,
      () => `INSERT INTO nodes VALUES (${id()}, ${r() < 0.3 ? "NULL" : id()}, 'l')`,
      () => `UPDATE nodes SET parent_id = ${r() < 0.3 ? "NULL" : id()} WHERE id = ${id()}`,
      () => `DELETE FROM nodes WHERE id = ${id()}`,
    ];
    let applied = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 120; i++) {
        if (r() < 0.1) {
          // A transaction of a few statements, some failing (rolled back to a savepoint).
          await db.transaction(async (tx) => {
            for (let j = 0; j < 3; j++) {
              await tx.query(`SAVEPOINT s`);
              await tx.query(ops[pick(ops.length)]!()).then(
                () => tx.query(`RELEASE s`),
                () => tx.query(`ROLLBACK TO s`),
              );
            }
          });
        } else {
          await db.query(ops[pick(ops.length)]!()).catch(() => {}); // constraint violations happen locally too
        }
      }
      const result = await db.sync();
      expect(result.rejected).toBe(0);
      applied += result.applied;
      await expectSameRows(db, remote.sql, ALL);
    }
    expect(applied).toBeGreaterThan(50);
  });
});

describe("sync: a table referencing itself, written by one statement in any order", () => {
  it("a chain inserted children first and deleted root first, in many batches, on a single and a two-column key", async () => {
    const remote = await createTestDatabase();
    const schema = [
      `CREATE TABLE IF NOT EXISTS chain (id int PRIMARY KEY, parent int REFERENCES chain)`,
      // The key's columns referenced in another order than the table's: the pairs go by position.
      `CREATE TABLE IF NOT EXISTS chain2 (a int, b int, pb int, pa int, PRIMARY KEY (a, b),
         FOREIGN KEY (pb, pa) REFERENCES chain2 (b, a))`,
    ];
    try {
      for (const s of schema) await remote.sql.unsafe(s);
      const db = await openSynced(remote.url, schema, {
        sync: { batchSize: 7, copyBatchSize: 0, retry: { attempts: 1 } },
      });
      await db.query(`INSERT INTO chain SELECT g, nullif(g - 1, 0) FROM generate_series(60, 1, -1) AS g`);
      await db.query(
        `INSERT INTO chain2 SELECT g, -g, CASE WHEN g > 1 THEN 1 - g END, nullif(g - 1, 0) FROM generate_series(60, 1, -1) AS g`,
      );
      expect(await db.sync()).toMatchObject({ pushed: 120, rejected: 0 });
      await expectSameRows(db, remote.sql, { chain: "id", chain2: "a, b" });
      await db.query(`DELETE FROM chain`);
      await db.query(`DELETE FROM chain2`);
      expect(await db.sync()).toMatchObject({ pushed: 120, rejected: 0 });
      // Stored root first, so that a DELETE of all reads (and logs) them root first.
      await db.query(`INSERT INTO chain SELECT g, nullif(g - 1, 0) FROM generate_series(1, 60) AS g`);
      await db.query(
        `INSERT INTO chain2 SELECT g, -g, CASE WHEN g > 1 THEN 1 - g END, nullif(g - 1, 0) FROM generate_series(1, 60) AS g`,
      );
      expect(await db.sync()).toMatchObject({ pushed: 120, rejected: 0 });
      const order = await db.query<{ id: number }>(`SELECT id FROM chain LIMIT 2`);
      expect(order.rows.map((r) => r.id)).toEqual([1, 2]);
      await db.query(`DELETE FROM chain`);
      await db.query(`DELETE FROM chain2`);
      expect(await db.sync()).toMatchObject({ pushed: 120, rejected: 0 });
      expect(
        await remote.sql`SELECT (SELECT count(*) FROM chain)::int AS c, (SELECT count(*) FROM chain2)::int AS c2`,
      ).toEqual([{ c: 0, c2: 0 }]);
      expect(await queued(db)).toBe(0);
      await db.close();
    } finally {
      await remote.drop();
    }
  });

  it("a tree larger than a window (12,000 rows), inserted children first and deleted root first, by windows and by COPY batches", async () => {
    const remote = await createTestDatabase();
    const schema = [
      `CREATE TABLE IF NOT EXISTS tree (id int PRIMARY KEY, parent int REFERENCES tree)`,
      `CREATE INDEX IF NOT EXISTS tree_parent ON tree (parent)`, // the deletes' foreign key checks
    ];
    try {
      for (const s of schema) await remote.sql.unsafe(s);
      // copyBatchSize 0: windows only; 5,000: COPY batches smaller than the tree, refused, then the windows.
      for (const copyBatchSize of [0, 5000]) {
        const db = await openSynced(remote.url, schema, {
          sync: { copyBatchSize, batchSize: 1000, concurrency: 1, retry: { attempts: 1 } }, // windows of 10,000 rows
        });
        // Each row's parent is id / 2: a window of the first 10,000 rows logged lacks their parents (inserts) or
        // holds parents whose children come later (deletes). Each statement passed locally, checked at its end.
        await db.query(`INSERT INTO tree SELECT g, nullif(g / 2, 0) FROM generate_series(12000, 1, -1) AS g`);
        expect(await db.sync(), `insert, copyBatchSize ${copyBatchSize}`).toMatchObject({ pushed: 12000, rejected: 0 });
        await expectSameRows(db, remote.sql, { tree: "id" });
        await db.query(`DELETE FROM tree`);
        await db.query(`INSERT INTO tree SELECT g, nullif(g / 2, 0) FROM generate_series(1, 12000) AS g`);
        expect(await db.sync()).toMatchObject({ rejected: 0 });
        await db.query(`DELETE FROM tree`); // read in storage order: root first
        expect(await db.sync(), `delete, copyBatchSize ${copyBatchSize}`).toMatchObject({ pushed: 12000, rejected: 0 });
        expect(await remote.sql`SELECT count(*)::int AS n FROM tree`).toEqual([{ n: 0 }]);
        expect(await queued(db)).toBe(0);
        await db.close();
      }
    } finally {
      await remote.drop();
    }
  });
});

describe("sync: a foreign key only the remote has", () => {
  it("orders the push as a local one would: parents inserted before children, children deleted before parents", async () => {
    const remote = await createTestDatabase();
    try {
      // Locally unrelated tables, named so that the order by name puts the child first.
      await remote.sql.unsafe(
        `CREATE TABLE zparent (id int PRIMARY KEY); CREATE TABLE achild (id int PRIMARY KEY, pid int REFERENCES zparent)`,
      );
      const local = [
        `CREATE TABLE IF NOT EXISTS achild (id int PRIMARY KEY, pid int)`,
        `CREATE TABLE IF NOT EXISTS zparent (id int PRIMARY KEY)`,
      ];
      for (const copyBatchSize of [0, 100_000]) {
        const db = await openSynced(remote.url, local, { remoteSchema: "skip", sync: { batchSize: 5, copyBatchSize } });
        await db.query(`INSERT INTO zparent SELECT generate_series(1, 20)`);
        await db.query(`INSERT INTO achild SELECT g, g FROM generate_series(1, 20) g`);
        expect(await db.sync()).toMatchObject({ pushed: 40, rejected: 0 });
        await db.query(`DELETE FROM achild`);
        await db.query(`DELETE FROM zparent`);
        expect(await db.sync()).toMatchObject({ pushed: 40, rejected: 0 });
        expect(
          await remote.sql`SELECT (SELECT count(*) FROM zparent)::int AS p, (SELECT count(*) FROM achild)::int AS c`,
        ).toEqual([{ p: 0, c: 0 }]);
        await db.close();
      }
    } finally {
      await remote.drop();
    }
  });

  it("a unique index only the remote has: values swapped through a temporary one are pushed, plain or on an expression", async () => {
    const remote = await createTestDatabase();
    try {
      await remote.sql.unsafe(`CREATE TABLE people (id int PRIMARY KEY, email text UNIQUE, nick text, n int);
        CREATE UNIQUE INDEX people_nick ON people (lower(nick))`);
      const db = await openSynced(
        remote.url,
        [`CREATE TABLE IF NOT EXISTS people (id int PRIMARY KEY, email text, nick text, n int)`],
        { remoteSchema: "skip", sync: { retry: { attempts: 1 } } },
      );
      await db.query(`INSERT INTO people VALUES (1, 'a', 'x', 0), (2, 'b', 'y', 0), (3, 'c', 'z', 0)`);
      await db.sync();
      for (const column of ["email", "nick"]) {
        const [one, two] = (
          await db.query<{ v: string }>(`SELECT ${column} AS v FROM people WHERE id IN (1, 2) ORDER BY id`)
        ).rows.map((r) => r.v);
        await db.query(`UPDATE people SET ${column} = 'tmp' WHERE id = 1`);
        await db.query(`UPDATE people SET ${column} = $1 WHERE id = 2`, [one]);
        await db.query(`UPDATE people SET ${column} = $1 WHERE id = 1`, [two]);
        await db.query(`UPDATE people SET n = n + 1 WHERE id = 3`);
        expect(await db.sync(), column).toMatchObject({ rejected: 0 });
        await expectSameRows(db, remote.sql, { people: "id" });
        expect(await queued(db)).toBe(0);
      }
      await db.close();
    } finally {
      await remote.drop();
    }
  });

  it("a unique index only the remote has on two columns, of which an UPDATE's images carry only the one it assigns", async () => {
    const remote = await createTestDatabase();
    try {
      await remote.sql.unsafe(`CREATE TABLE slots (id int PRIMARY KEY, org int, slot int, n int, UNIQUE (org, slot))`);
      const db = await openSynced(
        remote.url,
        [`CREATE TABLE IF NOT EXISTS slots (id int PRIMARY KEY, org int, slot int, n int)`],
        { remoteSchema: "skip", sync: { retry: { attempts: 1 } } },
      );
      await db.query(`INSERT INTO slots VALUES (1, 7, 1, 0), (2, 7, 2, 0)`);
      await db.sync();
      await db.query(`UPDATE slots SET slot = -1 WHERE id = 1`);
      await db.query(`UPDATE slots SET slot = 1 WHERE id = 2`);
      await db.query(`UPDATE slots SET slot = 2 WHERE id = 1`);
      expect(await db.sync()).toMatchObject({ rejected: 0 });
      await expectSameRows(db, remote.sql, { slots: "id" });
      expect(await queued(db)).toBe(0);
      await db.close();
    } finally {
      await remote.drop();
    }
  });

  it("to the table itself, gained by the remote after this client's first sync: the next sync reads it again once refused", async () => {
    const remote = await createTestDatabase();
    try {
      await remote.sql.unsafe(`CREATE TABLE chain (id int PRIMARY KEY, parent int)`);
      const db = await openSynced(remote.url, [`CREATE TABLE IF NOT EXISTS chain (id int PRIMARY KEY, parent int)`], {
        remoteSchema: "skip",
        sync: { batchSize: 7, copyBatchSize: 0, retry: { attempts: 1 } },
      });
      await db.query(`INSERT INTO chain VALUES (1000, NULL)`);
      await db.sync(); // the remote's rules read now
      await remote.sql.unsafe(`ALTER TABLE chain ADD FOREIGN KEY (parent) REFERENCES chain`);
      await db.query(`INSERT INTO chain SELECT g, nullif(g - 1, 0) FROM generate_series(60, 1, -1) AS g`);
      await expect(db.sync()).rejects.toMatchObject({ code: "REMOTE_REJECTED" });
      expect(await db.sync()).toMatchObject({ rejected: 0 });
      expect(await queued(db)).toBe(0);
      await db.close();
    } finally {
      await remote.drop();
    }
  });

  it("to the table itself: a chain pushed in small batches keeps each row after its parent, several batches at once, or inserted children first by one statement", async () => {
    const remote = await createTestDatabase();
    try {
      await remote.sql.unsafe(`CREATE TABLE chain (id int PRIMARY KEY, parent int REFERENCES chain)`);
      const passes = [
        { series: "1, 400", sync: { batchSize: 20, concurrency: 4 } },
        { series: "400, 1, -1", sync: { batchSize: 7 } },
      ];
      for (const { series, sync } of passes) {
        await remote.sql`TRUNCATE chain`;
        const db = await openSynced(remote.url, [`CREATE TABLE IF NOT EXISTS chain (id int PRIMARY KEY, parent int)`], {
          remoteSchema: "skip",
          sync: { copyBatchSize: 0, retry: { attempts: 1 }, ...sync },
        });
        await db.query(`INSERT INTO chain SELECT g, nullif(g - 1, 0) FROM generate_series(${series}) AS g`);
        expect(await db.sync(), series).toMatchObject({ pushed: 400, rejected: 0 });
        expect(await remote.sql`SELECT count(*)::int AS n FROM chain`).toEqual([{ n: 400 }]);
        await db.close();
      }
    } finally {
      await remote.drop();
    }
  });
});
