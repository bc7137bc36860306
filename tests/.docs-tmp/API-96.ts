
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_4d12cf94dbfa5dcf";
const __dir = (name: string) => "/tmp/ominipg-docs-2hxQU5" + "/" + name;
interface PullResult {
  tables: Record<string, { strategy: "copy" | "diff" | "held"; upserted: number; deleted: number; skipped: number; rejected: number }>;
  conflicts: number;
  rejected: number;   // remote rows the local table refused (reported, the rest applied)
  sequences: number;  // local sequences moved past pulled ids
  durationMs: number;
}


export {};
