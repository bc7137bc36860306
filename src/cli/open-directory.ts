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
  // Read by connect() in the same open of the directory (it used to be opened once more, before, to read it).
  const sync = options.sync ?? {};
  return Ominipg.connect({
    url: full,
    // A command is one short process: PostgreSQL zeroes its whole buffer pool at start (128MB: ~0.4 s).
    sharedBuffers: "16MB",
    deferParser: true, // the commands run no app query
    ...(options.remote !== undefined ? { syncUrl: options.remote, storedSyncScope: true } : {}),
    ...(Object.keys(sync).length > 0 ? { sync } : {}),
  });
}

/** The library (PGlite, the SQL parser) loads only once a command runs: --help and usage errors stay instant. */
export function loadLibrary(): Promise<typeof import("../index.js")> {
  return import("../index.js");
}
