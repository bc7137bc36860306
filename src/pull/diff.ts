/**
 * The diff strategy, for a table that holds rows without pending changes (every pull after the first): rows
 * are hashed into B buckets by primary key on both sides (bucket = md5(key as jsonb text) mod B,
 * B ~ rows / rowsPerBucket, a power of two <= 65,536); per bucket the row count and the sum of 60-bit md5
 * prefixes of the rows' jsonb text are compared. Only the rows of buckets that differ are fetched (one more
 * remote scan, streamed) into a local temp table (the stage); local rows of those buckets that the remote no
 * longer has are deleted, then the fetched rows are upserted (only rows that differ are written). Rows that
 * exist only locally and were never captured (written before sync was configured) are deleted like any row
 * the remote lacks.
 *
 * Both sides hash under the same session settings (CANONICAL_SETTINGS), so equal rows have equal text and
 * equal hashes. Where the text still differs for equal values (a type whose output differs between server
 * versions, a non-UTF8 remote database), the only cost is that the bucket is fetched at every pull: rows are
 * compared locally, as typed values rendered by the local database, before anything is written, and
 * conflicts are decided the same way.
 *
 * Cost: every diff scans every synced table fully on the server (and locally) to hash it, even when nothing
 * changed: O(table size) CPU per pull rather than O(changes); the hash list is ~B rows per table. md5() must
 * be available on the server (it is not in FIPS mode).
 */
import { inReplicaTransaction } from "../local/transaction.js";
import { halves, isolateRefused } from "../core/bisect.js";
import { applyRows, payload, refusal, rejectRow, write, type TableRun } from "./apply.js";
import type { PullContext } from "./context.js";
import {
  analyzeSql,
  countSql,
  deleteMissingSql,
  fetchSql,
  holdKeySql,
  remoteEstimateSql,
  stageBlocksSql,
  stageInsertSql,
  stagePageSql,
  summarySql,
  type BucketScope,
} from "./sql.js";
import { streamChunks } from "./stream.js";

const MAX_BUCKETS = 1 << 16;

/** A bucket's row count and hash sum, as summarySql() returns them. */
interface BucketSum {
  b: number;
  n: number;
  s: string;
}

/** Returns the buckets it fetched; undefined if none differ (the table is already equal to the remote). */
export async function diffTable(ctx: PullContext, run: TableRun): Promise<BucketScope | undefined> {
  const { t, table } = run;
  // The two sides work at the same time: remote and local each scan and hash the whole table.
  const [estimate, localCount] = await both(
    ctx.tx
      .unsafe<{ n: number; bytes: number }[]>(remoteEstimateSql(t))
      .then(([r]) => ({ n: Number(r?.n ?? 0), bytes: Number(r?.bytes ?? 0) })),
    ctx.local(async (d) => Number((await d.query<{ n: number }>(countSql(t), [], { prepare: false })).rows[0]!.n)),
  );
  const buckets = bucketCount(Math.max(estimate.n, localCount), ctx.sizes.rowsPerBucket);
  const [remoteSums, localSums] = await both(
    ctx.tx.unsafe<BucketSum[]>(summarySql(t, buckets, ctx.from(t))).then((rows) => [...rows]),
    ctx.local((d) =>
      inReplicaTransaction(
        d,
        async () => (await d.query<BucketSum>(summarySql(t, buckets), [], { prepare: false })).rows,
      ),
    ),
  );
  const differing = differingBuckets(buckets, remoteSums, localSums);
  if (!differing) {
    ctx.progress({ table, done: 0, total: 0 });
    return undefined;
  }
  const scope = { buckets, hex: differing.hex };

  // Stage the remote rows of the differing buckets, then delete what the remote lost, then apply the rows:
  // deletes first, so a value a deleted row held under a UNIQUE constraint is free for the row that took it.
  let done = 0;
  ctx.progress({ table, done, total: differing.rows });
  const chunk = ctx.chunkSize(estimate.n, estimate.bytes);
  const fetch = fetchSql(t, ctx.from(t), buckets);
  await streamChunks(ctx.tx.unsafe<{ j: string }[]>(fetch, [scope.hex]).cursor(chunk), async (rows) => {
    await stageImages(
      ctx,
      run,
      rows.map((r) => r.j),
    );
    done += rows.length;
    ctx.progress({ table, done, total: Math.max(differing.rows, done) });
  });
  await ctx.local((d) => d.exec(analyzeSql(t, "stage")));
  const deleted = await write(ctx, run, async (d) => {
    const { rows } = await d.query<{ deleted: number }>(deleteMissingSql(t, buckets), [scope.hex], { prepare: false });
    return rows[0]!.deleted;
  });
  run.tally.deleted += Number(deleted ?? 0);
  await applyStaged(ctx, run, chunk, done);
  return scope;
}

