import { SyncError } from "../core/errors.js";
import { quoteIdent } from "../core/sql.js";
import { usableFromSql, versionSql, type SetUpObjects } from "./versions.js";

/**
 * What Ominipg keeps on the remote: the ledger, which makes every push exactly once. Each batch's remote
 * statement also inserts (owner, client id, batch id, the log entry ids it drains); a re-sent batch finds its
 * row and does nothing. A sync starts by deleting locally every entry the ledger says was applied (a crash may
 * have come between the remote COMMIT and the local clean-up), then forgets those ledger rows.
 *
 * Per-tenant protection (docs/SECURITY.md): every row belongs to the identity that wrote it (`owner`: the
 * current role, plus "/<sub>" of the `request.jwt.claims` when set; checked by row-level security, forced on
 * the table's owner too), and the
 * owner is part of the key. A tenant cannot read, claim, change or delete another's rows, nor make its own
 * rows pass for another's: a batch claim conflicts only with the same owner's rows, and every query of
 * Ominipg's also filters by owner (superusers and BYPASSRLS roles skip policies). TRUNCATE, which policies do
 * not cover, is refused by a statement trigger. Rows from before this protection (owner '') stay readable by
 * their clients until their next sync prunes them, as they were before.
 */
export const LEDGER_TABLE = "_ominipg_ledger";

/** Bumped when the DDL below changes: the table's comment records what a remote was set up with. */
export const LEDGER_VERSION = 2;
export const REMOTE_SCHEMA_VERSION = `ominipg ledger v${LEDGER_VERSION}`;
const T = `public.${LEDGER_TABLE}`;

/** The change feed's tables (see FEED_DDL below), its version likewise. */
export const FEED_TABLE = "_ominipg_feed";
export const FEED_STATE_TABLE = "_ominipg_feed_state";
export const FEED_CLIENTS_TABLE = "_ominipg_feed_clients";
export const FEED_VERSION = 6;
export const FEED_SCHEMA_VERSION = `ominipg feed v${FEED_VERSION}`;
export const FEED = `public.${FEED_TABLE}`;

/** The ledger and the feed's tables as their set-up versions concern them (versions.ts). */
export const LEDGER_OBJECTS: SetUpObjects = {
  kind: "ledger",
  table: T,
  version: LEDGER_VERSION,
  label: `Ominipg's remote ledger ${T}`,
  code: "REMOTE_SETUP_FAILED",
};
export const FEED_OBJECTS: SetUpObjects = {
  kind: "feed",
  table: FEED,
  version: FEED_VERSION,
  label: "the change feed",
  code: "FEED_UNAVAILABLE",
};

/**
 * The first statement of both set-up DDLs: refuses to run where either of Ominipg's remote objects is of a newer
 * version (the two share the identity function, which either DDL would replace), before it changes anything; the
 * DDL printed by `ominipg setup --print` and run by hand too (setupScript). NULL (no comment, no table) is no
 * version: not newer.
 */
function refuseNewer(): string {
  const ledger = versionSql(LEDGER_OBJECTS);
  const feed = versionSql(FEED_OBJECTS);
  return `DO $v$ BEGIN
  IF ${ledger} > ${LEDGER_VERSION} OR ${feed} > ${FEED_VERSION} THEN
    RAISE EXCEPTION 'Ominipg''s remote objects were set up by a newer Ominipg than this one (${T} version %, ${FEED} version %; this one knows ${LEDGER_VERSION} and ${FEED_VERSION}): run the newer version''s ominipg setup', ${ledger}, ${feed}
      USING ERRCODE = '55000';
  END IF;
END $v$`;
}

/** The condition that keeps every query of Ominipg's to this role's ledger rows (and the pre-v2 rows). */
export const OWN_LEDGER_ROWS = "owner IN (public._ominipg_identity(), '')";

/**
 * An identity is "<role>/<sub>" with claims: a role whose name holds a "/" would share one with another role and
 * a sub (role "a/b" with none, role "a" with sub "b"), and with it that role's ledger rows and feed position.
 */
