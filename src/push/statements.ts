import { overridingClause, type TableInfo } from "../core/table.js";
import { columnList, columnsEqual, onConflict, quoteIdent, quoteLiteral } from "../core/sql.js";
import { claimSql } from "./ledger.js";
import { joinImage, type Image } from "../core/image.js";
import { readableKey } from "../core/key-text.js";
import { assignments, encodeImage, field, jsonText, rowJsonb } from "../core/json-text.js";
import { LEDGER_TABLE, OWN_LEDGER_ROWS } from "../remote/schema.js";

/**
 * Set-based remote writes. Every group of writes takes its rows as ONE json parameter (sent as text, so
 * postgres.js cannot double-encode it) and turns them into rows of the table's own row type with
 * json_populate_record: a fixed parameter count at any batch size, and every column type converted by
 * PostgreSQL's own input functions. (json, not jsonb: it is faster, and it keeps the text of json values;
 * json columns travel encoded, core/json-text.ts, so their text arrives byte for byte.)
 *
 * A batch is ONE statement, atomic without a client-side transaction. (postgres.js's transactions are not
 * safe against a lost connection: sql.begin() writes its ROLLBACK to the dead socket, an uncaught TypeError.)
 * Its WITH queries, in the order they take effect:
 * 1. per group, the rows it is about to write, and the remote rows they replace, locked (FOR [NO KEY]
 *    UPDATE, in key order so that two clients cannot deadlock on them) and compared with what the client
 *    expects to find there: a conflict is a row that matches neither the expected row (the before image, in
 *    the columns the change touched) nor the row about to be written; for a key change, also a row the remote
 *    holds at the new key (locked too: it is another row, the move would fail on it), unless the key change
 *    is there already: that row equals the moved row and the old key has none;
 * 2. the ledger claim, made only when no row conflicts, after every row is locked (it counts them);
 * 3. the writes, each gated on the claim: all of the batch or nothing, and nothing twice.
 * It returns `fresh` (claimed now) and the conflicts with the remote rows (when it wrote nothing).
 * One statement means one snapshot: the writes cannot see each other, which is fine because they touch
 * different rows and Coalescer.add keeps writes that depend on one another out of the same window;
 * foreign key checks and actions run at the end of the statement, when all of them are done.
 * The locks are taken on the newest row versions (READ COMMITTED re-reads a row changed since the
 * statement's snapshot), so a row cannot change between its check and its write. A key that has no row cannot
 * be locked: if another session inserts it while the statement runs, the upsert leaves that row alone, and
 * the statement fails (RACE) before it commits; the retry's check finds the row.
 */

/** A group of writes of one table and one statement shape, and how the remote rows are checked first. */
export type GroupWrite = {
  table: TableInfo;
  /**
   * The table as the remote reads and writes its rows (remote/remote-target.ts): `ONLY <table>` (inheritance
   * children only the remote has are not its rows), but for a partitioned table. Its own name elsewhere (INSERT,
   * types, regclass).
   */
  target: string;
  /**
   * Compared columns. `expected` has, per row (aligned with the rows), the row the remote should hold, null
   * for none; without it, no row. A remote row already equal to the written row (for a delete: no row; for a
   * key change: the moved row at the new key, none at the old one) is no conflict either.
   */
  check: { columns: string[]; expected?: (Image | null)[] };
} &
  /**
   * Insert full rows of `columns`; on a key that exists, set only `set` (nothing if empty). `existing`: the rows
   * hold only some columns (an update's partial images, push/complete.ts) and the check expects every row to
   * be there: only update them (an INSERT would be refused for the columns it lacks before ON CONFLICT applies).
   * `plain`: new rows of a table whose row-level security lets the role insert rows it may not read, which ON
   * CONFLICT refuses (the row must pass the SELECT policies): a plain INSERT, a remote row at the key its error.
   */
  (
    | { kind: "upsert"; columns: string[]; set: string[]; rows: Image[]; existing?: boolean; plain?: boolean }
    /** Update the row found by `key` to `set` of `image`. */
    | { kind: "move"; columns: string[]; set: string[]; rows: { key: Image; image: Image; base: Image | null }[] }
    | { kind: "delete"; rows: Image[] }
  );

