
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_9d0e16565c0d26f1";
const __dir = (name: string) => "/tmp/ominipg-docs-HQM76w" + "/" + name;
const db = await Ominipg.connect({ url: __dir("prelude"), syncUrl: __remote, schemaSQL: ["CREATE TABLE IF NOT EXISTS todos (id SERIAL PRIMARY KEY, title TEXT NOT NULL, completed BOOLEAN DEFAULT FALSE,\n     created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW())"] });
await db.query(`UPDATE _sync_queue SET priority = 1 WHERE table_name IN ('orders', 'payments')`);
await db.sync(); // orders and payments (and the rows they reference) are pushed before everything else


await db.close();

export {};
