import type { PGlite } from "@electric-sql/pglite";

/**
 * How PGlite's in-memory files (Emscripten's MEMFS) keep their bytes, for every database Ominipg opens: how a
 * growing file grows, and files whose bytes are lent (a template's, shared by every database made from it).
 */

/** An in-memory file as MEMFS keeps it. */
interface MemFile {
  contents: Uint8Array;
  usedBytes: number;
}

interface MemFs {
  expandFileStorage?: (node: MemFile, size: number) => void;
  [ADOPTED]?: true;
}

/** Marks a file system already changed (each PGlite instance has its own; never wrap one twice). */
const ADOPTED = Symbol("ominipg.memfs");

/** How much a growing in-memory file's capacity grows at least, once past 1 MB. */
const GROWTH = 1.5;

/** Buffers lent to files (lendFile): read in place, copied by a file before its first write. */
const lent = new WeakSet<ArrayBufferLike>();

/**
 * Take over how the database's in-memory files grow and are written. True when this PGlite build's file system is
 * the one this knows (then lendFile may be used on it); false, and nothing changed, otherwise.
 *
 * Growth: MEMFS grows a file by 12.5% once past 1 MB, each time copying the whole file to a new buffer: a table
 * loaded or updated in memory is copied about 9 times its size as it grows, and a 40 MB table grown by one more
 * page is a 40 MB copy in the middle of a statement. Growing by half copies about 3 times the size, at the price
 * of at most a third of a file's buffer unused.
 *
 * Lent bytes: every write reaches a file's bytes through `expandFileStorage` first (a truncation or fallocate
 * makes a new buffer), so a file whose buffer is lent is copied there, once, before it is written to.
 */
export function adoptFileStorage(module: PGlite["Module"]): boolean {
  const memfs = (module as unknown as { MEMFS?: MemFs }).MEMFS;
  const expand = memfs?.expandFileStorage;
  if (!memfs || typeof expand !== "function") return false;
  if (memfs[ADOPTED]) return true;
  memfs[ADOPTED] = true;
  memfs.expandFileStorage = (node, size) => {
    if (lent.has(node.contents.buffer)) node.contents = node.contents.slice(0, node.usedBytes);
    const capacity = node.contents.length;
    expand.call(
      memfs,
      node,
      capacity >= size || capacity < 1 << 20 ? size : Math.max(size, Math.floor(capacity * GROWTH)),
    );
  };
  return true;
}

/**
 * Make `path` a file holding `data` without copying it: the file reads it in place, and copies it at its first
 * write, so `data` itself is never changed. Only on a file system adoptFileStorage took over.
 */
export function lendFile(FS: PGlite["Module"]["FS"], path: string, data: Uint8Array): void {
  lent.add(data.buffer);
  FS.writeFile(path, data, { canOwn: true });
}
