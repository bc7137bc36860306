/**
 * The entries of a PGlite data-directory dump (`dumpDataDir("none")`: a ustar archive of regular files and
 * directories), read straight from its bytes, and the two ways a new database is filled from them: PGlite's
 * file system (an in-memory database), or a new directory. PGlite's own `loadDataDir` does the same through a
 * general tar library, about half of a ~1 s open (measured: see docs/ARCHITECTURE.md).
 */
import fs from "node:fs";
import { open, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";

export interface TarEntry {
  /** Relative to the data directory, `/`-separated, never empty, absolute or with a `..` part. */
  name: string;
  kind: "file" | "dir";
  mode: number;
  data: Uint8Array;
  /** The file's length: its data, then zeros (a trimmed WAL segment's tail). */
  size: number;
}

const BLOCK = 512;
const latin1 = new TextDecoder("latin1");

/** A ustar header: the entry's name, type, mode and size, and where its data starts. */
interface Header {
  at: number;
  raw: string;
  name: string;
  type: number | undefined;
  mode: number;
  size: number;
  dataAt: number;
}

/** The archive's headers, in order, up to the end-of-archive blocks. */
function* headers(archive: Uint8Array): Generator<Header> {
  for (let at = 0; at + BLOCK <= archive.length;) {
    const header = archive.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) return; // the end-of-archive blocks
    const size = octal(header, 124, 12);
    const prefix = text(header, 345, 131);
    const raw = (prefix ? `${prefix}/` : "") + text(header, 0, 100);
    const name = raw.replace(/^(\.?\/)+/, "").replace(/\/+$/, "");
    const dataAt = at + BLOCK;
    if (dataAt + size > archive.length) throw new Error(`the archive ends inside ${raw}`);
    yield { at, raw, name, type: header[156], mode: octal(header, 100, 8), size, dataAt };
    at = dataAt + Math.ceil(size / BLOCK) * BLOCK;
  }
}

/**
 * The archive's entries, in archive order (a directory before what it holds), WAL segments whole again (see
 * `trimWal`). Throws on anything else than regular files and directories, or on a name that would leave the
 * data directory.
 */
export function tarEntries(archive: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  for (const { raw, name, type, mode, size, dataAt } of headers(archive)) {
    if (type === 0x35 /* '5' */) {
      if (name !== "" && name !== ".")
        entries.push({ name: safe(name), kind: "dir", mode, data: new Uint8Array(0), size: 0 });
    } else if (type === 0x30 /* '0' */ || type === 0) {
      const data = archive.subarray(dataAt, dataAt + size);
      const length = SEGMENT.test(name) ? Math.max(size, WAL_SEGMENT) : size;
      entries.push({ name: safe(name), kind: "file", mode, data, size: length });
    } else {
      throw new Error(`unexpected entry type ${String.fromCharCode(type ?? 0)} for ${raw}`);
    }
  }
  return entries;
}

/**
 * The size of PGlite's WAL segments (initdb's default, which PGlite keeps): trimWal trims only segments of this
 * size, and tarEntries gives every segment this length.
 */
const WAL_SEGMENT = 16 * 1024 * 1024;
const SEGMENT = /^pg_wal\/[0-9A-F]{24}$/;
const ascii = new TextEncoder();

/**
 * The archive with the zeros ending each whole WAL segment left out (`tarEntries` puts them back). The template's
 * one segment is nearly all zeros once its WAL moved to a new segment at its last checkpoint: 16 of 40 MB, and
 * reading and checking the template is much of a new database's open. PostgreSQL itself always finds its
 * segments whole.
 */
export function trimWal(archive: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let copied = 0;
  for (const { at, name, size, dataAt } of headers(archive)) {
    if (!SEGMENT.test(name) || size !== WAL_SEGMENT) continue;
    let end = dataAt + size;
    while (end > dataAt && archive[end - 1] === 0) end--;
    const kept = Math.ceil((end - dataAt) / BLOCK) * BLOCK;
    const header = archive.slice(at, at + BLOCK);
    header.set(ascii.encode(`${kept.toString(8).padStart(11, "0")}\0`), 124);
    header.fill(0x20, 148, 156); // the checksum counts its own field as spaces
    const sum = header.reduce((a, b) => a + b, 0);
    header.set(ascii.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
    parts.push(archive.subarray(copied, at), header, archive.subarray(dataAt, dataAt + kept));
    copied = dataAt + size;
  }
  if (parts.length === 0) return archive;
  parts.push(archive.subarray(copied));
  return Buffer.concat(parts);
}

/** Never copied into a new database: the lock file of the server process the dump was taken from. */
const SKIPPED = new Set(["postmaster.pid"]);

/**
 * Write the dump's files into PGlite's own file system (the data directory of an in-memory database), before
 * PGlite looks for a database there: each by `put` (a copy by default).
 */
export function copyIntoPglite(
  FS: PGlite["Module"]["FS"],
  entries: TarEntry[],
  put: (path: string, data: Uint8Array) => void = (path, data) => FS.writeFile(path, data),
): void {
  FS.mkdirTree(PGDATA);
  for (const entry of entries) {
    if (SKIPPED.has(entry.name)) continue;
    const target = `${PGDATA}/${entry.name}`;
    if (entry.kind === "dir") FS.mkdirTree(target);
    else {
      put(target, entry.data);
      if (entry.size > entry.data.length) FS.truncate(target, entry.size);
    }
  }
}

/** Files written at once: creating ~400 files is what a new directory costs, and it waits on the disk. */
const LANES = 8;

/**
 * Write the dump's files into `dir` (made if missing), several at a time, the top-level PG_VERSION last, whole
 * (written aside, then renamed): PGlite takes a directory with PG_VERSION for a database, so one cut short is
 * taken for a new directory again and filled anew, never opened half made.
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
  const aside = path.join(dir, "PG_VERSION.ominipg-new");
  await writeFile(aside, version.data, { mode: version.mode || 0o600 });
  await rename(aside, path.join(dir, "PG_VERSION"));
}

function target(dir: string, entry: TarEntry): string {
  return path.join(dir, ...entry.name.split("/"));
}

const CHUNK = 64 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

/**
 * Write a file, skipping chunks of zeros and leaving its zero tail unwritten (holes: they read back as zeros).
 * The WAL segment is nearly all zeros, and relation files hold some.
 */
async function writeSparse(file: string, entry: TarEntry): Promise<void> {
  const { data } = entry;
  const mode = entry.mode || 0o600;
  if (data.length < CHUNK && entry.size === data.length) return writeFile(file, data, { mode });
  const handle = await open(file, "w", mode);
  try {
    for (let at = 0; at < data.length; at += CHUNK) {
      const chunk = data.subarray(at, at + CHUNK);
      if (!Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).equals(ZEROS.subarray(0, chunk.length)))
        await handle.write(chunk, 0, chunk.length, at);
    }
    await handle.truncate(entry.size);
  } finally {
    await handle.close();
  }
}

/** PGlite's data directory inside its file system. */
export const PGDATA = "/pglite/data";

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