/**
 * One remote conflict: the group and the 1-based row of it, and the remote row as `rowJsonb(t, row, true)` text
 * (null: none); for a key change, `taken`: the row the remote holds at the new key (null: none).
 */
export interface RemoteConflict {
  group: number;
  row: number;
  remote: string | null;
  taken: string | null;
}

/** The condition every write of a batch statement carries: this batch's ledger claim went in just now. */
const CLAIMED = "EXISTS (SELECT FROM ominipg_claim)";
const T = "ominipg_t";

/** The batch statement: $1..$3 claim the batch, $4.. are the groups' payloads. */
export function batchSql(groups: GroupWrite[]): { text: string; params: string[] } {
  const params: string[] = [];
  const param = (value: string) => `$${params.push(value) + 3}`;
  const ctes: string[] = [];
  const conflicts: string[] = [];
  const locked: string[] = [];
  const writes: { name: string; group: GroupWrite; source: string }[] = [];
  const short: string[] = [];
  const hidden: string[] = [];
  groups.forEach((g, n) => {
    const name = `ominipg_g${n}`;
    ctes.push(`${name} AS MATERIALIZED (${sourceSql(g, param(dataOf(g)), g.check.expected && param(expectedOf(g)))})`);
    ctes.push(`${name}_l AS MATERIALIZED (${remoteRowsSql(g, name, true)})`);
    locked.push(`(SELECT count(*) FROM ${name}_l)`);
    // Under row-level security FOR UPDATE passes over a row the role may see but not update. A delete (which its
    // DELETE policy may allow) is checked against such a row as seen; other writes of it are refused, not
    // taken for rows deleted remotely (conflictSql).
    if (g.kind === "delete") ctes.push(`${name}_s AS MATERIALIZED (${remoteRowsSql(g, name, false)})`);
    if (g.kind === "move") {
      ctes.push(`${name}_t AS MATERIALIZED (${takenSql(g, name)})`);
      locked.push(`(SELECT count(*) FROM ${name}_t)`);
    }
    conflicts.push(conflictSql(g, name, n));
    writes.push({ name: `ominipg_w${n}`, group: g, source: name });
    if (g.kind === "upsert") {
      // Every row is inserted, or updates a row the check locked (none if nothing is set): fewer means a row
      // that had no key when the check ran was inserted by another session since, or one the role may not update.
      const expected = g.set.some((c) => g.table.updatable.includes(c))
        ? `(SELECT count(*) FROM ${name})`
        : `(SELECT count(*) FROM ${name}) - (SELECT count(*) FROM ${name}_l)`;
      short.push(`(SELECT count(*) FROM ominipg_w${n}) < ${expected}`);
    }
    // Every key change whose old key has a row moves it (none left there: the same move, made already): fewer
    // means one the role may see but not update.
    if (g.kind === "move")
      short.push(`(SELECT count(*) FROM ominipg_w${n}) < (SELECT count(*) FROM ${name} AS s WHERE ${rowAtKey(g)})`);
    if (g.kind === "delete") {
      // Rows this role saw that its DELETE left, where row security applies: a DELETE policy narrower than the
      // SELECT one deletes nothing without an error (or a trigger kept the row, or another session deleted it
      // first). Listed, for the next pull to read them again (the statement's snapshot shows the rows it deleted).
      // Also when the batch was applied already (its COMMIT reply lost): the rows still there are those left.
      const t = g.table;
      hidden.push(
        `SELECT ${n} AS g, s.i FROM ${name} AS s JOIN ${g.target} AS ${T} ON ${columnsEqual(t.primaryKey, T, "(s.k)")} ` +
          `WHERE ${rowSecurity(g)} AND NOT EXISTS (SELECT FROM ominipg_w${n} AS w WHERE w.i = s.i)`,
      );
    }
  });
  ctes.push(
    `ominipg_conflicts AS (SELECT * FROM (${conflicts.join(" UNION ALL ")}) AS ominipg_c ` +
      `WHERE NOT EXISTS (SELECT FROM public.${LEDGER_TABLE} WHERE client_id = $1::uuid AND batch_id = $2::int8 AND ${OWN_LEDGER_ROWS}))`,
    `ominipg_claim AS (${claimSql("$1", "$2", "$3", `${locked.join(" + ")} >= 0 AND NOT EXISTS (SELECT FROM ominipg_conflicts)`)})`,
    ...ordered(writes).map((w) => `${w.name} AS (${w.sql})`),
  );
  // A row written over unchecked must not commit: fail the statement (all of it rolls back) with a message
  // the syncer knows; the next attempt's check sees the row. (Not a constant: the planner would fold it.)
  const race = short.length
    ? `, CASE WHEN ${CLAIMED} AND (${short.join(" OR ")}) THEN (SELECT '${RACE}' || count(*) FROM ominipg_claim)::int END AS race`
    : "";
  const hide = hidden.length
    ? `, (SELECT json_agg(json_build_array(g, i)) FROM (${hidden.join(" UNION ALL ")}) AS h)::text AS hidden`
    : "";
  return {
    text: `WITH ${ctes.join(",\n")}\nSELECT ${CLAIMED} AS fresh, (SELECT json_agg(json_build_array(g, i, remote, taken)) FROM ominipg_conflicts)::text AS conflicts${race}${hide}`,
    params,
  };
}

