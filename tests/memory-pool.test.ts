// A database opened after another one closed runs in the closed one's WebAssembly memory (src/local/memory-pool.ts),
// zeroed first: nothing of the closed database shows in the new one, and two open databases never share one.
import type { PGlite } from "@electric-sql/pglite";
import { afterEach, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { drop } from "../src/local/memory-pool.js";

const open: Ominipg[] = [];
afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
});

async function database(): Promise<{ db: Ominipg; memory: { buffer: ArrayBuffer } }> {
  const db = await Ominipg.connect({});
  open.push(db);
  const pglite = (db as unknown as { driver: { pglite: PGlite } }).driver.pglite;
  return { db, memory: (pglite.Module as unknown as { wasmMemory: { buffer: ArrayBuffer } }).wasmMemory };
}

async function close(db: Ominipg): Promise<void> {
  open.splice(open.indexOf(db), 1);
  await db.close();
}

/** Whether `text` is anywhere in the memory's bytes. */
function holds(memory: { buffer: ArrayBuffer }, text: string): boolean {
  return Buffer.from(memory.buffer).includes(Buffer.from(text));
}

describe("the memory of a closed database", () => {
  it("serves the next database, zeroed: none of the closed one's tables, rows or statements show", async () => {
    const marker = `pool-marker-${process.pid}-${Date.now()}`;
    const a = await database();
    await a.db.query(`CREATE TABLE secret (id int PRIMARY KEY, v text)`);
    await a.db.query(`INSERT INTO secret SELECT g, '${marker}' || g FROM generate_series(1, 500) g`);
    expect((await a.db.query(`SELECT count(*)::int AS n FROM secret WHERE v LIKE '${marker}%'`)).rows).toEqual([
      { n: 500 },
    ]);
    expect(holds(a.memory, marker)).toBe(true);
    await close(a.db);

    const b = await database();
    expect(b.memory).toBe(a.memory);
    expect(holds(b.memory, marker)).toBe(false);
    expect((await b.db.query(`SELECT to_regclass('secret') AS t`)).rows).toEqual([{ t: null }]);
    await b.db.query(`CREATE TABLE secret (id int PRIMARY KEY, v text)`);
    await b.db.query(`INSERT INTO secret VALUES (1, 'b')`);
    expect((await b.db.query(`SELECT id, v FROM secret`)).rows).toEqual([{ id: 1, v: "b" }]);
  });

  it("opens the next database without PGlite making a memory of its own size (128 MB) to be dropped", async () => {
    const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => object } })
      .WebAssembly;
    const Real = wasm.Memory;
    const made: number[] = [];
    wasm.Memory = class extends Real {
      constructor(d: { initial: number }) {
        super(d);
        made.push(d.initial);
      }
    };
    try {
      const a = await database();
      await close(a.db);
      made.length = 0;
      const b = await database();
      expect(b.memory).toBe(a.memory);
      expect(made.filter((pages) => pages > 1)).toEqual([]);
    } finally {
      wasm.Memory = Real;
    }
  });

  it("is never given to a database while its own is open, and is not kept once let go", async () => {
    const a = await database();
    const b = await database();
    expect(b.memory).not.toBe(a.memory);
    await b.db.query(`CREATE TABLE kept (id int PRIMARY KEY)`);
    await b.db.query(`INSERT INTO kept SELECT generate_series(1, 100)`);
    await close(a.db);
    const c = await database();
    expect(c.memory).toBe(a.memory);
    expect(c.memory).not.toBe(b.memory);
    await c.db.query(`CREATE TABLE kept (id int PRIMARY KEY)`);
    expect((await b.db.query(`SELECT count(*)::int AS n FROM kept`)).rows).toEqual([{ n: 100 }]);

    await close(c.db);
    drop();
    const d = await database();
    expect(d.memory).not.toBe(c.memory);
  });
});
