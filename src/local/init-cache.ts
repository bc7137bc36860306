/**
 * The init cache: a dump of a freshly initialized PGlite database (its `postgres` database only), kept once per
 * PGlite build in the user's cache directory, so that a new database is a copy of it (~0.5 s) instead of a run of
 * initdb (~4 s).
 *
 * One entry is a directory `<root>/<key>/` holding `pgdata.tar` (the dump) and `manifest.json` (its size and
 * sha256, written last). An entry is made in a temporary directory beside it and renamed into place, so it
 * appears whole or not at all; several processes making it at once each make their own and the first rename
 * wins. Every read checks the dump against its manifest (once per process while the file stays unchanged): a
 * damaged or partial entry is moved aside and removed, never used, and the caller makes a new one. Writes need
 * no fsync: a torn write fails the check.
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

/** Bumped whenever the layout of an entry or the way a template is made changes. */
const FORMAT = 3;
const DUMP = "pgdata.tar";
const MANIFEST = "manifest.json";
/** Temporary directories of builds that died, and entries moved aside, older than this are removed. */
const STALE_MS = 60 * 60 * 1000;

/**
 * The PGlite options a template is made with (none: what `new PGlite()` makes, then its buffer pool sized: see
 * new-database.ts). They are part of the key, so a template made another way can never be taken for this one.
 */
export const TEMPLATE_OPTIONS = {} as const;

export interface Manifest {
  format: number;
  key: string;
  pglite: string;
  size: number;
  sha256: string;
  created: string;
}

/**
 * Dumps this process has checked, by file, with the file's identity then: hashing one (~8 MB) costs ~15 ms, and
 * an app or a test run opens many new databases. A file rewritten or replaced since has another inode, size,
 * mtime or ctime, and is checked again. Its bytes are kept while anything holds them (every
 * in-memory database made from it shares them: memfs-storage.ts lends them, copied by a file at its first write):
 * one copy in memory for all of them, not read again.
 */
const checked = new Map<string, fs.Stats & { sha256: string; bytes: WeakRef<ArrayBuffer> }>();

/** The same file, unchanged since it was checked: a rewrite or a replacement changes its inode or its ctime. */
function sameFile(a: fs.Stats, b: fs.Stats | undefined): boolean {
  return (
    !!b && a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs
  );
}

/** False when `OMINIPG_INIT_CACHE` is 0, false, off or no. */
export function initCacheEnabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env["OMINIPG_INIT_CACHE"]?.trim().toLowerCase();
  return !(value === "0" || value === "false" || value === "off" || value === "no");
}

/**
 * Where the cache may live, best first: `$OMINIPG_CACHE_DIR` alone when set; else the user's cache directory
 * (`$XDG_CACHE_HOME/ominipg`, or `~/.cache/ominipg`; `~/Library/Caches/ominipg` on macOS,
 * `%LOCALAPPDATA%\ominipg\Cache` on Windows), then `<os.tmpdir()>/ominipg-cache-<uid>` for a home that cannot
 * be written (a service user, a read-only home).
 */
export function cacheRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const own = env["OMINIPG_CACHE_DIR"];
  if (own) return [path.resolve(own)];
  const roots: string[] = [];
  const xdg = env["XDG_CACHE_HOME"];
  const home = env["HOME"] || homeDir();
  if (xdg && path.isAbsolute(xdg)) roots.push(path.join(xdg, "ominipg"));
  else if (process.platform === "win32" && env["LOCALAPPDATA"])
    roots.push(path.join(env["LOCALAPPDATA"], "ominipg", "Cache"));
  else if (home && process.platform === "darwin") roots.push(path.join(home, "Library", "Caches", "ominipg"));
  else if (home) roots.push(path.join(home, ".cache", "ominipg"));
  roots.push(path.join(os.tmpdir(), `ominipg-cache-${userTag()}`));
  return roots;
}

export class InitCache {
  /** The directory holding the entries. */
  readonly root: string;
  /** This PGlite build's entry name: its version and a hash of what makes its templates differ. */
  readonly key: string;
  readonly pglite: string;

  private constructor(root: string, key: string, pglite: string) {
    this.root = root;
    this.key = key;
    this.pglite = pglite;
  }

  /** The cache for the installed PGlite in the first usable root, or undefined when there is none. */
  static locate(env: NodeJS.ProcessEnv = process.env): InitCache | undefined {
    const id = pgliteIdentity();
    if (!id) return undefined;
    const root = cacheRoots(env).find(usableDir);
    return root === undefined ? undefined : new InitCache(root, id.key, id.version);
  }

  /** The entry's directory. */
  get dir(): string {
    return path.join(this.root, this.key);
  }

