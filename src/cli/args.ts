import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { checkRemoteUrl } from "../core/options.js";
import { isPostgresUrl } from "../core/url.js";
import { UsageError } from "./errors.js";
import { keepSecret } from "./output.js";

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean" },
} as const;

/** Options of commands that talk to the remote. */
export const REMOTE_OPTION = {
  remote: { type: "string", short: "r" },
} as const;

/** `parseArgs` with its errors turned into usage errors that name the command. */
export function parseCommandArgs<T extends ParseArgsConfig>(
  command: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    // Node's messages go on with advice about "--" that rarely applies: keep the first sentence.
    const message = (err as Error).message.split(/\.\s/)[0] ?? "";
    throw new UsageError(message.charAt(0).toLowerCase() + message.slice(1), command);
  }
}

/** The one <dir> positional of a command. */
export function directoryArg(command: string, positionals: string[]): string {
  const [dir, ...extra] = positionals;
  if (dir === undefined) throw new UsageError("missing the data directory argument <dir>", command);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, command);
  return dir;
}

/** The remote URL from --remote, or from $OMINIPG_REMOTE_URL (which keeps the password out of shell history). */
export function remoteArg(command: string, value: string | undefined, required: boolean): string | undefined {
  const url = value ?? (process.env["OMINIPG_REMOTE_URL"] || undefined);
  if (url === undefined) {
    if (required) throw new UsageError("missing --remote <url> (or set OMINIPG_REMOTE_URL)", command);
    return undefined;
  }
  keepSecret(url);
  const from = value === undefined ? "$OMINIPG_REMOTE_URL" : "--remote";
  if (!isPostgresUrl(url)) throw new UsageError(`${from} must be a postgres:// or postgresql:// URL`, command);
  // As connect() checks it (a ConfigError: a usage error), also for the commands that open it themselves.
  checkRemoteUrl(from, url, readFileSync);
  return url;
}

export function positiveIntegerArg(command: string, name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a whole number >= 1, got "${value}"`, command);
  return n;
}

export function choiceArg<C extends string>(
  command: string,
  name: string,
  value: string | undefined,
  choices: readonly C[],
): C | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as C))
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got "${value}"`, command);
  return value as C;
}

export function listArg(command: string, name: string, value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) throw new UsageError(`--${name} needs a comma-separated list of names`, command);
  return items;
}