export function slashedRole(role: string): SyncError {
  return new SyncError(
    "REMOTE_SETUP_FAILED",
    `the role ${quoteIdent(role)} has a "/" in its name, which Ominipg's identities use between a role and a claims sub: another role with claims could pass for it. Use a role without "/"`,
    { retryable: false },
  );
}

/** The identity a ledger row belongs to: the current role, and the `sub` of JWT-style claims when set. */
export const IDENTITY = "public._ominipg_identity()";

/**
 * The same as an expression (the function's body), for a statement that only reads it: a call of the function
 * (its SET search_path) costs ~55 catalog blocks on a connection's first use, the expression none.
 */
export const IDENTITY_EXPRESSION = `current_user || coalesce('/' || (nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub'), '')`;

/** The function that names an identity: the ledger's and the feed readers' rows belong to one. */
const IDENTITY_DDL = `CREATE OR REPLACE FUNCTION public._ominipg_identity() RETURNS text
  LANGUAGE sql STABLE SET search_path = pg_catalog
  AS $$ SELECT ${IDENTITY_EXPRESSION} $$`;

/**
 * The set-up (and in-place upgrade from v1, whose rows get owner ''), idempotent, for a role that owns the
 * table or may create it: a privileged client runs it at first contact, `ominipg setup` on demand.
 */
export const LEDGER_DDL = `${refuseNewer()};
${IDENTITY_DDL};
CREATE TABLE IF NOT EXISTS ${T} (
  client_id uuid NOT NULL,
  batch_id bigint NOT NULL,
  entry_ranges int8[] NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ${T} ADD COLUMN IF NOT EXISTS owner text NOT NULL DEFAULT '';
ALTER TABLE ${T} ALTER COLUMN owner SET DEFAULT ${IDENTITY};
ALTER TABLE ${T} DROP CONSTRAINT IF EXISTS ${LEDGER_TABLE}_pkey;
ALTER TABLE ${T} ADD CONSTRAINT ${LEDGER_TABLE}_pkey PRIMARY KEY (owner, client_id, batch_id);
ALTER TABLE ${T} ENABLE ROW LEVEL SECURITY;
ALTER TABLE ${T} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS ominipg_own_rows ON ${T};
CREATE POLICY ominipg_own_rows ON ${T} USING (${OWN_LEDGER_ROWS}) WITH CHECK (owner = ${IDENTITY});
CREATE OR REPLACE FUNCTION public._ominipg_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'Ominipg''s ledger cannot be truncated: it holds every client''s proof of applied batches (delete your own rows, or run ominipg setup as its owner)'
    USING ERRCODE = '42501';
END $$;
DROP TRIGGER IF EXISTS ominipg_refuse_truncate ON ${T};
CREATE TRIGGER ominipg_refuse_truncate BEFORE TRUNCATE ON ${T} FOR EACH STATEMENT EXECUTE FUNCTION public._ominipg_refuse_truncate();
REVOKE ALL ON ${T} FROM PUBLIC;
COMMENT ON TABLE ${T} IS '${REMOTE_SCHEMA_VERSION}'`;

/**
 * The least a tenant role needs on Ominipg's own remote objects (its synced tables need their own grants): its
 * ledger rows, reading the change feed, and its own feed cursor. Needs the feed's tables (FEED_DDL).
 */
export function tenantGrants(role: string): string {
  if (role.includes("/")) throw slashedRole(role);
  const r = quoteIdent(role);
  return `GRANT USAGE ON SCHEMA public TO ${r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${T} TO ${r};
REVOKE SELECT ON ${FEED} FROM ${r};
GRANT SELECT (${FEED_READ}) ON ${FEED} TO ${r};
GRANT SELECT ON ${FEED_STATE} TO ${r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${FEED_CLIENTS} TO ${r}`;
}

