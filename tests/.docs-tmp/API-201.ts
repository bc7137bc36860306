
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_fada2438de2e2c2f";
const __dir = (name: string) => "/tmp/ominipg-docs-fgcGts" + "/" + name;
interface ConflictEvent {
  origin: "push" | "pull";  // settled by sync(), or found by pull() while the change waits ("local-pending")
  table: string; key: Row; base: Row | null; local: Row | null; remote: Row | null;
  resolution: "local" | "remote" | "merge" | "custom" | "skip" | "local-pending";
  resolved: Row | null;     // the row both sides end with (null: none, or "skip"/"local-pending")
}


export {};
