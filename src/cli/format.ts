import type { Status } from "../index.js";
import { columns, plural } from "./output.js";

/** Pending changes per table, highest priority (pushed first) on top. */
export function pendingLines(pending: Status["pending"], indent: string): string[] {
  return columns(
    pending.map((p) => [p.table, `priority ${p.priority}`, plural(p.count, "change")]),
    indent,
  );
}

export function lastSyncText(lastSync: Status["lastSync"]): string {
  if (!lastSync) return "never";
  return `${lastSync.at} (${plural(lastSync.pushed, "change")} pushed in ${lastSync.durationMs} ms)`;
}
