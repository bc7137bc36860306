export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** The text of `ominipg <name> --help`. */
  help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}
