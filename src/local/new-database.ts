import fs from "node:fs";
import path from "node:path";
import { MemoryFS, PGlite, type PGliteOptions } from "@electric-sql/pglite";
import { NodeFS } from "@electric-sql/pglite/nodefs";
import { InitCache, TEMPLATE_OPTIONS, initCacheEnabledByEnv } from "./init-cache.js";
import { adoptFileStorage, lendFile } from "./memfs-storage.js";
import { PLACEHOLDER_BYTES, remember, reusedMemory } from "./memory-pool.js";
import { PGDATA, copyIntoPglite, tarEntries, trimWal, writeTemplateDir, type TarEntry } from "./pgdata-tar.js";

export interface NewDatabaseOptions {
  /** A PGlite dump a new database starts from (the caller's own: it wins over the init cache). */
  loadDataDir?: Blob | undefined;
  /** Start a new database from the init cache. Default true; `OMINIPG_INIT_CACHE=0` turns it off as well. */
  initCache?: boolean | undefined;
  /** `shared_buffers` for this start (PostgreSQL's default when unset): never stored in the database. */
  sharedBuffers?: string | undefined;
}

/** PGlite's start options for one open. */
type Started = { startParams?: string[] };

/**
 * How PGlite starts a database: its buffer pool, when the caller sets it (PostgreSQL zeroes the whole pool at
 * every start: a short-lived process such as a CLI command opens faster with less). In memory, relations are
 * extended by writing zeros: PostgreSQL (16+) extends a relation by many blocks at once (COPY, bulk loads) with
 * posix_fallocate, which PGlite's in-memory file system carries out by reallocating and copying the whole file
 * every time, so a table loaded by many COPYs costs time quadratic in its size (200,000 rows of the pull's
 * initial copy in 2,000-row COPYs: ~3.6 s of CPU, ~1.2 s with zeros written; one COPY ~1.7 s vs ~1.0 s). A
 * directory's files are real files: the default stays.
 */
function start(dataDir: string | undefined, sharedBuffers: string | undefined): Started {
  const params = [
    ...(dataDir === undefined ? ["-c", "file_extend_method=write_zeros"] : []),
    ...(sharedBuffers === undefined ? [] : ["-c", `shared_buffers=${sharedBuffers}`]),
  ];
  return params.length === 0 ? {} : { startParams: [...PGlite.defaultStartParams, ...params] };
}

/**
 * A PostgreSQL server's data directory (its postmaster.pid names another directory than PGlite's /pglite/data, the
 * one every PGlite writes): PGlite would start on it and remove that file, and nothing would stop a second server.
 */
function refuseServerDirectory(dataDir: string): void {
  let pid: string;
  try {
    pid = fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8");
  } catch {
    return;
  }
  const [owner = "", dir] = pid.split("\n");
  if (!dir || dir === "/pglite/data") return; // a file cut short: no server's, PGlite's to judge
  throw new Error(
    `it is a PostgreSQL server's data directory (postmaster.pid: process ${owner.trim()}), not one Ominipg made; left as it is`,
  );
}

/** Thrown inside PGlite's start when the cache has no usable template: the database is made another way. */
class NoTemplate extends Error {}

/**
 * Open a PGlite database: in memory (`dataDir` undefined) or in a directory. A new one (in memory, or a
 * directory without PG_VERSION) starts from the init cache's dump of a freshly initialized database; on a
 * miss the dump is made once by `new PGlite()` (initdb) and stored. A new directory without the cache (turned off,
 * or a `loadDataDir`) is made in memory and written out (intoDirectory). An existing directory opens as it always
 * did.
 */