/**
 * The writes in the order they run: deletes first (every other write waits for them, counting their rows), so
 * that a key or unique value a delete frees can be taken by an upsert or a key change of the same batch (a
 * settled key change onto a taken key: the old row deleted, the new key's row written over with its values).
 */
function ordered(writes: { name: string; group: GroupWrite; source: string }[]): { name: string; sql: string }[] {
  const deletes = writes.filter((w) => w.group.kind === "delete");
  const after = deletes.length
    ? ` AND (${deletes.map((d) => `(SELECT count(*) FROM ${d.name})`).join(" + ")}) >= 0`
    : "";
  return [
    ...deletes.map((w) => ({ name: w.name, sql: writeSql(w.group, w.source, CLAIMED) })),
    ...writes
      .filter((w) => w.group.kind !== "delete")
      .map((w) => ({ name: w.name, sql: writeSql(w.group, w.source, CLAIMED + after) })),
  ];
}

/** The marker of the error a batch statement raises when another session inserted one of its keys meanwhile. */
export const RACE = "ominipg: a row was inserted by another session during this push, retry ";

/** Whether a remote error is the batch statement's own RACE failure. */
export function isRace(err: unknown): boolean {
  return (err as { code?: unknown })?.code === "22P02" && String((err as Error)?.message ?? "").includes(RACE);
}

/** The deletes a batch statement saw and did not delete (its `hidden` column): [group, row] pairs. */
export function parseHidden(text: string | null | undefined): [number, number][] {
  return text ? (JSON.parse(text) as [number, number][]) : [];
}

/** The conflicts a batch statement returned (its `conflicts` column). */
export function parseConflicts(text: string | null): RemoteConflict[] {
  if (!text) return [];
  // Remote rows stay text: JSON.parse of the outer array only, whose third and fourth items are jsonb texts or null.
  return (JSON.parse(text) as [number, number, string | null, string | null][]).map(([group, row, remote, taken]) => ({
    group,
    row,
    remote,
    taken,
  }));
}

function dataOf(g: GroupWrite): string {
  const t = g.table;
  if (g.kind === "delete") return `[${g.rows.map((key) => joinImage(key)).join(",")}]`;
  if (g.kind === "upsert") return `[${g.rows.map((img) => encodeImage(t, img, g.columns)).join(",")}]`;
  return `[${g.rows.map((m) => `{"k":${joinImage(readableKey(t, m.key, m.base))},"r":${encodeImage(t, m.image, g.columns)}}`).join(",")}]`;
}

