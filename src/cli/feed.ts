import { Ominipg } from "../index.js";
import { openRemote } from "../remote/connection.js";
import { dropFeed } from "../remote/feed.js";
import { COMMON_OPTIONS, REMOTE_OPTION, parseCommandArgs, positiveIntegerArg, remoteArg } from "./args.js";
import type { Command } from "./command.js";
import { EXIT_OK, complain, plural, say } from "./output.js";

const HELP = `Usage: ominipg feed --remote <url> [--interval <ms>] [--retention <ms>] [--warn-bytes <n>]
       ominipg feed --remote <url> --drop

Keep the remote database's change feed drained, for deployments whose clients
may not read a replication slot themselves (docs/SYNC.md, "The change feed"):
set the feed up if need be (its tables, the logical replication slot), then
every --interval ms copy the keys of newly committed changes into
public._ominipg_feed and advance the slot, trim rows every client has read or
older than --retention, and warn when the slot holds back more than
--warn-bytes of WAL. Runs until Ctrl-C (SIGINT) or SIGTERM. The role must be a
superuser or have REPLICATION (see ominipg setup --drainer), the server run
with wal_level=logical.

--drop stops the feed for good: drops the slot (the server keeps no WAL for it
any more) and the feed's rows; clients then pull by comparing tables.

Options:
  -r, --remote <url>     the remote PostgreSQL (default: $OMINIPG_REMOTE_URL)
      --interval <ms>    pause between drains when caught up (default 250)
      --retention <ms>   trim feed rows this old even if a client has not read them (default 86400000: 1 day)
      --warn-bytes <n>   warn when the slot holds back more WAL than this (default 1 GiB)
      --drop             drop the slot and the feed's rows, then exit
  -h, --help             show this help
      --verbose          show stack traces of errors, and every drain

Exit codes: 0 stopped, 1 failed, 2 usage error.`;

export const feedCommand: Command = {
  name: "feed",
  summary: "keep the remote's change feed drained (for clients without REPLICATION)",
  help: HELP,
  async run(args) {
    const parsed = parseCommandArgs("feed", {
      args,
      options: {
        ...COMMON_OPTIONS,
        ...REMOTE_OPTION,
        interval: { type: "string" },
        retention: { type: "string" },
        "warn-bytes": { type: "string" },
        drop: { type: "boolean" },
      },
      allowPositionals: false,
    });
    const flags = parsed.values;
    if (flags.help) {
      say(HELP);
      return EXIT_OK;
    }
    const remote = remoteArg("feed", flags.remote, true)!;
    const intervalMs = positiveIntegerArg("feed", "interval", flags.interval);
    const retentionMs = positiveIntegerArg("feed", "retention", flags.retention);
    const warnRetainedBytes = positiveIntegerArg("feed", "warn-bytes", flags["warn-bytes"]);
    if (flags.drop) {
      const sql = openRemote(remote, { max: 1 });
      try {
        const dropped = await dropFeed(sql);
        say(dropped ? "dropped the change feed's slot and its rows" : "no change feed slot here; its rows are gone");
      } finally {
        await sql.end({ timeout: 0 });
      }
      return EXIT_OK;
    }
    const drainer = await Ominipg.feed(remote, {
      ...(intervalMs === undefined ? {} : { intervalMs }),
      ...(retentionMs === undefined ? {} : { retentionMs }),
      ...(warnRetainedBytes === undefined ? {} : { warnRetainedBytes }),
    });
    drainer.on("warning", (w) => complain(w.message));
    if (drainer.replaced)
      complain(
        "the change feed's slot was invalidated or missing and was replaced: every client diffs its tables once",
      );
    const { slot } = await drainer.status();
    let written = 0;
    drainer.on("drain", (r) => {
      written += r.written;
      if (flags.verbose) say(`drained ${plural(r.written, "key")}`);
    });
    say(`draining the change feed (slot ${slot}) of ${remote} every ${intervalMs ?? 250} ms; Ctrl-C stops`);
    const minute = setInterval(() => {
      if (written > 0 && !flags.verbose) say(`drained ${plural(written, "key")} in the last minute`);
      written = 0;
    }, 60_000);
    await new Promise<void>((resolve) => {
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
    });
    clearInterval(minute);
    await drainer.stop();
    say("stopped");
    return EXIT_OK;
  },
};
