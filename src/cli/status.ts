import type { FeedStatus } from "../index.js";
import { directoryCommand } from "./command.js";
import { lastSyncText, pendingLines } from "./format.js";
import { EXIT_FAILED, EXIT_OK, complain, plural, say } from "./output.js";

const HELP = `Usage: ominipg status <dir> [--remote <url>]

Show the state of an Ominipg data directory: its client id, the changes waiting
to be pushed (per table and priority, in push order), the last successful sync,
and, with --remote, whether the remote PostgreSQL answers and its change feed
(the replication slot, the WAL it holds back, when a drainer last ran).

Options:
  -r, --remote <url>  the remote PostgreSQL (default: $OMINIPG_REMOTE_URL)
  -h, --help          show this help
      --verbose       show stack traces of errors

Exit codes: 0 ok, 1 failed (or the remote did not answer), 2 usage error.`;

export const statusCommand = directoryCommand({
  name: "status",
  summary: "client id, pending changes, last sync and whether the remote answers",
  help: HELP,
  remote: "optional",
  // Looking at a database never opened with a remote must not make it a synced one (sync tables, a client id).
  localOpen: true,
  async run(db, { dir, remote: url }) {
    const status = await db.status();
    const asked =
      url === undefined ? undefined : await (await import("../remote-status.js")).probeRemote(url, status.clientId);
    const total = status.pending.reduce((n, p) => n + p.count, 0);
    say(`directory  ${dir}`);
    say(`client id  ${status.clientId ?? "none (never opened with a remote: no changes are captured)"}`);
    say(`pending    ${status.clientId ? plural(total, "change") : "none"}`);
    for (const line of pendingLines(status.pending, "             ")) say(line);
    say(`last sync  ${lastSyncText(status.lastSync)}`);
    if (!asked) {
      say("remote     not checked (pass --remote <url>)");
      return EXIT_OK;
    }
    const { remote, feed } = asked;
    say(`remote     ${remote.url} (${remote.reachable ? "reachable" : "unreachable"})`);
    if (remote.reachable) {
      say(`on server  ${plural(remote.ledgerRows ?? 0, "ledger row")} of this client`);
      if (feed) say(`feed       ${feedText(feed)}`);
      return EXIT_OK;
    }
    complain(`the remote ${remote.url} is unreachable: ${remote.error ?? "no answer"}`);
    return EXIT_FAILED;
  },
});

/** The change feed in one line: its slot, the WAL the slot holds back, the last drain. */
function feedText(feed: FeedStatus): string {
  if (feed.error) return `not known: ${feed.error}`;
  if (feed.mode === "off") return "off";
  if (feed.walLevel && feed.walLevel !== "logical") return `none (the server runs with wal_level=${feed.walLevel})`;
  if (feed.walStatus === null) return `none (no slot ${feed.slot ?? ""}${feed.drainer ? "; a pull sets it up" : ""})`;
  const wal =
    feed.retainedBytes === null ? "" : `, holds back ${(feed.retainedBytes / (1 << 20)).toFixed(1)} MiB of WAL`;
  const drained = feed.drainedAgoMs === null ? "" : `, drained ${(feed.drainedAgoMs / 1000).toFixed(1)} s ago`;
  return `slot ${feed.slot} (${feed.walStatus})${wal}${drained}`;
}
