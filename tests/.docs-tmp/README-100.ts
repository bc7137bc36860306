import { Ominipg } from "/work/main/src/index.js";
import { drizzle } from "/work/main/src/adapters/drizzle.js";
import { pgTable, serial, text } from "drizzle-orm/pg-core";
import { eq } from "drizzle-orm";


const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_52e358f1678ccb87";
const __dir = (name: string) => "/tmp/ominipg-docs-GHGmZx" + "/" + name;
const syncUrl = __remote;




const users = pgTable("users", { id: serial("id").primaryKey(), name: text("name").notNull() });
const db = await Ominipg.connect({
  url: __dir("app.db"),
  syncUrl: __remote,
  schemaSQL: [`CREATE TABLE IF NOT EXISTS users (id SERIAL PRIMARY KEY, name TEXT NOT NULL)`],
});
const orm = drizzle(db);
const [ada] = await orm.insert(users).values({ name: "Ada" }).returning();
await orm.transaction(async (tx) => {
  await tx.update(users).set({ name: "Ada L." }).where(eq(users.id, ada!.id));
});
await db.sync();
await db.close();


await db.close();

export {};
