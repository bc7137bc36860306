
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_36ed63f9eb416d55";
const __dir = (name: string) => "/tmp/ominipg-docs-OUtEqF" + "/" + name;
interface QueryResult<T> {
  rows: T[];            // objects, or arrays with options.rowMode === "array"
  rowCount: number;     // affected rows for INSERT/UPDATE/DELETE/MERGE, returned rows for SELECT
  fields: { name: string; dataTypeID: number }[];
  command: string;      // "SELECT", "INSERT", "CREATE TABLE", ...
}


export {};
