import { openRemote } from "../remote/connection.js";
import { tablesBlindToTenants } from "../remote/feed.js";
import { setUpRemote } from "../remote/remote.js";
import { setupScript } from "../remote/schema.js";
import { COMMON_OPTIONS, REMOTE_OPTION, parseCommandArgs, remoteArg } from "./args.js";
import type { Command } from "./command.js";
import { UsageError } from "./errors.js";
import { EXIT_OK, say } from "./output.js";

const HELP = `Usage: ominipg setup --remote <url> [--grant <role>]... [--drainer <role>]... [--print]

Set up (or upgrade in place) what Ominipg keeps on the remote database: its
ledger table, protected per tenant (row-level security keyed by the writing
role, TRUNCATE refused), the change feed's tables (keys of changed rows, read
by pulls; written only by drainers), and grant each --grant role the least it
needs on them, each --drainer role (one with REPLICATION that is not a
superuser: \`ominipg feed\`'s) what draining needs. The replication slot itself
is made by the first drainer (docs/SYNC.md, "The change feed"). Lists the
tables with row-level security the feed cannot serve tenants (no REPLICA
IDENTITY FULL).
Run it once as the table's owner or a role that may create tables in schema
public (a privileged client also does it by itself at its first contact).
The synced tables need their own grants: see docs/API.md and docs/SECURITY.md.

Options:
  -r, --remote <url>  the remote PostgreSQL (default: $OMINIPG_REMOTE_URL)
  -g, --grant <role>  a tenant role to grant Ominipg's privileges to (repeatable)
      --drainer <role>  a role with REPLICATION to grant the feed's tables to (repeatable)
      --print         print the SQL instead of running it (no connection; one transaction)
  -h, --help          show this help
      --verbose       show stack traces of errors

Exit codes: 0 done, 1 failed, 2 usage error.`;

export const setupCommand: Command = {
  name: "setup",
  summary: "set up Ominipg's remote tables (per-tenant protection) and grants",
  help: HELP,
  async run(args) {
    const parsed = parseCommandArgs("setup", {
      args,
      options: {
        ...COMMON_OPTIONS,
        ...REMOTE_OPTION,
        grant: { type: "string", short: "g", multiple: true },
        drainer: { type: "string", multiple: true },
        print: { type: "boolean" },
      },
      allowPositionals: false,
    });
    const flags = parsed.values;
    if (flags.help) {
      say(HELP);
      return EXIT_OK;
    }
    const roles = flags.grant ?? [];
    const drainers = flags.drainer ?? [];
    for (const role of [...roles, ...drainers])
      if (role.trim() === "") throw new UsageError("--grant and --drainer need a role name", "setup");
    if (flags.print) {
      say(setupScript(roles, drainers));
      return EXIT_OK;
    }
    const remote = remoteArg("setup", flags.remote, true)!;
    const sql = openRemote(remote, { max: 1 });
    let blind: string[];
    try {
      await setUpRemote(sql, roles, drainers);
      blind = await tablesBlindToTenants(sql);
    } finally {
      await sql.end({ timeout: 0 });
    }
    const granted = [...roles, ...drainers.map((d) => `${d} (drainer)`)];
    say(`Ominipg's remote tables are set up${granted.length ? `; granted to ${granted.join(", ")}` : ""}`);
    if (blind.length > 0)
      say(
        `Tables with row-level security whose replica identity is not FULL: ${blind.join(", ")}. Tenants' pulls ` +
          `of them diff instead of using the change feed; to let them use it: ALTER TABLE <table> REPLICA IDENTITY FULL`,
      );
    return EXIT_OK;
  },
};
