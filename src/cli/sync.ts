import type { Ominipg } from "../index.js";
import { choiceArg, listArg, positiveIntegerArg } from "./args.js";
import { directoryCommand } from "./command.js";
import { CliError } from "./errors.js";
import { EXIT_OK, columns, plural, say } from "./output.js";
import { progressReporter } from "./progress.js";

const HELP = `Usage: ominipg sync <dir> --remote <url> [--tables a,b] [--batch-size N] [--conflicts S]

Push the changes captured in an Ominipg data directory to the remote
PostgreSQL, exactly once. Shows a progress bar on a terminal and progress
lines otherwise.

Options:
  -r, --remote <url>    the remote PostgreSQL (default: $OMINIPG_REMOTE_URL)
      --tables <a,b>    the synced tables ("name" or "schema.name"); by default, what
                        the app synced at its last connect (its sync.schemas, tables
                        and exclude); changes of other tables must not be pending
      --batch-size <N>  row writes per remote transaction (default 1000)
      --conflicts <S>   how a change is settled when the remote row changed too:
                        overwrite (default), remote-wins or merge
  -h, --help            show this help
      --verbose         show stack traces of errors

Exit codes: 0 ok, 1 the sync failed, 2 usage error.`;

export const syncCommand = directoryCommand({
  name: "sync",
  summary: "push the pending changes to the remote",
  help: HELP,
  remote: "required",
  flags: ["tables", "batch-size", "conflicts"],
  syncOptions(flags) {
    const tables = listArg("sync", "tables", flags.tables as string | undefined);
    const batchSize = positiveIntegerArg("sync", "batch-size", flags["batch-size"] as string | undefined);
    const conflicts = choiceArg(
      "sync",
      "conflicts",
      flags.conflicts as string | undefined,
      ["overwrite", "remote-wins", "merge"] as const,
    );
    return { ...(tables ? { tables } : {}), ...(batchSize ? { batchSize } : {}), ...(conflicts ? { conflicts } : {}) };
  },
  async run(db, { dir, remote, flags }) {
    const tables = listArg("sync", "tables", flags.tables as string | undefined);
    const progress = progressReporter();
    db.on("sync:progress", ({ done, total }) => progress.update(done, total));
    if (tables) await assertNothingPendingOutside(db, tables);
    say(`syncing ${dir} to ${remote}`); // say() redacts the password
    const result = await db.sync().finally(() => progress.stop());
    if (result.pushed === 0) {
      say("nothing to push: no pending changes");
      return EXIT_OK;
    }
    say(
      `pushed ${plural(result.pushed, "change")} in ${result.durationMs} ms (${plural(result.applied, "row write")} in ${plural(result.batches, "remote transaction")})`,
    );
    for (const line of columns(
      Object.entries(result.tables).map(([table, n]) => [table, String(n)]),
      "  ",
    ))
      say(line);
    if (result.rejected > 0)
      say(`${plural(result.rejected, "change")} rejected by the remote, kept in _ominipg_rejected`);
    if (result.conflicts > 0)
      say(`${plural(result.conflicts, "conflict")} with remote changes, settled and recorded in _ominipg_conflicts`);
    return EXIT_OK;
  },
});

/**
 * With sync.tables narrowed, queued changes of the other tables stop the sync half-way (TABLE_NOT_SYNCED),
 * possibly after pushing some batches: refuse up front instead, naming them.
 */
async function assertNothingPendingOutside(db: Ominipg, tables: string[]): Promise<void> {
  const named = new Set(tables.map((t) => (t.includes(".") ? t : `public.${t}`)));
  const outside = (await db.status()).pending.filter((p) => !named.has(p.table));
  if (outside.length === 0) return;
  const list = outside.map((p) => `${p.table} (${plural(p.count, "change")})`).join(", ");
  throw new CliError(
    `--tables leaves out tables with pending changes: ${list}; add them to --tables, or sync without --tables`,
  );
}