function expectedOf(g: GroupWrite): string {
  const columns = [...new Set([...g.table.primaryKey, ...g.check.columns, ...(g.table.refusingNull ?? [])])];
  return `[${g.check.expected!.map((e) => (e === null ? "null" : encodeImage(g.table, e, columns))).join(",")}]`;
}

/** Per row: its ordinal `i`, the key `k`, the row to write `r` (null for deletes) and the expected row `e`. */
function sourceSql(g: GroupWrite, data: string, expected: string | undefined): string {
  const row = (json: string) => `json_populate_record(NULL::${g.table.sql}, ${json})`;
  const elements = expected
    ? `ROWS FROM (json_array_elements(${data}::text::json), json_array_elements(${expected}::text::json)) WITH ORDINALITY AS a(v, ev, i)`
    : `json_array_elements(${data}::text::json) WITH ORDINALITY AS a(v, i)`;
  // An upsert's key and row are one record, populated once (json_populate_record parses its text each time).
  const [k, r, from] =
    g.kind === "move"
      ? [row("a.v->'k'"), row("a.v->'r'"), elements]
      : g.kind === "delete"
        ? [row("a.v"), `NULL::${g.table.sql}`, elements]
        : ["ominipg_p", "ominipg_p", `${elements} CROSS JOIN LATERAL ${row("a.v")} AS ominipg_p`];
  const e = expected
    ? `CASE WHEN json_typeof(a.ev) = 'object' THEN ${row("a.ev")} END AS e, coalesce(json_typeof(a.ev) = 'object', false) AS has_e`
    : `NULL::${g.table.sql} AS e, false AS has_e`;
  return `SELECT a.i, ${k} AS k, ${r} AS r, ${e} FROM ${from}`;
}

/** SQL: whether the remote row `ominipg_t` equals the source row `s.<alias>` in `columns` (the compared ones). */
function equalSql(g: GroupWrite, alias: string, columns = g.check.columns): string {
  return (
    columns
      .map((c) => {
        const [value, expected] = [`${T}.${quoteIdent(c)}`, field(g.table, `s.${alias}`, c)];
        const column = g.table.columns.find((col) => col.name === c);
        // json by its text: it is kept byte for byte, and jsonb refuses some valid json (\u0000, a lone surrogate).
        if (column?.type === "json")
          return `(${jsonText(value, "json")}) IS NOT DISTINCT FROM (${jsonText(expected, "json")})`;
        const [remote, other] = [`to_jsonb(${value})`, `to_jsonb(${expected})`];
        // jsonb, and domains over json or jsonb: JSON null as SQL NULL, as the row image has it.
        return column?.jsonValue === "json"
          ? `${jsonNullAsNull(remote)} IS NOT DISTINCT FROM ${jsonNullAsNull(other)}`
          : `${remote} IS NOT DISTINCT FROM ${other}`;
      })
      .join(" AND ") || "true"
  );
}

/**
 * The remote rows of the group's keys, with whether they equal the expected and the new row: locked in key order,
 * or (`lock` false) those the statement's snapshot shows but that were not locked (`_l`): rows row-level security
 * lets the role see but not update, or rows another session deleted or re-keyed since the snapshot.
 */
function remoteRowsSql(g: GroupWrite, name: string, lock: boolean): string {
  // Deleting or re-keying a row conflicts with another session's insert of a row referencing it: FOR UPDATE.
  const strength = g.kind === "upsert" ? "NO KEY UPDATE" : "UPDATE";
  const rows =
    `SELECT s.i, ${T} AS remote, ${equalSql(g, "e")} AS eq_e, ${equalSql(g, "r")} AS eq_r ` +
    `FROM ${name} AS s JOIN ${g.target} AS ${T} ON ${columnsEqual(g.table.primaryKey, T, "(s.k)")} `;
  return lock
    ? `${rows}ORDER BY ${columnList(g.table.primaryKey, T)} FOR ${strength} OF ${T}`
    : `${rows}WHERE ${rowSecurity(g)} AND NOT EXISTS (SELECT FROM ${name}_l AS l WHERE l.i = s.i)`;
}