  /**
   * The dump, checked against its manifest; undefined when there is no entry, or when the entry is damaged or
   * partial (it is then moved aside and removed, so the caller's new one can take its place).
   */
  read(): Uint8Array | undefined {
    // Synchronous: one read of the whole file (~20 ms) beats fs/promises' 512 KB round trips through a thread
    // pool that PGlite is loading its own files with at the same time.
    const dir = this.dir;
    let found: fs.Stats | undefined;
    try {
      found = fs.statSync(dir, { throwIfNoEntry: false });
      if (!found) return undefined;
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8")) as Partial<Manifest>;
      if (manifest.format !== FORMAT || manifest.key !== this.key) throw new Error("another kind of entry");
      const file = path.join(dir, DUMP);
      // One open file for its identity and its bytes: a file replaced meanwhile cannot pass for the checked one.
      const fd = fs.openSync(file, "r");
      try {
        const stat = fs.fstatSync(fd);
        const digest = manifest.sha256;
        if (stat.size !== manifest.size || typeof digest !== "string") throw new Error("damaged dump");
        const seen = checked.get(file);
        const known = seen !== undefined && sameFile(seen, stat) && seen.sha256 === digest;
        const kept = known ? seen.bytes.deref() : undefined;
        if (kept) return new Uint8Array(kept);
        // A buffer of its own, whole: what is kept is the buffer, lent to files as it is.
        const dump = new Uint8Array(new ArrayBuffer(stat.size));
        let at = 0;
        for (let n = 1; at < dump.length && n > 0; at += n) n = fs.readSync(fd, dump, at, dump.length - at, at);
        if (at !== dump.length || (!known && sha256(dump) !== digest)) throw new Error("damaged dump");
        checked.set(file, Object.assign(stat, { sha256: digest, bytes: new WeakRef(dump.buffer) }));
        return dump;
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      // Files that are there but cannot be read now (permissions, too many open files) are left alone.
      const code = (err as NodeJS.ErrnoException).code;
      if (found && (code === undefined || code === "ENOENT")) this.#moveAside(found.ino);
      return undefined;
    }
  }

  /**
   * Install `dump` as the entry: written in a temporary directory (the manifest last), then renamed into
   * place. False when an entry is already there (another process was first: its entry stays) or the cache
   * cannot be written; never throws.
   */
  async write(dump: Uint8Array): Promise<boolean> {
    this.#sweep();
    let tmp: string | undefined;
    try {
      tmp = await mkdtemp(path.join(this.root, `${this.key}.tmp-`));
      await writeFile(path.join(tmp, DUMP), dump, { mode: 0o600 });
      const manifest: Manifest = {
        format: FORMAT,
        key: this.key,
        pglite: this.pglite,
        size: dump.byteLength,
        sha256: sha256(dump),
        created: new Date().toISOString(),
      };
      await writeFile(path.join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, this.dir);
      tmp = undefined;
      return true;
    } catch {
      return false;
    } finally {
      if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Move the entry aside (only if it is still the one that was read) and remove it. */
  #moveAside(ino: number): void {
    const aside = path.join(this.root, `${this.key}.bad-${process.pid}-${randomBytes(4).toString("hex")}`);
    try {
      if (fs.statSync(this.dir).ino !== ino) return; // already replaced by another process
      fs.renameSync(this.dir, aside);
      fs.rmSync(aside, { recursive: true, force: true });
    } catch {
      // Another process moved it first, or the root cannot be written: either way it is not used.
    }
  }

  /** Remove what builds that died left behind (and entries moved aside but not removed). */
  #sweep(): void {
    try {
      const now = Date.now();
      for (const name of fs.readdirSync(this.root)) {
        if (!/\.(tmp|bad)-/.test(name)) continue;
        const full = path.join(this.root, name);
        const stat = fs.statSync(full, { throwIfNoEntry: false });
        if (stat && now - stat.mtimeMs > STALE_MS) fs.rmSync(full, { recursive: true, force: true });
      }
    } catch {
      // Best effort.
    }
  }
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

let identity: { key: string; version: string } | null | undefined;

/**
 * The installed PGlite's version and a key for its templates: the version, the sizes of its engine files (a
 * patched build of the same version gets its own entries), the cache format and the template options.
 * Null when PGlite's files cannot be found (a bundled app): no cache then.
 */
function pgliteIdentity(): { key: string; version: string } | null {
  if (identity !== undefined) return identity;
  try {
    const dist = path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
    const pkg = JSON.parse(fs.readFileSync(path.join(dist, "..", "package.json"), "utf8")) as { version?: unknown };
    if (typeof pkg.version !== "string") throw new Error("no version");
    const sizes = ["pglite.wasm", "pglite.data", "initdb.wasm"].map(
      (f) => fs.statSync(path.join(dist, f), { throwIfNoEntry: false })?.size ?? -1,
    );
    const hash = sha256(
      new TextEncoder().encode(JSON.stringify({ FORMAT, version: pkg.version, sizes, TEMPLATE_OPTIONS })),
    );
    identity = { key: `pglite-${pkg.version.replace(/[^\w.-]/g, "_")}-${hash.slice(0, 12)}`, version: pkg.version };
  } catch {
    identity = null;
  }
  return identity;
}

/**
 * A root the cache may use: a directory (made 0700 if missing) this user owns, that nobody else can write
 * (another user could otherwise plant a database in it), and that this process can write.
 */
function usableDir(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = fs.lstatSync(dir);
    if (!stat.isDirectory()) return false;
    const uid = process.getuid?.();
    if (uid !== undefined && stat.uid !== uid) return false;
    if (process.platform !== "win32" && (stat.mode & 0o022) !== 0) return false;
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function homeDir(): string | undefined {
  try {
    return os.homedir() || undefined;
  } catch {
    return undefined;
  }
}

function userTag(): string {
  const uid = process.getuid?.();
  if (uid !== undefined) return String(uid);
  try {
    return os.userInfo().username.replace(/[^\w.-]/g, "_");
  } catch {
    return "user";
  }
}
