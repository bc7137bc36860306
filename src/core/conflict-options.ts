import { ConfigError } from "./errors.js";
import type { ConflictOptions } from "./conflicts.js";

const STRATEGIES = new Set(["overwrite", "remote-wins", "merge"]);

/** Validate `sync.conflicts` at connect: strategies are known names or functions. */
export function checkConflictOptions(options: ConflictOptions | undefined): void {
  if (options === undefined) return;
  const check = (s: unknown, where: string) => {
    if (typeof s !== "function" && !STRATEGIES.has(s as string)) {
      throw new ConfigError(
        `${where} must be "overwrite", "remote-wins", "merge" or a resolver function, got ${JSON.stringify(s) ?? String(s)}`,
      );
    }
  };
  if (typeof options !== "object" || options === null) return check(options, "sync.conflicts");
  for (const key of Object.keys(options))
    if (key !== "default" && key !== "tables") throw new ConfigError(`unknown sync.conflicts option "${key}"`);
  if (options.default !== undefined) check(options.default, "sync.conflicts.default");
  if (options.tables !== undefined && (typeof options.tables !== "object" || options.tables === null))
    throw new ConfigError("sync.conflicts.tables must be an object");
  for (const [name, s] of Object.entries(options.tables ?? {})) check(s, `sync.conflicts.tables["${name}"]`);
}
