import fs from "node:fs";
import path from "node:path";
import type { Ominipg, SyncOptions } from "../index.js";
import { CliError } from "./errors.js";

/**
 * Open an existing Ominipg data directory. Checked first because connecting to a missing or foreign
 * directory would quietly create a new, empty database there.
 */
export async function openDirectory(
  dir: string,
  options: { remote?: string | undefined; sync?: SyncOptions } = {},
): Promise<Ominipg> {
  const full = path.resolve(dir);
  const stat = fs.statSync(full, { throwIfNoEntry: false });
  if (!stat) throw new CliError(`no such directory: ${dir}`);
  if (!stat.isDirectory()) throw new CliError(`not a directory: ${dir}`);
  if (!fs.existsSync(path.join(full, "PG_VERSION")))
    throw new CliError(`${dir} is not an Ominipg data directory (it has no PG_VERSION file)`);
  const { Ominipg } = await loadLibrary();
  // With a remote, sync what the app syncs (its sync.schemas/tables/exclude, stored at its last connect),
  // unless the command's flags say otherwise: a table the app keeps local must not be pushed or pulled.
  const stored = options.remote !== undefined ? await storedScope(Ominipg, full) : undefined;
  const sync = { ...stored, ...options.sync };
  return Ominipg.connect({
    url: full,
    ...(options.remote !== undefined ? { syncUrl: options.remote } : {}),
    ...(Object.keys(sync).length > 0 ? { sync } : {}),
  });
}

async function storedScope(
  Ominipg: typeof import("../index.js").Ominipg,
  dir: string,
): Promise<SyncOptions | undefined> {
  const db = await Ominipg.connect({ url: dir });
  try {
    const { rows: meta } = await db.query<{ found: boolean }>(
      `SELECT to_regclass('public._ominipg_meta') IS NOT NULL AS found`,
    );
    if (!meta[0]?.found) return undefined;
    const { rows } = await db.query<{ value: string }>(
      `SELECT value FROM public._ominipg_meta WHERE key = 'sync_scope'`,
    );
    return rows[0] ? (JSON.parse(rows[0].value) as SyncOptions) : undefined;
  } finally {
    await db.close();
  }
}

/** The library (PGlite, the SQL parser) loads only once a command runs: --help and usage errors stay instant. */
export function loadLibrary(): Promise<typeof import("../index.js")> {
  return import("../index.js");
}
