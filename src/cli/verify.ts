import type { TableDifference } from "../index.js";
import { directoryCommand } from "./command.js";
import { EXIT_FAILED, EXIT_OK, columns, plural, say } from "./output.js";

const HELP = `Usage: ominipg verify <dir> --remote <url>

Compare every synced table of an Ominipg data directory with the remote,
row by row, and list the differences per table. Changes not pushed yet show
as differences: run ominipg sync first.

Options:
  -r, --remote <url>  the remote PostgreSQL (default: $OMINIPG_REMOTE_URL)
  -h, --help          show this help
      --verbose       show stack traces of errors

Exit codes: 0 local and remote match, 1 differences found (or the check failed),
2 usage error.`;

const KEYS_SHOWN = 10;

export const verifyCommand = directoryCommand({
  name: "verify",
  summary: "compare local and remote tables row by row",
  help: HELP,
  remote: "required",
  async run(db) {
    const result = await db.verify();
    const differing = result.tables.filter(differs);
    for (const line of columns(result.tables.map((t) => [t.table, differs(t) ? "DIFFERS" : "ok", rowCounts(t)])))
      say(line);
    for (const t of differing) {
      say(`${t.table}:`);
      for (const line of differenceLines(t)) say(`  ${line}`);
    }
    if (result.ok) {
      say(`local and remote match (${plural(result.tables.length, "table")})`);
      return EXIT_OK;
    }
    const pending = (await db.status()).pending.reduce((n, p) => n + p.count, 0);
    say(`${differing.length} of ${plural(result.tables.length, "table")} differ`);
    if (pending > 0)
      say(`note: ${plural(pending, "change")} not pushed yet show as differences; run ominipg sync first`);
    return EXIT_FAILED;
  },
});

function differs(t: TableDifference): boolean {
  return t.counts.onlyLocal + t.counts.onlyRemote + t.counts.different > 0;
}

function rowCounts(t: TableDifference): string {
  return t.localRows === t.remoteRows
    ? plural(t.localRows, "row")
    : `${t.localRows} local rows, ${t.remoteRows} remote rows`;
}

function differenceLines(t: TableDifference): string[] {
  const kinds = [
    ["only local", t.onlyLocal, t.counts.onlyLocal],
    ["only remote", t.onlyRemote, t.counts.onlyRemote],
    ["different", t.different, t.counts.different],
  ] as const;
  return kinds
    .filter(([, , count]) => count > 0)
    .map(([label, keys, count]) => `${label}: ${plural(count, "row")}, keys ${keyList(keys, count)}`);
}

function keyList(keys: readonly string[], count: number): string {
  const shown = keys.slice(0, KEYS_SHOWN).join(" ");
  return count > KEYS_SHOWN ? `${shown} and ${count - KEYS_SHOWN} more` : shown;
}
