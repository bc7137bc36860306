import { Ominipg } from "/work/main/src/index.js";


const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_279b1dc32ac6c10a";
const __dir = (name: string) => "/tmp/ominipg-docs-C3VSVX" + "/" + name;
const syncUrl = __remote;

const db = await Ominipg.connect({
  url: __dir("replica.db"),
  syncUrl: __remote,
  schemaSQL: [`CREATE TABLE IF NOT EXISTS todos (id SERIAL PRIMARY KEY, title TEXT NOT NULL, completed BOOLEAN DEFAULT FALSE)`],
  sync: { pull: "initial" }, // pull once in the background when this database has never pulled
});

db.on("conflict", (c) => console.warn(c.origin, c.table, c.key, c.resolution));
const { tables, conflicts } = await db.pull(); // remote inserts, updates and deletes since the last pull
await db.close();


await db.close();

export {};