/** Whether row-level security applies to this role on the group's table. */
function rowSecurity(g: GroupWrite): string {
  return `row_security_active(${quoteLiteral(g.table.sql)}::regclass)`;
}

/** Whether the statement's snapshot shows a remote row at the source row's key (`s.k`), locked or not. */
function rowAtKey(g: GroupWrite): string {
  return `EXISTS (SELECT FROM ${g.target} AS ${T} WHERE ${columnsEqual(g.table.primaryKey, T, "(s.k)")})`;
}

/** A row image cannot tell JSON null from SQL NULL in a json or jsonb column: the check takes them as equal. */
function jsonNullAsNull(value: string): string {
  return `(CASE WHEN jsonb_typeof(${value}) = 'null' THEN NULL ELSE ${value} END)`;
}

/**
 * A key change's rows the remote holds at the new keys, locked in key order, with whether they equal the moved
 * row (`eq_r`) in every column it writes: only then is it the moved row (the same key change, made already), not
 * another row at that key.
 */
function takenSql(g: GroupWrite, name: string): string {
  return (
    `SELECT s.i, ${T} AS remote, ${equalSql(g, "r", g.table.writable)} AS eq_r FROM ${name} AS s JOIN ${g.target} AS ${T} ON ${columnsEqual(g.table.primaryKey, T, "(s.r)")} ` +
    // Not the row itself: a new key equal to the old one in another form (-0 for 0) finds the row being moved.
    `AND NOT (${columnsEqual(g.table.primaryKey, T, "(s.k)")}) ` +
    `ORDER BY ${columnList(g.table.primaryKey, T)} FOR UPDATE OF ${T}`
  );
}

/**
 * The group's rows whose remote row is neither the expected one nor the one about to be written. For a key
 * change, the row about to be written is the moved row at the new key with no row left at the old key (the same
 * key change, made by another client); else a row at the new key is another row, a conflict too.
 */
function conflictSql(g: GroupWrite, name: string, n: number): string {
  // A row the role may see but not update is not gone: its write is left out (writeSql), fails the statement's
  // count (RACE), and is refused once that persists (collision.ts), as a write over another tenant's row is.
  const unlocked = `(${rowSecurity(g)} AND ${rowAtKey(g)})`;
  const [acceptAbsent, acceptPresent, taken, join] =
    g.kind === "move"
      ? [
          `tk.eq_r OR ${unlocked}`,
          "l.eq_e AND tk.i IS NULL",
          remoteText(g, "tk"),
          ` LEFT JOIN ${name}_t AS tk ON tk.i = s.i`,
        ]
      : [
          g.kind === "delete" ? "true" : `NOT s.has_e OR ${unlocked}`,
          `(s.has_e AND l.eq_e)${g.kind === "delete" ? "" : " OR l.eq_r"}`,
          "NULL::text",
          "",
        ];
  const seen = g.kind === "delete" ? `(SELECT * FROM ${name}_l UNION ALL SELECT * FROM ${name}_s)` : `${name}_l`;
  return (
    `SELECT ${n} AS g, s.i, ${remoteText(g, "l")} AS remote, ${taken} AS taken ` +
    `FROM ${name} AS s LEFT JOIN ${seen} AS l ON l.i = s.i${join} ` +
    `WHERE (CASE WHEN l.i IS NULL THEN ${acceptAbsent} ELSE ${acceptPresent} END) IS NOT TRUE`
  );
}

/** A locked remote row of a LEFT JOIN (`alias`.remote) as carried `rowJsonb` text; null when there is none. */
function remoteText(g: GroupWrite, alias: string): string {
  // Carried, as the pull reads rows: a settle may write the remote's values into the local row, which must get
  // them exactly (an array's bounds, a float's -0). Not NULL by itself for a missing row where the table has json
  // columns: an object of nulls.
  return `CASE WHEN ${alias}.i IS NOT NULL THEN ${rowJsonb(g.table, `${alias}.remote`, true)}::text END`;
}

