/**
 * The copy strategy, for a table that holds no rows other than ones with pending local changes (e.g. at the
 * first pull): every remote row is streamed with a postgres.js cursor in chunks, and each chunk is upserted
 * locally by one statement with one jsonb parameter (`jsonb_populate_recordset`).
 */
import { applyRows, type TableRun } from "./apply.js";
import type { PullContext } from "./context.js";
import { fetchSql, remoteCountSql } from "./sql.js";
import { streamChunks } from "./stream.js";

export async function copyTable(ctx: PullContext, run: TableRun): Promise<void> {
  const { t, table } = run;
  const [count] = await ctx.tx.unsafe<{ n: number; bytes: number }[]>(remoteCountSql(t));
  const total = Number(count!.n);
  let done = 0;
  ctx.progress({ table, done, total });
  const cursor = ctx.tx.unsafe<{ j: string }[]>(fetchSql(t)).cursor(ctx.chunkSize(total, Number(count!.bytes)));
  await streamChunks(cursor, async (rows) => {
    await applyRows(
      ctx,
      run,
      rows.map((r) => r.j),
      "copy",
    );
    done += rows.length;
    ctx.progress({ table, done, total: Math.max(total, done) });
  });
}
