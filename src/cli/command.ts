import type { Ominipg, SyncOptions } from "../index.js";
import { COMMON_OPTIONS, REMOTE_OPTION, directoryArg, parseCommandArgs, remoteArg } from "./args.js";
import { openDirectory } from "./open-directory.js";
import { EXIT_OK, say } from "./output.js";

export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** The text of `ominipg <name> --help`. */
  help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}

/** Parsed values of a directory command's flags. */
export type Flags = Record<string, string | boolean | undefined>;

export interface DirectoryCommandSpec {
  name: string;
  summary: string;
  help: string;
  /** Whether --remote (or $OMINIPG_REMOTE_URL) must be given. */
  remote: "required" | "optional";
  /** The command's own string flags, beyond --help, --verbose and --remote. */
  flags?: string[];
  /** Open the directory without the remote even when one is given: the command asks the remote itself. */
  localOpen?: boolean;
  /** Sync options from the command's own flags, used to open the directory. */
  syncOptions?(flags: Flags): SyncOptions;
  run(db: Ominipg, context: { dir: string; remote: string | undefined; flags: Flags }): Promise<number>;
}

/** A command on a data directory: parse its arguments, answer --help, open <dir>, run, and always close. */
export function directoryCommand(spec: DirectoryCommandSpec): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    async run(args) {
      const own = Object.fromEntries((spec.flags ?? []).map((f) => [f, { type: "string" as const }]));
      const parsed = parseCommandArgs(spec.name, {
        args,
        options: { ...COMMON_OPTIONS, ...REMOTE_OPTION, ...own },
        allowPositionals: true,
      });
      const flags = parsed.values as Flags;
      if (flags.help) {
        say(spec.help);
        return EXIT_OK;
      }
      const dir = directoryArg(spec.name, parsed.positionals);
      const remote = remoteArg(spec.name, flags.remote as string | undefined, spec.remote === "required");
      const sync = spec.syncOptions?.(flags);
      const db = await openDirectory(dir, { remote: spec.localOpen ? undefined : remote, ...(sync ? { sync } : {}) });
      try {
        return await spec.run(db, { dir, remote, flags });
      } finally {
        await db.close();
      }
    },
  };
}