export async function openPglite(dataDir: string | undefined, options: NewDatabaseOptions = {}): Promise<PGlite> {
  if (dataDir !== undefined) refuseServerDirectory(dataDir);
  const how = start(dataDir, options.sharedBuffers);
  const isNew = dataDir === undefined || !fs.existsSync(path.join(dataDir, "PG_VERSION"));
  const newDir = isNew ? dataDir : undefined;
  const made = (pgOptions: PGliteOptions) =>
    newDir === undefined ? create(dataDir, pgOptions) : intoDirectory(newDir, create(undefined, pgOptions), how);
  if (options.loadDataDir) return made({ loadDataDir: options.loadDataDir, ...how });
  const cache = isNew && options.initCache !== false && initCacheEnabledByEnv() ? InitCache.locate() : undefined;
  if (!cache) return made(how);
  // Read, checked and (for a directory) written out while PGlite loads its WebAssembly (~0.2 s in a new
  // process: started first, on other threads); PGlite's file system waits for it before looking for a database.
  const template = new Promise<void>((resolve) => setImmediate(resolve)).then((): TarEntry[] | undefined => {
    const dump = cache.read();
    return dump ? entriesOf(dump) : undefined;
  });
  template.catch(() => {}); // read() does not throw; awaited by PGlite's start, unless that failed first
  try {
    if (dataDir === undefined) return await create(undefined, { fs: new TemplateMemoryFS(template), ...how });
    const filled = template.then(async (entries) => {
      if (!entries) return false;
      await writeTemplateDir(entries, dataDir);
      return true;
    });
    filled.catch(() => {}); // awaited by PGlite's start, unless that failed first
    return await create(dataDir, { fs: new TemplateNodeFS(dataDir, filled), ...how });
  } catch (err) {
    if (!(err instanceof NoTemplate)) {
      // Should PGlite's file system ever refuse the files, initdb still makes an in-memory database.
      if (dataDir === undefined) return create(undefined, how);
      throw err;
    }
    // No entry, or one this reader cannot take (not expected: a dump is read back before it is stored). Never
    // PGlite's own loader: a stored dump lacks its WAL's zeros, which only tarEntries puts back.
    return fromNewTemplate(dataDir, cache, how);
  }
}

/**
 * PGlite without its start's read of every array type from the catalog (~70-100 ms of each open: the first
 * statement of a new backend). The driver looks array types up as statements use them (array-types.ts).
 */
class LazyTypesPGlite extends PGlite {
  override async _initArrayTypes(options?: { force?: boolean }): Promise<void> {
    if (options?.force) await super._initArrayTypes(options);
  }
}

/** `PGlite.create`, as a LazyTypesPGlite. */
async function create(dataDir: string | undefined, pgliteOptions: PGliteOptions): Promise<PGlite> {
  // Not where PGlite runs initdb: it runs that in a second instance of these options without their extensions,
  // which would start in the placeholder (memory-pool.ts).
  const findsDatabase =
    pgliteOptions.fs !== undefined ||
    pgliteOptions.loadDataDir !== undefined ||
    (dataDir !== undefined && fs.existsSync(path.join(dataDir, "PG_VERSION")));
  const options = {
    ...pgliteOptions,
    ...(findsDatabase ? { initialMemory: PLACEHOLDER_BYTES } : {}),
    extensions: { ...pgliteOptions.extensions, reusedMemory },
  };
  const db = dataDir === undefined ? new LazyTypesPGlite(options) : new LazyTypesPGlite(dataDir, options);
  await db.waitReady;
  remember(db);
  return db;
}

/** An in-memory database whose data directory is filled from the template when PGlite starts. */
class TemplateMemoryFS extends MemoryFS {
  readonly #template: Promise<TarEntry[] | undefined>;

  constructor(template: Promise<TarEntry[] | undefined>) {
    super();
    this.#template = template;
  }

  override async initialSyncFs(): Promise<void> {
    const entries = await this.#template;
    if (!entries) throw new NoTemplate();
    // The template's files are lent, not copied (less memory per open database; no faster): a file is copied
    // when the database first writes it, and most (the catalogs') never are.
    const { FS } = this.pg!.Module;
    const lend = adoptFileStorage(this.pg!.Module);
    copyIntoPglite(FS, entries, lend ? (path, data) => lendFile(FS, path, data) : undefined);
  }
}

/** A new data directory that PGlite opens once `filled` says the template's files are in it. */
class TemplateNodeFS extends NodeFS {
  readonly #filled: Promise<boolean>;

  constructor(dataDir: string, filled: Promise<boolean>) {
    super(dataDir);
    this.#filled = filled;
  }

