
import { Ominipg } from "/work/main/src/index.js";
const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_09e1493c5dc6017d";
const __dir = (name: string) => "/tmp/ominipg-docs-2Y23oX" + "/" + name;
type Row = Record<string, unknown>; // to_jsonb of the row: timestamps as ISO text in UTC, json as values;
                                    // a number a JS number cannot hold exactly (big int8, long numeric) is a string
type ConflictResolver = (c: {
  table: string;       // "schema.table"
  key: Row;            // primary key of the remote row
  base: Row | null;    // before the local change (null: the change inserted it)
  local: Row | null;   // after the local change (null: deleted)
  remote: Row | null;  // the remote row now (null: none)
}) => Row | "local" | "remote" | "skip" | Promise<Row | "local" | "remote" | "skip">;


export {};
