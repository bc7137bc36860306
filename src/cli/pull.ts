import { directoryCommand } from "./command.js";
import { EXIT_OK, columns, plural, say } from "./output.js";
import { progressReporter } from "./progress.js";

const HELP = `Usage: ominipg pull <dir> --remote <url>

Bring the remote's rows into an Ominipg data directory: what was inserted,
updated and deleted on the remote since the last pull, from one snapshot.
Rows with pending local changes are kept; where the remote changed them too,
the conflict is listed and recorded in _ominipg_conflicts.

Options:
  -r, --remote <url>  the remote PostgreSQL (default: $OMINIPG_REMOTE_URL)
  -h, --help          show this help
      --verbose       show stack traces of errors

Exit codes: 0 ok, 1 the pull failed, 2 usage error.`;

export const pullCommand = directoryCommand({
  name: "pull",
  summary: "bring the remote's changes into the directory",
  help: HELP,
  remote: "required",
  async run(db, { dir, remote }) {
    const progress = progressReporter(process.stdout, { verb: "pulling", unit: "rows" });
    db.on("pull:progress", ({ done, total }) => progress.update(done, total));
    db.on("conflict", (c) =>
      say(`conflict: ${c.table} ${JSON.stringify(c.key)} changed remotely too; the pending local change is kept`),
    );
    say(`pulling ${remote} into ${dir}`); // say() redacts the password
    const result = await db.pull().finally(() => progress.stop());
    say(`pulled in ${result.durationMs} ms`);
    const rows = Object.entries(result.tables).map(([table, t]) => [
      table,
      t.strategy,
      `${t.upserted} written, ${t.deleted} deleted, ${t.skipped} held`,
    ]);
    for (const line of columns(rows, "  ")) say(line);
    if (result.conflicts > 0) say(`${plural(result.conflicts, "conflict")} recorded in _ominipg_conflicts`);
    return EXIT_OK;
  },
});
