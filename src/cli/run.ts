/**
 * The CLI as a function: `ominipg <argv>` runs, prints what it prints, and resolves to its exit code. The
 * executable (main.ts) is this plus what only a process of its own does (V8 flags, the exit); tests run it in
 * their own process where a child process would add nothing but its start.
 */
import { readFileSync } from "node:fs";
import type { Command } from "./command.js";
import { demoCommand } from "./demo.js";
import { feedCommand } from "./feed.js";
import { UsageError } from "./errors.js";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, columns, complain, detail, forgetSecrets, say } from "./output.js";
import { pullCommand } from "./pull.js";
import { setupCommand } from "./setup.js";
import { statusCommand } from "./status.js";
import { syncCommand } from "./sync.js";
import { verifyCommand } from "./verify.js";

const COMMANDS: readonly Command[] = [
  statusCommand,
  syncCommand,
  pullCommand,
  verifyCommand,
  setupCommand,
  feedCommand,
  demoCommand,
];

function topLevelHelp(): string {
  return [
    "ominipg: inspect and sync the local data directory of an Ominipg app",
    "",
    "Usage: ominipg <command> [options]",
    "",
    "Commands:",
    ...columns(
      [
        ["status <dir> [--remote <url>]", statusCommand.summary],
        ["sync <dir> --remote <url>", syncCommand.summary],
        ["pull <dir> --remote <url>", pullCommand.summary],
        ["verify <dir> --remote <url>", verifyCommand.summary],
        ["setup --remote <url> [--grant <role>]", setupCommand.summary],
        ["feed --remote <url>", feedCommand.summary],
        ["demo", demoCommand.summary],
      ],
      "  ",
    ),
    "",
    "Options:",
    "  -h, --help     show help (also: ominipg <command> --help)",
    "      --version  print the version",
    "      --verbose  show stack traces of errors",
    "",
    "The remote URL can also come from $OMINIPG_REMOTE_URL, which keeps its password",
    "out of your shell history.",
    "",
    "Exit codes: 0 ok, 1 failed (or verify found differences), 2 usage error.",
  ].join("\n");
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError("missing a command");
  if (first === "-h" || first === "--help") {
    say(topLevelHelp());
    return EXIT_OK;
  }
  if (first === "--version") {
    say(version());
    return EXIT_OK;
  }
  if (first === "help") {
    const command = COMMANDS.find((c) => c.name === rest[0]);
    if (rest[0] !== undefined && !command) throw new UsageError(`unknown command "${rest[0]}"`);
    say(command?.help ?? topLevelHelp());
    return EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command)
    throw new UsageError(first.startsWith("-") ? `unknown option "${first}"` : `unknown command "${first}"`);
  return command.run(rest);
}

/** One `ominipg: <message>` line; the stack (and causes) only with --verbose. */
function report(err: unknown, verbose: boolean): number {
  if (err instanceof UsageError) {
    complain(`${err.message} (see ominipg ${err.command ? `${err.command} ` : ""}--help)`);
    return EXIT_USAGE;
  }
  const message = err instanceof Error ? err.message : String(err);
  complain(message || "failed with no message");
  if (verbose) {
    for (let e: unknown = err; e !== undefined; e = e instanceof Error ? e.cause : undefined) {
      detail(e instanceof Error ? (e.stack ?? e.message) : String(e));
      if (e instanceof Error && e.cause !== undefined) detail("caused by:");
    }
  }
  // Invalid options reach the library only from what was typed on the command line.
  return (err as { code?: unknown })?.code === "CONFIG_INVALID" ? EXIT_USAGE : EXIT_FAILED;
}

/** Run one command line (argv without node and the script); never throws: a failure is printed, its code returned. */
export async function runCli(argv: readonly string[]): Promise<number> {
  forgetSecrets(); // each run remembers only the passwords of its own command line
  const args = [...argv];
  const verbose = args.includes("--verbose");
  if (args[0] === "--verbose") args.shift(); // also accepted before the command
  try {
    return await main(args);
  } catch (err) {
    return report(err, verbose);
  }
}
