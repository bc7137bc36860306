
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_5c9a309cd400dd9b";
const __dir = (name: string) => "/tmp/ominipg-docs-qFXCWS" + "/" + name;
const syncUrl = __remote;
const db = await Ominipg.connect({
  url: __dir("local.db"),
  syncUrl,
  sync: {
    intervalMs: 5 * 60_000,  // every 5 minutes
    pushDebounceMs: 2_000,   // and 2 s after the last write
  },
});


await db.close();

export {};