/**
 * Stage remote rows; one the local table refuses even there (a value its column type does not take: a longer
 * varchar, an enum label it lacks) is found by halving (core/bisect.ts), reported and its key held.
 */
async function stageImages(ctx: PullContext, run: TableRun, images: string[]): Promise<void> {
  const { t } = run;
  await isolateRefused(
    images,
    async (part) => {
      await ctx.local((d) =>
        inReplicaTransaction(d, () => d.query(stageInsertSql(t), [payload(part)], { prepare: false })),
      );
    },
    (part, err) => (refusal(err) ? halves(part) : undefined),
    async ([image], err) => {
      const error = refusal(err);
      if (!error) throw err;
      rejectRow(ctx, run, image!, error);
      await ctx
        .local((d) => d.query(holdKeySql(t), [image], { prepare: false }))
        .catch((e: unknown) => {
          if (!refusal(e)) throw e; // a key the local table cannot hold: no local row has it
        });
    },
  );
}

/** Apply the staged rows (a diff's, a feed pull's), about `chunk` rows at a time: the stage is read back in ranges of its blocks. */
export async function applyStaged(ctx: PullContext, run: TableRun, chunk: number, staged: number): Promise<void> {
  const { t } = run;
  const blocks = await ctx.local(async (d) => {
    const { rows } = await d.query<{ blocks: number }>(stageBlocksSql(t), [], { prepare: false });
    return Number(rows[0]!.blocks);
  });
  const step = Math.max(1, Math.floor((chunk * blocks) / Math.max(staged, 1)));
  for (let b = 0; b < blocks && !run.truncated; b += step) {
    const images = await ctx.local((d) =>
      inReplicaTransaction(d, async () => {
        const { rows } = await d.query<{ j: string }>(stagePageSql(t), [b, b + step], { prepare: false });
        return rows.map((r) => r.j);
      }),
    );
    if (images.length > 0) await applyRows(ctx, run, images, "diff");
  }
}

/**
 * The buckets whose row count or hash sum differ between the sides, as a bitmap (bytea hex text, bit n =
 * bucket n), and the remote rows they hold; undefined if none differ.
 */
function differingBuckets(
  buckets: number,
  remote: BucketSum[],
  local: BucketSum[],
): { hex: string; rows: number } | undefined {
  const localByBucket = new Map(local.map((r) => [Number(r.b), `${r.n}:${r.s}`]));
  const bits = new Uint8Array(Math.ceil(buckets / 8));
  let differing = 0;
  let rows = 0;
  const mark = (b: number) => {
    if (bits[b >> 3]! & (1 << (b & 7))) return;
    bits[b >> 3]! |= 1 << (b & 7);
    differing++;
  };
  for (const r of remote) {
    const b = Number(r.b);
    if (localByBucket.get(b) !== `${r.n}:${r.s}`) {
      mark(b);
      rows += Number(r.n);
    }
    localByBucket.delete(b);
  }
  for (const b of localByBucket.keys()) mark(b);
  return differing === 0 ? undefined : { hex: `\\x${Buffer.from(bits).toString("hex")}`, rows };
}

function bucketCount(rows: number, perBucket: number): number {
  let b = 1;
  while (b < MAX_BUCKETS && b * perBucket < rows) b *= 2;
  return b;
}

/** Promise.all for two, but waits for both to settle before failing (nothing is left running behind). */
async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === "rejected") throw ra.reason;
  if (rb.status === "rejected") throw rb.reason;
  return [ra.value, rb.value];
}
