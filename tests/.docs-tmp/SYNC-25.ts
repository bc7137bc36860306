import { Ominipg } from "/work/main/src/index.js";


const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_dfe2813920b8efba";
const __dir = (name: string) => "/tmp/ominipg-docs-26zgAt" + "/" + name;
const syncUrl = __remote;

const db = await Ominipg.connect({
  url: __dir("local.db"),                           // or ":memory:"
  syncUrl: __remote,
  schemaSQL: [
    `CREATE TABLE IF NOT EXISTS todos (
       id SERIAL PRIMARY KEY,
       title TEXT NOT NULL,
       completed BOOLEAN DEFAULT FALSE,
       created_at TIMESTAMPTZ DEFAULT NOW(),
       updated_at TIMESTAMPTZ DEFAULT NOW()
     )`,
  ],
});


await db.close();

export {};