/**
 * The change feed (remote/feed.ts, docs/SYNC.md): the primary keys of the rows each remote transaction changed,
 * drained from a logical replication slot by a role with REPLICATION (or a superuser), at the transaction's
 * commit LSN. Keys, not rows: a reader fetches the rows themselves under its own role.
 *
 * - `_ominipg_feed`: per changed key, a row with `key` (the primary key's columns as text in a jsonb object); per
 *   table that must be read whole, one with `key` NULL (a TRUNCATE, a change whose key could not be read); and
 *   for a table with row-level security enabled, per row an UPDATE or DELETE changed, a second row with its
 *   `image` before the change (the table's replica identity: all columns when it is FULL).
 * - `_ominipg_feed_state`: per slot, its epoch (new with every slot: positions of an older one mean nothing to
 *   it), how far the feed is complete (`drained_upto`: every change committed at or before it is in), when a
 *   drainer last ran, and how far rows were trimmed.
 * - `_ominipg_feed_clients`: each reader's position, so that rows every reader has passed can be trimmed; per
 *   identity like the ledger (forced row-level security), readable and deletable by drainers.
 *
 * The feed and its state are UNLOGGED: they write no WAL, so the slot does not decode the feed's own writes
 * again (that doubled the drain's cost) and an idle drainer's heartbeat costs only a commit record. A crash (or a
 * standby's promotion) empties them: readers then find no feed and diff, and the next drainer starts a new
 * epoch at the slot's position, which readers' cursors are not of, so they diff once more. Nothing is lost.
 *
 * Who sees what (forced row-level security, so that not even GRANT ALL changes it; docs/SECURITY.md): drainers
 * (superuser or REPLICATION, the roles that can read the slot and so every change anyway) read and write
 * everything; everyone else reads a feed row only if it concerns a row it may see (_ominipg_feed_visible): a key
 * row when the role may read the table (or some of its columns, the key's among them) and, where row-level security applies to it, may see the row under that
 * key NOW; an image row when the table's SELECT policies, evaluated as the role, let it see the image, i.e. the
 * row as it was before the change. A tenant thus learns of changes to rows it may see, or saw before they were
 * changed away from it or deleted, and of nothing else (the rows hold no position within a transaction that
 * would count the others). TRUNCATE is refused by a trigger.
 */
/** The feed's columns a reader reads, and all it is granted of them (not the images: tenantGrants). */
export const FEED_READ = "lsn, schema_name, table_name, key";
export const FEED_STATE = `public.${FEED_STATE_TABLE}`;
export const FEED_CLIENTS = `public.${FEED_CLIENTS_TABLE}`;

/** Whether the current role may drain a slot: evaluated once per statement where policies use it. */
export const MAY_DRAIN = "(SELECT public._ominipg_may_drain())";

/**
 * Whether the current role may see a feed row (see above), evaluated per row by the feed's read policy, as the
 * reader (SECURITY INVOKER: current_user and the session's claims are the reader's, the table's policies apply
 * to it). A row image is checked against the table's SELECT policies for this role (permissive ones OR-ed,
 * restrictive ones AND-ed, as PostgreSQL combines them) on the image made a row of the table's type.
 */
