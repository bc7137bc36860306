// PGlite's in-memory files grow by half past 1 MB (src/local/memfs-growth.ts), not by PGlite's 12.5%.
import type { PGlite } from "@electric-sql/pglite";
import { describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";

type Node = { contents: Uint8Array; usedBytes: number };

describe("in-memory file growth", () => {
  it("a file past 1 MB grows by half, and a table that grows keeps every row", async () => {
    const db = await Ominipg.connect({});
    try {
      const pglite = (db as unknown as { driver: { pglite: PGlite } }).driver.pglite;
      const FS = pglite.Module.FS as unknown as {
        writeFile(path: string, data: Uint8Array): void;
        open(path: string, flags: string): unknown;
        write(stream: unknown, data: Uint8Array, offset: number, length: number, position: number): number;
        close(stream: unknown): void;
        lookupPath(path: string): { node: Node };
        unlink(path: string): void;
      };
      const file = "/tmp/ominipg-growth";
      FS.writeFile(file, new Uint8Array(2 << 20));
      const stream = FS.open(file, "r+");
      FS.write(stream, new Uint8Array([1]), 0, 1, 2 << 20); // one byte past the end
      FS.close(stream);
      const node = FS.lookupPath(file).node;
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
    } finally {
      await db.close();
    }
  });
});
