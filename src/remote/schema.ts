/**
 * The remote ledger makes every push exactly once. Each batch's remote statement also inserts
 * (client id, batch id, the log entry ids it drains); a re-sent batch finds its row and does nothing.
 * A sync starts by deleting locally every entry the ledger says was applied (a crash may have come
 * between the remote COMMIT and the local clean-up), then forgets those ledger rows.
 */
export const LEDGER_TABLE = "_ominipg_ledger";

export const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS public.${LEDGER_TABLE} (
  client_id uuid NOT NULL,
  batch_id bigint NOT NULL,
  entry_ranges int8[] NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, batch_id)
)`;