const VISIBLE_DDL = `CREATE OR REPLACE FUNCTION public._ominipg_feed_visible(s text, t text, k jsonb, image jsonb) RETURNS boolean
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $f$
DECLARE
  rel regclass := to_regclass(format('%I.%I', s, t));
  eq text;
  defs text;
  whole boolean;
  named boolean;
  permissive text;
  restrictive text;
  ok boolean;
BEGIN
  -- Any column: a role granted SELECT on the synced columns only reads the table's rows too.
  IF rel IS NULL OR NOT has_any_column_privilege(rel, 'SELECT') THEN RETURN false; END IF;
  -- But the key's values are shown: only to a role that may read the key's columns (a dropped one: to none).
  IF k IS NOT NULL AND NOT has_table_privilege(rel, 'SELECT') AND EXISTS (SELECT 1 FROM jsonb_object_keys(k) AS c
      LEFT JOIN pg_attribute AS a ON a.attrelid = rel AND a.attname = c AND NOT a.attisdropped
      WHERE a.attnum IS NULL OR NOT has_column_privilege(rel, a.attnum, 'SELECT')) THEN
    RETURN false;
  END IF;
  IF NOT row_security_active(rel) THEN RETURN true; END IF;
  IF image IS NULL THEN
    IF k IS NULL THEN RETURN true; END IF;
    -- The key alone, typed by its columns: as a row of the table, the other columns NULL, a NOT NULL domain of
    -- one of them refused it (and the row was never shown). A column the table no longer has: no row has the key.
    -- A key type in a schema this role may not use cannot be named (reading a column of it needs no USAGE): as a
    -- row of the table then.
    SELECT string_agg(format('r.%1$I = k.%1$I', c), ' AND '), string_agg(format('%I %s', c, format_type(a.atttypid, a.atttypmod)), ', '),
        count(a.attname) = count(*), bool_and(has_schema_privilege(ty.typnamespace, 'USAGE'))
      INTO eq, defs, whole, named FROM jsonb_object_keys(k) AS c
      LEFT JOIN pg_attribute AS a ON a.attrelid = rel AND a.attname = c AND a.attnum > 0 LEFT JOIN pg_type AS ty ON ty.oid = a.atttypid;
    IF NOT whole OR eq IS NULL THEN RETURN false; END IF;
    BEGIN
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s AS r, %s WHERE %s)', rel,
          CASE WHEN named THEN format('jsonb_to_record($1) AS k(%s)', defs) ELSE format('jsonb_populate_record(NULL::%s, $1) AS k', rel) END, eq)
        INTO ok USING k;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
      -- A key the table's key no longer reads (its type narrowed, its domain given a CHECK since): no row has it.
      RETURN false;
    END;
    RETURN ok;
  END IF;
  SELECT string_agg('(' || pg_get_expr(p.polqual, p.polrelid) || ')', ' OR ') FILTER (WHERE p.polpermissive),
      string_agg('(' || pg_get_expr(p.polqual, p.polrelid) || ')', ' AND ') FILTER (WHERE NOT p.polpermissive)
    INTO permissive, restrictive
    FROM pg_policy AS p
    WHERE p.polrelid = rel AND p.polcmd IN ('r', '*') AND p.polqual IS NOT NULL
      AND (0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS g(oid) WHERE pg_has_role(current_user, g.oid, 'USAGE')));
  IF permissive IS NULL THEN RETURN false; END IF;
  BEGIN
    EXECUTE format('SELECT coalesce((%s) AND (%s), false) FROM jsonb_populate_record(NULL::%s, $1) AS %I',
        permissive, coalesce(restrictive, 'true'), rel, t)
      INTO ok USING image;
  EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
    -- An image the table's columns no longer read (a column's type changed, a domain's CHECK added since): not
    -- shown, rather than failing every read of the feed until it is trimmed.
    RETURN false;
  END;
  RETURN ok;
END $f$`;

/**
 * From v1 (rows keyed by their place in a transaction, no images): its rows go, and a new epoch makes readers
 * diff once (their cursors are of the old one). Only on a v1 table: `ominipg setup` runs the DDL every time.
 */
const FEED_V1_UPGRADE = `DO $u$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '${FEED}'::regclass AND attname = 'ord' AND NOT attisdropped) THEN
    ALTER TABLE ${FEED} DROP CONSTRAINT IF EXISTS ${FEED_TABLE}_pkey;
    ALTER TABLE ${FEED} DROP COLUMN ord;
    ALTER TABLE ${FEED} ADD COLUMN IF NOT EXISTS image jsonb;
    DELETE FROM ${FEED};
    UPDATE ${FEED_STATE} SET epoch = gen_random_uuid(), trimmed_upto = drained_upto, trimmed_at = now();
  END IF;
END $u$`;

/**
 * From v2-v3 (readers granted SELECT on the whole feed, images of rows a transaction made or of a key alone): the
 * roles granted SELECT but not INSERT (readers, not drainers) keep SELECT on the columns a reader reads only
 * (tenantGrants), the images go, and a new epoch makes readers diff once (the images told them which rows left
 * their sight). Run before the version comment is set: only on such a table (a table this DDL just made has no
 * comment yet: its version is NULL, not below 4).
 */
