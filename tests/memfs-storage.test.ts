// How in-memory databases keep their files (src/local/memfs-storage.ts): files grow by half past 1 MB, not by
// PGlite's 12.5%; a new database's files are the init cache's template bytes, lent (one copy for every database
// made from it) and copied by a file at its first write, so no database ever changes another's.
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import type { PGlite } from "@electric-sql/pglite";
import { afterEach, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { InitCache } from "../src/local/init-cache.js";

type Node = { contents: Uint8Array; usedBytes: number };
type Fs = {
  writeFile(path: string, data: Uint8Array): void;
  open(path: string, flags: string): unknown;
  write(stream: unknown, data: Uint8Array, offset: number, length: number, position: number): number;
  close(stream: unknown): void;
  truncate(path: string, length: number): void;
  lookupPath(path: string): { node: Node };
  unlink(path: string): void;
};

const open: Ominipg[] = [];
afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
});

async function database(): Promise<{ db: Ominipg; FS: Fs }> {
  const db = await Ominipg.connect({});
  open.push(db);
  const FS = (db as unknown as { driver: { pglite: PGlite } }).driver.pglite.Module.FS as unknown as Fs;
  return { db, FS };
}

function writeAt(FS: Fs, file: string, position: number, bytes: Uint8Array): Node {
  const stream = FS.open(file, "r+");
  FS.write(stream, bytes, 0, bytes.length, position);
  FS.close(stream);
  return FS.lookupPath(file).node;
}

/** A catalog's file that a new database's session does not write (until a checkpoint after it changed). */
const PG_PROC = async (db: Ominipg) =>
  `/pglite/data/${(await db.query<{ p: string }>(`SELECT pg_relation_filepath('pg_proc') AS p`)).rows[0]!.p}`;

describe("in-memory file growth", () => {
  it("a file past 1 MB grows by half, and a table that grows keeps every row", async () => {
    const { db, FS } = await database();
    const file = "/tmp/ominipg-growth";
    FS.writeFile(file, new Uint8Array(2 << 20));
    const node = writeAt(FS, file, 2 << 20, new Uint8Array([1])); // one byte past the end
    expect(node.usedBytes).toBe((2 << 20) + 1);
    expect(node.contents.length).toBe(3 << 20); // PGlite's own: 2.25 MB
    expect(node.contents[2 << 20]).toBe(1);
    FS.unlink(file);

    await db.query(`CREATE TABLE grown (id int PRIMARY KEY, v text)`);
    await db.query(`INSERT INTO grown SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`);
    await db.query(`UPDATE grown SET v = repeat('y', 200) WHERE id % 3 = 0`);
    const { rows } = await db.query<{ n: number; y: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE v LIKE 'y%')::int AS y FROM grown`,
    );
    expect(rows).toEqual([{ n: 20000, y: 6666 }]);
  });
});

describe("a new in-memory database's files", () => {
  it("share the template's bytes until written; what one database writes no other sees", async () => {
    const first = await database();
    const second = await database();
    const file = await PG_PROC(first.db);
    const a = first.FS.lookupPath(file).node;
    const b = second.FS.lookupPath(file).node;
    expect(a.usedBytes).toBeGreaterThan(0);
    expect(a.contents.buffer).toBe(b.contents.buffer); // one copy of the template for both
    const shared = a.contents.buffer;
    const before = Uint8Array.from(b.contents);

    // A write into a lent file copies it first; a truncation makes a buffer of its own.
    const written = writeAt(first.FS, file, 8, new Uint8Array([0xde, 0xad]));
    expect(written.contents.buffer).not.toBe(shared);
    expect([...written.contents.subarray(8, 10)]).toEqual([0xde, 0xad]);
    expect([...second.FS.lookupPath(file).node.contents]).toEqual([...before]);
    second.FS.truncate(file, 100);
    expect(second.FS.lookupPath(file).node.contents.buffer).not.toBe(shared);

    // Everything a session writes (its catalogs, a checkpoint) leaves the template as it was.
    await first.db.query(`CREATE TABLE mine (id int PRIMARY KEY, v text)`);
    await first.db.query(`INSERT INTO mine SELECT g, repeat('z', 100) FROM generate_series(1, 5000) g`);
    await first.db.query(`VACUUM FULL pg_class`);
    await first.db.query(`CHECKPOINT`);
    const third = await database();
    expect(third.FS.lookupPath(file).node.contents.buffer).toBe(shared);
    expect((await third.db.query(`SELECT to_regclass('mine') AS t`)).rows).toEqual([{ t: null }]);
    const cache = InitCache.locate()!;
    const manifest = JSON.parse(fs.readFileSync(path.join(cache.dir, "manifest.json"), "utf8")) as { sha256: string };
    expect(createHash("sha256").update(new Uint8Array(shared)).digest("hex")).toBe(manifest.sha256);
  });
});
