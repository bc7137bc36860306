
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_4cb9aaf1b33bc261";
const __dir = (name: string) => "/tmp/ominipg-docs-gkXlAs" + "/" + name;
interface SyncResult {
  pushed: number;      // log entries drained
  applied: number;     // remote row writes after coalescing
  batches: number;     // remote transactions
  durationMs: number;
  tables: Record<string, number>; // entries drained per "schema.table"
  rejected: number;    // entries kept in _ominipg_rejected (onReject: "skip")
  conflicts: number;   // pushed changes that met a remote change of the same row, settled and recorded
}


export {};