const FEED_V4_UPGRADE = `DO $u$ DECLARE r record; BEGIN
  IF ${versionSql(FEED_OBJECTS)} < 4 THEN
    FOR r IN SELECT DISTINCT a.grantee FROM pg_class AS c, aclexplode(c.relacl) AS a
        WHERE c.oid = '${FEED}'::regclass AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner AND a.grantee <> 0
          AND NOT EXISTS (SELECT FROM aclexplode(c.relacl) AS b WHERE b.grantee = a.grantee AND b.privilege_type = 'INSERT') LOOP
      EXECUTE format('REVOKE SELECT ON ${FEED} FROM %s', r.grantee::regrole);
      EXECUTE format('GRANT SELECT (${FEED_READ}) ON ${FEED} TO %s', r.grantee::regrole);
    END LOOP;
    DELETE FROM ${FEED} WHERE image IS NOT NULL;
    UPDATE ${FEED_STATE} SET epoch = gen_random_uuid(), trimmed_upto = drained_upto, trimmed_at = now();
  END IF;
END $u$`;

/** The feed's tables, idempotent (with the identity function, which the ledger shares). */
export const FEED_DDL = `${refuseNewer()};
${IDENTITY_DDL};
CREATE OR REPLACE FUNCTION public._ominipg_may_drain() RETURNS boolean
  LANGUAGE sql STABLE SET search_path = pg_catalog
  AS $$ SELECT coalesce((SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user), false) $$;
CREATE OR REPLACE FUNCTION public._ominipg_feed_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'Ominipg''s change feed cannot be truncated: readers would miss changes (drainers trim it)'
    USING ERRCODE = '42501';
END $$;
CREATE UNLOGGED TABLE IF NOT EXISTS ${FEED} (
  lsn pg_lsn NOT NULL,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  key jsonb,
  image jsonb,
  drained_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ${FEED_TABLE}_by_table ON ${FEED} (schema_name, table_name, lsn);
CREATE INDEX IF NOT EXISTS ${FEED_TABLE}_by_lsn ON ${FEED} (lsn);
${VISIBLE_DDL};
CREATE UNLOGGED TABLE IF NOT EXISTS ${FEED_STATE} (
  slot_name text PRIMARY KEY,
  epoch uuid NOT NULL,
  drained_upto pg_lsn NOT NULL,
  drained_at timestamptz NOT NULL,
  trimmed_upto pg_lsn NOT NULL,
  trimmed_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ${FEED_CLIENTS} (
  owner text NOT NULL DEFAULT ${IDENTITY},
  client_id uuid NOT NULL,
  epoch uuid NOT NULL,
  lsn pg_lsn NOT NULL,
  seen_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner, client_id)
);
${FEED_V1_UPGRADE};
${FEED_V4_UPGRADE};
ALTER TABLE ${FEED} ENABLE ROW LEVEL SECURITY;
ALTER TABLE ${FEED} FORCE ROW LEVEL SECURITY;
ALTER TABLE ${FEED_STATE} ENABLE ROW LEVEL SECURITY;
ALTER TABLE ${FEED_STATE} FORCE ROW LEVEL SECURITY;
ALTER TABLE ${FEED_CLIENTS} ENABLE ROW LEVEL SECURITY;
ALTER TABLE ${FEED_CLIENTS} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS ominipg_read ON ${FEED};
CREATE POLICY ominipg_read ON ${FEED} FOR SELECT USING (public._ominipg_feed_visible(schema_name, table_name, key, image));
DROP POLICY IF EXISTS ominipg_drain ON ${FEED};
CREATE POLICY ominipg_drain ON ${FEED} USING (${MAY_DRAIN}) WITH CHECK (${MAY_DRAIN});
DROP POLICY IF EXISTS ominipg_read ON ${FEED_STATE};
CREATE POLICY ominipg_read ON ${FEED_STATE} FOR SELECT USING (true);
DROP POLICY IF EXISTS ominipg_drain ON ${FEED_STATE};
CREATE POLICY ominipg_drain ON ${FEED_STATE} USING (${MAY_DRAIN}) WITH CHECK (${MAY_DRAIN});
DROP POLICY IF EXISTS ominipg_own_rows ON ${FEED_CLIENTS};
CREATE POLICY ominipg_own_rows ON ${FEED_CLIENTS} USING (owner = ${IDENTITY}) WITH CHECK (owner = ${IDENTITY});
DROP POLICY IF EXISTS ominipg_drainer_reads ON ${FEED_CLIENTS};
CREATE POLICY ominipg_drainer_reads ON ${FEED_CLIENTS} FOR SELECT USING (${MAY_DRAIN});
DROP POLICY IF EXISTS ominipg_drainer_trims ON ${FEED_CLIENTS};
CREATE POLICY ominipg_drainer_trims ON ${FEED_CLIENTS} FOR DELETE USING (${MAY_DRAIN});
DROP TRIGGER IF EXISTS ominipg_refuse_truncate ON ${FEED};
CREATE TRIGGER ominipg_refuse_truncate BEFORE TRUNCATE ON ${FEED} FOR EACH STATEMENT EXECUTE FUNCTION public._ominipg_feed_refuse_truncate();
DROP TRIGGER IF EXISTS ominipg_refuse_truncate ON ${FEED_STATE};
CREATE TRIGGER ominipg_refuse_truncate BEFORE TRUNCATE ON ${FEED_STATE} FOR EACH STATEMENT EXECUTE FUNCTION public._ominipg_feed_refuse_truncate();
DROP TRIGGER IF EXISTS ominipg_refuse_truncate ON ${FEED_CLIENTS};
CREATE TRIGGER ominipg_refuse_truncate BEFORE TRUNCATE ON ${FEED_CLIENTS} FOR EACH STATEMENT EXECUTE FUNCTION public._ominipg_feed_refuse_truncate();
REVOKE ALL ON ${FEED}, ${FEED_STATE}, ${FEED_CLIENTS} FROM PUBLIC;
COMMENT ON TABLE ${FEED} IS '${FEED_SCHEMA_VERSION}'`;

