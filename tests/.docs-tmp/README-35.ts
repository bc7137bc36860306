import { Ominipg } from "/work/main/src/index.js";


const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_f2c9307079e9ea91";
const __dir = (name: string) => "/tmp/ominipg-docs-MC1w20" + "/" + name;
const syncUrl = __remote;

const db = await Ominipg.connect({
  url: __dir("local.db"),                                   // ":memory:" (default), a directory, or postgres:// (direct mode)
  syncUrl: __remote, // turns on capture and sync
  schemaSQL: [
    `CREATE TABLE IF NOT EXISTS todos (
       id SERIAL PRIMARY KEY,
       title TEXT NOT NULL,
       completed BOOLEAN DEFAULT FALSE
     )`,
  ],
});

db.on("sync:end", (r) => console.log(`pushed ${r.pushed} changes in ${r.batches} batches`));
db.on("error", (e) => console.error(e.code, e.message));

await db.query("INSERT INTO todos (title) VALUES ($1)", ["Buy groceries"]);
await db.query("UPDATE todos SET completed = TRUE WHERE id = $1", [1]);
await db.transaction(async (tx) => {
  await tx.query("INSERT INTO todos (title) VALUES ($1)", ["Write documentation"]);
});

const result = await db.sync(); // { pushed, applied, batches, durationMs, tables, rejected }
await db.close();


await db.close();

export {};
