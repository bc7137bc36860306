import type { PGlite } from "@electric-sql/pglite";

/** An in-memory file as PGlite's file system (Emscripten's MEMFS) keeps it. */
interface MemFile {
  contents: Uint8Array;
}

interface MemFs {
  expandFileStorage?: (node: MemFile, size: number) => void;
  [GROWN]?: true;
}

/** Marks a file system already changed (each PGlite instance has its own; never wrap one twice). */
const GROWN = Symbol("ominipg.grown");

/** How much a growing in-memory file's capacity grows at least, once past 1 MB. */
const GROWTH = 1.5;

/**
 * PGlite's in-memory files grow by 12.5% once past 1 MB, each time copying the whole file to a new buffer: a
 * table loaded or updated in memory is copied about 9 times its size as it grows, and a 40 MB table grown by
 * one more page is a 40 MB copy in the middle of a statement. Growing by half copies about 3 times the size, at
 * the price of at most a third of a file's buffer unused. PGlite's own growth where its file system is not the
 * one this knows (another build): nothing is changed.
 */
export function growFilesByHalf(db: PGlite): void {
  const memfs = (db.Module as unknown as { MEMFS?: MemFs }).MEMFS;
  const expand = memfs?.expandFileStorage;
  if (!memfs || typeof expand !== "function" || memfs[GROWN]) return;
  memfs[GROWN] = true;
  memfs.expandFileStorage = (node, size) => {
    const capacity = node.contents.length;
    expand.call(
      memfs,
      node,
      capacity >= size || capacity < 1 << 20 ? size : Math.max(size, Math.floor(capacity * GROWTH)),
    );
  };
}
