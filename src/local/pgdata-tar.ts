/**
 * The entries of a PGlite data-directory dump (`dumpDataDir("none")`: a ustar archive of regular files and
 * directories), read straight from its bytes, and the two ways a new database is filled from them: PGlite's
 * file system (an in-memory database), or a new directory. PGlite's own `loadDataDir` does the same through a
 * general tar library, about half of a ~1 s open (measured: see docs/ARCHITECTURE.md).
 */
import fs from "node:fs";
import { open, writeFile } from "node:fs/promises";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";

export interface TarEntry {
  /** Relative to the data directory, `/`-separated, never empty, absolute or with a `..` part. */
  name: string;
  kind: "file" | "dir";
  mode: number;
  data: Uint8Array;
}

const BLOCK = 512;
const latin1 = new TextDecoder("latin1");

/**
 * The archive's entries, in archive order (a directory before what it holds). Throws on anything else than
 * regular files and directories, or on a name that would leave the data directory.
 */
export function tarEntries(archive: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  for (let at = 0; at + BLOCK <= archive.length;) {
    const header = archive.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break; // the end-of-archive blocks
    const size = octal(header, 124, 12);
    const type = header[156];
    const prefix = text(header, 345, 131);
    const raw = (prefix ? `${prefix}/` : "") + text(header, 0, 100);
    const name = raw.replace(/^(\.?\/)+/, "").replace(/\/+$/, "");
    at += BLOCK;
    if (at + size > archive.length) throw new Error(`the archive ends inside ${raw}`);
    if (type === 0x35 /* '5' */) {
      if (name !== "" && name !== ".")
        entries.push({ name: safe(name), kind: "dir", mode: octal(header, 100, 8), data: new Uint8Array(0) });
    } else if (type === 0x30 /* '0' */ || type === 0) {
      entries.push({
        name: safe(name),
        kind: "file",
        mode: octal(header, 100, 8),
        data: archive.subarray(at, at + size),
      });
    } else {
      throw new Error(`unexpected entry type ${String.fromCharCode(type ?? 0)} for ${raw}`);
    }
    at += Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}

/** Never copied into a new database: the lock file of the server process the dump was taken from. */
const SKIPPED = new Set(["postmaster.pid"]);

/**
 * Write the dump's files into PGlite's own file system (the data directory of an in-memory database), before
 * PGlite looks for a database there.
 */
export function copyIntoPglite(FS: PGlite["Module"]["FS"], entries: TarEntry[]): void {
  FS.mkdirTree(PGDATA);
  for (const entry of entries) {
    if (SKIPPED.has(entry.name)) continue;
    const target = `${PGDATA}/${entry.name}`;
    if (entry.kind === "dir") FS.mkdirTree(target);
    else FS.writeFile(target, entry.data);
  }
}

/** Files written at once: creating ~1,000 files is what a new directory costs, and it waits on the disk. */
const LANES = 8;

/**
 * Write the dump's files into `dir` (made if missing), several at a time, the top-level PG_VERSION last:
 * PGlite takes a directory with PG_VERSION for a database, so one cut short is taken for a new directory
 * again and filled anew, never opened half made.
 */
export async function writeTemplateDir(entries: TarEntry[], dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const files: TarEntry[] = [];
  let version: TarEntry | undefined;
  for (const entry of entries) {
    if (SKIPPED.has(entry.name)) continue;
    if (entry.kind === "dir") fs.mkdirSync(target(dir, entry), { recursive: true, mode: entry.mode || 0o700 });
    else if (entry.name === "PG_VERSION") version = entry;
    else files.push(entry);
  }
  if (!version) throw new Error("the dump holds no PG_VERSION");
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length) {
      const entry = files[next++]!;
      await writeSparse(target(dir, entry), entry);
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  await writeFile(path.join(dir, "PG_VERSION"), version.data, { mode: version.mode || 0o600 });
}

function target(dir: string, entry: TarEntry): string {
  return path.join(dir, ...entry.name.split("/"));
}

const CHUNK = 64 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

/**
 * Write a file, skipping chunks of zeros (left as holes: they read back as zeros). A quarter of a fresh
 * database is zeros, most of it the unused part of the first 16 MB WAL segment: that much less to write.
 */
async function writeSparse(file: string, entry: TarEntry): Promise<void> {
  const { data } = entry;
  const mode = entry.mode || 0o600;
  if (data.length < CHUNK) return writeFile(file, data, { mode });
  const handle = await open(file, "w", mode);
  try {
    for (let at = 0; at < data.length; at += CHUNK) {
      const chunk = data.subarray(at, at + CHUNK);
      if (!Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).equals(ZEROS.subarray(0, chunk.length)))
        await handle.write(chunk, 0, chunk.length, at);
    }
    await handle.truncate(data.length);
  } finally {
    await handle.close();
  }
}

/** PGlite's data directory inside its file system. */
const PGDATA = "/pglite/data";

function text(header: Uint8Array, offset: number, length: number): string {
  const field = header.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return latin1.decode(end < 0 ? field : field.subarray(0, end));
}

function octal(header: Uint8Array, offset: number, length: number): number {
  const digits = text(header, offset, length).trim();
  if (digits === "") return 0;
  if (!/^[0-7]+$/.test(digits)) throw new Error(`not an octal number in a tar header: ${JSON.stringify(digits)}`);
  return parseInt(digits, 8);
}

function safe(name: string): string {
  if (name === "" || path.posix.isAbsolute(name) || name.split("/").some((part) => part === ".." || part === ""))
    throw new Error(`unsafe name in the dump: ${JSON.stringify(name)}`);
  return name;
}
