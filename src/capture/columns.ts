import type { ColumnInfo } from "../core/table.js";

/** A synced schema's column, as COLUMNS_SQL reads it (ColumnInfo). */
export interface ColumnRow {
  oid: number;
  name: string;
  type: string;
  type_id: string;
  generated: string;
  identity: string;
  json_value: ColumnInfo["jsonValue"];
  spelling: ColumnInfo["spelling"] | null;
  sequence: boolean;
  refuses_null: boolean;
}

/** Every column of the tables of the schemas $1, in table order. */
export const COLUMNS_SQL = `SELECT a.attrelid::int8 AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
          a.atttypid::text || ':' || a.atttypmod AS type_id,
          a.attgenerated::text AS generated, a.attidentity::text AS identity,
          a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false) AS sequence,
          CASE WHEN b.typtype = 'd' OR coalesce(b.typcategory, t.typcategory) IN ('A', 'C') THEN 'nested'
               WHEN coalesce(b.oid, t.oid) IN ('json'::regtype, 'jsonb'::regtype) THEN 'json' ELSE 'text' END AS json_value,
          CASE WHEN coalesce(b.oid, t.oid) IN ('float4'::regtype, 'float8'::regtype) THEN 'float'
               WHEN coalesce(b.oid, t.oid) = 'timestamptz'::regtype THEN 'timestamptz'
               WHEN coalesce(b.oid, t.oid) = 'numeric'::regtype AND a.atttypmod = -1 AND t.typtypmod = -1 THEN 'numeric'
          END AS spelling,
          -- a domain refusing NULL, by its own or a base domain's NOT NULL or CHECK (TableInfo.refusingNull)
          CASE WHEN t.typtype = 'd' THEN (
            WITH RECURSIVE up(oid) AS (SELECT t.oid UNION SELECT u.typbasetype FROM up JOIN pg_type u ON u.oid = up.oid WHERE u.typtype = 'd')
            SELECT bool_or(u.typnotnull OR EXISTS (SELECT FROM pg_constraint k WHERE k.contypid = u.oid AND k.contype = 'c'))
              FROM up JOIN pg_type u ON u.oid = up.oid) ELSE false END AS refuses_null
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_type t ON t.oid = a.atttypid
     -- a domain by its base type b (for json_value, a domain over a domain counts as nested: refuses_null alone
     -- looks further);
     -- a join on an expression of t hashed the whole of pg_type
     LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = ''
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])
    ORDER BY a.attrelid, a.attnum`;
