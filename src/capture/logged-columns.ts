/**
 * Per table of the schemas $1, the columns an UPDATE's log images always carry, assigned or not (log/capture.ts),
 * in table order: those of unique indexes (the primary key, expressions, predicates) and of foreign keys to the
 * table itself, which the push's ordering (push/coalesce.ts) must see change, and STORED generated columns, which
 * an assignment of what they are computed from changes (a resolver's and the conflict record's base row shows them
 * as they were: filled from the local row, they showed the value after the change). From the tables in scope outwards,
 * by the catalogs' indexes (tests of every column against all of pg_depend took 1.5-2x as long).
 */
export const LOGGED_COLUMNS_SQL = `WITH rels AS MATERIALIZED (
   SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])),
 uniq AS MATERIALIZED (
   SELECT i.indrelid, i.indexrelid, i.indkey FROM rels JOIN pg_index i ON i.indrelid = rels.oid WHERE i.indisunique),
 carried (rel, attnum) AS (
   SELECT u.indrelid, k.attnum FROM uniq u CROSS JOIN LATERAL unnest(u.indkey::int2[]) AS k(attnum)
   UNION SELECT u.indrelid, d.refobjsubid FROM uniq u JOIN pg_depend d
           ON d.classid = 'pg_class'::regclass AND d.objid = u.indexrelid AND d.refobjid = u.indrelid
   UNION SELECT f.conrelid, k.attnum FROM rels JOIN pg_constraint f ON f.conrelid = rels.oid
           CROSS JOIN LATERAL unnest(f.conkey) AS k(attnum)
          WHERE f.contype = 'f' AND f.confrelid = f.conrelid
   UNION SELECT a.attrelid, a.attnum FROM rels JOIN pg_attribute a ON a.attrelid = rels.oid WHERE a.attgenerated = 's')
 SELECT a.attrelid::int8 AS oid, array_agg(a.attname::text ORDER BY a.attnum) AS cols
   FROM carried JOIN pg_attribute a ON a.attrelid = carried.rel AND a.attnum = carried.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped
  GROUP BY a.attrelid`;
