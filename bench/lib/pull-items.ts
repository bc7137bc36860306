/** Section 7's table, its clients and the checks every pull measurement makes. */
import type postgres from "postgres";
import { Ominipg, type PullResult } from "../../src/index.js";

export const PULL_TABLE = "public.pull_items";
export const PULL_DDL = `CREATE TABLE IF NOT EXISTS pull_items (id bigint PRIMARY KEY, name text NOT NULL, qty int NOT NULL, meta jsonb)`;
export const PULL_COLUMNS = "id, name, qty, meta";

/** The remote table's rows: ids 1..n, a ~100-byte jsonb each, the same for every measurement of the section. */
export function fillSql(rows: number): string {
  return `INSERT INTO pull_items SELECT g, 'item number ' || g, g % 1000, jsonb_build_object('g', g, 'tag', 't' || (g % 97),
     'note', repeat('x', 40), 'arr', jsonb_build_array(g % 7, 'y', null), 'ok', g % 2 = 0) FROM generate_series(1, ${rows}) g`;
}

/** A client of the table: a new in-memory database (or one loaded from `loadDataDir`), sync.feed `feed`. */
export async function connect(url: string, loadDataDir: Blob, feed: "auto" | "off"): Promise<Ominipg> {
  const db = await Ominipg.connect({ loadDataDir, syncUrl: url, schemaSQL: [PULL_DDL], sync: { feed } });
  db.on("error", () => {});
  return db;
}

/**
 * One remote write transaction with `synchronous_commit = on` (PostgreSQL's default; the bench's server runs with
 * it off for the push section): its commit is flushed when it returns. The change feed decodes flushed WAL only,
 * so with it off a commit reaches the feed up to ~3 wal_writer_delay (600 ms) later.
 */
export async function remoteWrite(
  sql: postgres.Sql,
  statement: string,
  params: postgres.ParameterOrJSON<never>[] = [],
) {
  await sql.begin(async (tx) => {
    await tx.unsafe(`SET LOCAL synchronous_commit = on`);
    await tx.unsafe(statement, params);
  });
}

export const pullTable = (r: PullResult) => r.tables[PULL_TABLE];

/** The pull's strategy for the table must be `strategy`: a measurement of anything else is not the one reported. */
export function expectStrategy(r: PullResult, strategy: "copy" | "feed" | "diff", what: string): void {
  const t = pullTable(r);
  if (t?.strategy !== strategy)
    throw new Error(
      `${what}: expected strategy "${strategy}", got ${JSON.stringify(t)}; feed: ${JSON.stringify(r.feed ?? null)}`,
    );
}

/** A pull that found nothing to do. */
export function expectIdle(r: PullResult, strategy: "feed" | "diff", what: string): void {
  expectStrategy(r, strategy, what);
  const t = pullTable(r)!;
  if (t.upserted !== 0 || t.deleted !== 0) throw new Error(`${what} wrote rows: ${JSON.stringify(t)}`);
}

const DIGEST = `SELECT count(*)::int AS n, md5(string_agg(id || ':' || name || ':' || qty || ':' || meta::text, ',' ORDER BY id)) AS h FROM pull_items`;

/** The local table must end up exactly as the remote one (the bench checks the result, not only the speed). */
export async function expectSameRows(db: Ominipg, remote: postgres.Sql): Promise<void> {
  const [theirs] = await remote.unsafe<{ n: number; h: string }[]>(DIGEST);
  const local = (await db.query<{ n: number; h: string }>(DIGEST)).rows[0]!;
  if (local.n !== theirs!.n || local.h !== theirs!.h)
    throw new Error(
      `after pull() the local table differs: ${local.n} rows (${local.h}) vs ${theirs!.n} (${theirs!.h})`,
    );
}
