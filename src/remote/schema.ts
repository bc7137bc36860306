import { quoteIdent } from "../core/sql.js";

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
export const REMOTE_SCHEMA_VERSION = "ominipg ledger v2";

/** The condition that keeps every query of Ominipg's to this role's ledger rows (and the pre-v2 rows). */
export const OWN_LEDGER_ROWS = "owner IN (public._ominipg_identity(), '')";

/** The identity a ledger row belongs to: the current role, and the `sub` of JWT-style claims when set. */
export const IDENTITY = "public._ominipg_identity()";

const T = `public.${LEDGER_TABLE}`;

/**
 * The set-up (and in-place upgrade from v1, whose rows get owner ''), idempotent, for a role that owns the
 * table or may create it: a privileged client runs it at first contact, `ominipg setup` on demand.
 */
export const LEDGER_DDL = `CREATE OR REPLACE FUNCTION public._ominipg_identity() RETURNS text
  LANGUAGE sql STABLE SET search_path = pg_catalog
  AS $$ SELECT current_user || coalesce('/' || (nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub'), '') $$;
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

/** The least a tenant role needs on Ominipg's own remote objects (its synced tables need their own grants). */
export function tenantGrants(role: string): string {
  const r = quoteIdent(role);
  return `GRANT USAGE ON SCHEMA public TO ${r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${T} TO ${r}`;
}

/** Whether the remote's ledger exists, and the set-up version it carries. */
export const LEDGER_STATE_SQL = `SELECT to_regclass('${T}') IS NOT NULL AS found,
  coalesce(obj_description(to_regclass('${T}'), 'pg_class'), '') AS version,
  coalesce((SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass('${T}')), false) AS owns,
  has_schema_privilege('public', 'CREATE') AS may_create`;
