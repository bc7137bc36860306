
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_3096e1a3a76d8a2d";
const __dir = (name: string) => "/tmp/ominipg-docs-ohxaf1" + "/" + name;
const db = await Ominipg.connect({ url: __dir("prelude"), syncUrl: __remote, schemaSQL: ["CREATE TABLE IF NOT EXISTS todos (id SERIAL PRIMARY KEY, title TEXT NOT NULL, completed BOOLEAN DEFAULT FALSE,\n     created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW())"] });
const showSpinner = () => {};
const hideSpinner = (_r: unknown) => {};
const setProgress = (_p: number) => {};
const showError = (_c: string, _m: string) => {};
db.on("sync:start", () => showSpinner());
db.on("sync:progress", ({ done, total }) => setProgress(done / total));
db.on("sync:end", (result) => hideSpinner(result));
db.on("error", (error) => showError(error.code, error.message)); // SyncError: error.retryable


await db.close();

export {};
