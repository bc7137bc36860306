
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_725ed0d710543cbe";
const __dir = (name: string) => "/tmp/ominipg-docs-svIrCB" + "/" + name;
const db = await Ominipg.connect({ url: __dir("prelude"), syncUrl: __remote, schemaSQL: ["CREATE TABLE IF NOT EXISTS todos (id SERIAL PRIMARY KEY, title TEXT NOT NULL, completed BOOLEAN DEFAULT FALSE,\n     created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW())"] });
await db.query("INSERT INTO todos (title) VALUES ($1)", ["Buy groceries"]);
await db.query("UPDATE todos SET completed = TRUE WHERE id = $1", [1]);
const { pushed, applied, batches } = await db.sync();


await db.close();

export {};