/**
 * What a drainer role that is not a superuser (REPLICATION, and not the tables' owner) needs on the feed's
 * tables, besides the slot functions its REPLICATION attribute allows; and, on PostgreSQL 16+,
 * `pg_log_standby_snapshot()`, with which it keeps the slot's restart point up (remote/feed-drain.ts). Granting
 * that takes a superuser: a set-up role that is not one is warned, and the drain works without it.
 */
export function drainerGrants(role: string): string {
  const r = quoteIdent(role);
  return `GRANT USAGE ON SCHEMA public TO ${r};
GRANT SELECT, INSERT, DELETE ON ${FEED} TO ${r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${FEED_STATE} TO ${r};
GRANT SELECT, DELETE ON ${FEED_CLIENTS} TO ${r};
DO $ominipg$ BEGIN
  IF to_regprocedure('pg_catalog.pg_log_standby_snapshot()') IS NOT NULL THEN
    GRANT EXECUTE ON FUNCTION pg_catalog.pg_log_standby_snapshot() TO ${r};
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'pg_log_standby_snapshot() not granted to the drainer (%): the feed drains without it, decoding more', SQLERRM;
END $ominipg$`;
}

/**
 * `ominipg setup --print`: the set-up and the grants as one script, in one transaction. Run by hand with psql's
 * defaults (autocommit, going on after an error), a refusal (refuseNewer) would otherwise only print an error and
 * let the statements after it set a newer version's objects up again; in a transaction, they all fail with it.
 */
export function setupScript(roles: readonly string[], drainers: readonly string[]): string {
  return `BEGIN;\n${[LEDGER_DDL, FEED_DDL, ...roles.map(tenantGrants), ...drainers.map(drainerGrants)].join(";\n")};\nCOMMIT;`;
}

/**
 * Whether the objects' table exists, its version (a number: versionSql), the oldest version that may use it
 * (usableFromSql), and whether this role may set it up.
 */
function setUpStateSql(o: SetUpObjects): string {
  return `SELECT to_regclass('${o.table}') IS NOT NULL AS found,
  coalesce(${versionSql(o)}, 0) AS version, ${usableFromSql(o)} AS usable_from,
  coalesce((SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass('${o.table}')), false) AS owns,
  has_schema_privilege('public', 'CREATE') AS may_create`;
}

export const FEED_TABLES_STATE_SQL = setUpStateSql(FEED_OBJECTS);
export const LEDGER_STATE_SQL = setUpStateSql(LEDGER_OBJECTS);