/** The group's write, made only where `gate` holds (its batch's claim, and the deletes before it). */
function writeSql(g: GroupWrite, name: string, gate: string): string {
  const t = g.table;
  if (g.kind === "delete") {
    return `DELETE FROM ${g.target} AS ${T} USING ${name} AS s WHERE ${columnsEqual(t.primaryKey, T, "(s.k)")} AND ${gate} RETURNING s.i`;
  }
  if (g.kind === "upsert" && g.existing) {
    const set = g.set.filter((c) => t.updatable.includes(c));
    if (set.length === 0) return "SELECT 1 WHERE false";
    return (
      `UPDATE ${g.target} AS ${T} SET ${assignments(t, set, "s.r")} ` +
      `FROM ${name} AS s WHERE ${columnsEqual(t.primaryKey, T, "(s.k)")} AND ${gate} RETURNING 1`
    );
  }
  if (g.kind === "upsert") {
    const values = g.columns.map((c) => field(t, "s.r", c)).join(", ");
    const set = g.set.filter((c) => t.updatable.includes(c));
    // Only a row the check locked may be updated: one another session inserted since is left alone (and
    // counted missing, see batchSql). Nor is a row expected but not locked written: the row the check saw was
    // deleted or re-keyed since (the retry's check finds the conflict), or the role may not update it.
    const locked = `EXISTS (SELECT FROM ${name}_l AS l WHERE ${columnsEqual(t.primaryKey, "(l.remote)", "EXCLUDED")})`;
    const expectedNotLocked = `s.has_e AND NOT EXISTS (SELECT FROM ${name}_l AS l WHERE l.i = s.i)`;
    return (
      `INSERT INTO ${t.sql} (${columnList(g.columns)})${overridingClause(t, g.columns)} SELECT ${values} FROM ${name} AS s ` +
      `WHERE ${gate} AND NOT (${expectedNotLocked}) ` +
      `${g.plain ? "" : onConflict(t.primaryKey, set, locked)} RETURNING 1`
    );
  }
  // A key change updates the row found by the original key (its check made sure the remote has it).
  return (
    `UPDATE ${g.target} AS ${T} SET ${assignments(t, g.set, "s.r")} ` +
    `FROM ${name} AS s WHERE ${columnsEqual(t.primaryKey, T, "(s.k)")} AND ${gate} RETURNING 1`
  );
}

/**
 * A batch of truncations: TRUNCATE cannot be a WITH query, so the claim and the truncation are one DO block
 * (one statement again). Only literals go in: the client id (a uuid), numbers, and quoted table names. ONLY: a
 * synced table has no local children (capture/inheritance.ts), so the remote's own must keep their rows; a
 * partitioned table's partitions are its rows, and PostgreSQL refuses TRUNCATE ONLY of it. Which of the two the
 * remote table is decides, read there when the batch runs: either side may be partitioned alone.
 */
export function truncateBatchSql(tables: TableInfo[], clientId: string, batchId: number, ranges: number[]): string {
  const body =
    `BEGIN ${claimSql(quoteLiteral(clientId), String(batchId), quoteLiteral(`{${ranges.join(",")}}`), "true", false)}; ` +
    `IF FOUND THEN EXECUTE (SELECT 'TRUNCATE ' || string_agg(CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY ' END || ` +
    `u.r::text, ', ' ORDER BY u.o) FROM unnest(ARRAY[${tables.map((t) => quoteLiteral(t.sql)).join(", ")}]::regclass[]) ` +
    `WITH ORDINALITY AS u(r, o) JOIN pg_class AS c ON c.oid = u.r); END IF; END`;
  let tag = "$ominipg$";
  for (let i = 0; body.includes(tag); i++) tag = `$ominipg${i}$`;
  return `DO ${tag} ${body} ${tag}`;
}
