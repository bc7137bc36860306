import { Kysely, type Generated } from "kysely";
import { Ominipg } from "/work/main/src/index.js";
import { OminipgDialect } from "/work/main/src/adapters/kysely.js";


const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_e92828b89c02d56b";
const __dir = (name: string) => "/tmp/ominipg-docs-u7BIh3" + "/" + name;
const syncUrl = __remote;



interface Database {
  users: { id: Generated<number>; name: string };
}
const db = await Ominipg.connect({
  url: __dir("app.db"),
  syncUrl: __remote,
  schemaSQL: [`CREATE TABLE IF NOT EXISTS users (id SERIAL PRIMARY KEY, name TEXT NOT NULL)`],
});
const k = new Kysely<Database>({ dialect: new OminipgDialect({ client: db }) });
await k.insertInto("users").values({ name: "Ada" }).execute();
await k.transaction().execute(async (trx) => {
  await trx.updateTable("users").set({ name: "Ada L." }).where("name", "=", "Ada").execute();
});
await db.sync();
await db.close();


await db.close();

export {};