  override async initialSyncFs(): Promise<void> {
    if (!(await this.#filled)) throw new NoTemplate();
  }
}

/**
 * A miss: initialize a database in memory (what `new PGlite()` does), store its dump, then use it as the new
 * in-memory database, or write the dump into the new directory. A failure to store is not the caller's
 * problem: the database is made all the same.
 */
async function fromNewTemplate(dataDir: string | undefined, cache: InitCache, how: Started): Promise<PGlite> {
  const fresh = await create(undefined, { ...TEMPLATE_OPTIONS, ...how });
  let entries: TarEntry[] | undefined;
  try {
    sizeBufferPool(fresh.Module.FS);
    await dropTemplateDatabases(fresh);
    const dump = trimWal(await templateDump(fresh));
    entries = entriesOf(dump);
    if (entries) await cache.write(dump); // stored only if it can be read back
  } catch {
    // No template this time; the next new database tries again.
  }
  if (dataDir === undefined) return fresh;
  await fresh.close();
  if (entries) await writeTemplateDir(entries, dataDir);
  return create(dataDir, how); // without the template's files (not expected): initdb, in the directory
}

/**
 * A new directory from a database `made` in memory (initdb, or a loadDataDir), written out with its PG_VERSION
 * last, as the init cache's: PGlite making it in place writes PG_VERSION first, and a process killed before it was
 * done left a directory that looked made and never opened again.
 */
async function intoDirectory(dataDir: string, made: Promise<PGlite>, how: Started): Promise<PGlite> {
  const db = await made;
  let entries: TarEntry[] | undefined;
  try {
    entries = entriesOf(trimWal(await templateDump(db)));
  } finally {
    await db.close();
  }
  if (!entries) throw new Error("the new database's files could not be read back to write them out");
  await writeTemplateDir(entries, dataDir);
  return create(dataDir, how);
}

/**
 * Drop initdb's template0 and template1, which a local database never uses (PGlite opens `postgres`): two thirds
 * of the template's files and bytes, all written out for every new directory and read and checked once per
 * process (a new directory opened in 0.41 s instead of 0.58, the cache entry is 8 MB instead of 23). A
 * `CREATE DATABASE` in a local database names its template: `TEMPLATE postgres`.
 */
export async function dropTemplateDatabases(db: PGlite): Promise<void> {
  for (const name of ["template0", "template1"]) {
    await db.exec(`ALTER DATABASE ${name} IS_TEMPLATE false`);
    await db.exec(`DROP DATABASE ${name}`); // not in a transaction block: one statement per exec
  }
}

/**
 * A dump of `db` to make new databases from (whole: PGlite's `loadDataDir` takes it; `trimWal` for the init
 * cache). Checkpointed, so a database made from it replays almost no WAL when it starts, and its WAL moved to a
 * new segment, the old one removed (not recycled): the dump's one segment is nearly all zeros.
 */
export async function templateDump(db: PGlite): Promise<Uint8Array> {
  await db.exec("SET wal_recycle = off");
  await db.exec("SELECT pg_switch_wal()");
  await db.exec("CHECKPOINT");
  await db.exec("RESET wal_recycle");
  return new Uint8Array(await (await db.dumpDataDir("none")).arrayBuffer());
}

/**
 * The buffer pool a database made from the template starts with, written into its postgresql.conf as initdb
 * sizes it there (PostgreSQL's 128MB otherwise). PostgreSQL zeroes the whole pool at every start: 128MB is
 * ~0.4 s of a ~1.3 s open on a 2-core machine, 32MB ~0.1 s. A database held in memory is in PGlite's file
 * system anyway, so a page the pool no longer holds is a copy away, not a disk read. `ALTER SYSTEM` and
 * `connect({ sharedBuffers })` still set it, as PostgreSQL's precedence has it.
 */
const TEMPLATE_SHARED_BUFFERS = "32MB";

function sizeBufferPool(FS: PGlite["Module"]["FS"]): void {
  const file = `${PGDATA}/postgresql.conf`;
  const conf = FS.readFile(file, { encoding: "utf8" });
  const line = `shared_buffers = ${TEMPLATE_SHARED_BUFFERS}\t\t# set by Ominipg (initdb: 128MB)`;
  const setting = /^shared_buffers\s*=.*$/m;
  const sized = setting.test(conf) ? conf.replace(setting, line) : `${conf}\n${line}\n`;
  FS.writeFile(file, sized);
}

/** The entries of dumps read from the init cache, while their bytes are kept (InitCache.read). */
const parsed = new WeakMap<ArrayBufferLike, TarEntry[]>();

function entriesOf(dump: Uint8Array): TarEntry[] | undefined {
  const whole = dump.byteOffset === 0 && dump.byteLength === dump.buffer.byteLength;
  let entries = whole ? parsed.get(dump.buffer) : undefined;
  try {
    entries ??= tarEntries(dump);
  } catch {
    return undefined;
  }
  if (whole) parsed.set(dump.buffer, entries);
  return entries;
}
