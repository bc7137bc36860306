import { Abandoned } from "./context.js";

/**
 * Feed a postgres.js cursor's chunks to `fn`, fetching the next chunk while `fn` works on the current one:
 * memory holds two chunks, whatever the table's size. On failure the chunk in flight is awaited and the
 * portal closed, so the connection can roll back (unless the transaction is over: the connection may serve
 * another one by now).
 */
export async function streamChunks<T>(cursor: AsyncIterable<T[]>, fn: (rows: T[]) => Promise<void>): Promise<void> {
  const it = cursor[Symbol.asyncIterator]();
  let next = it.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = it.next();
      await fn(r.value);
    }
  } catch (err) {
    try {
      const r = await next;
      if (!r.done && !(err instanceof Abandoned)) await it.return?.();
    } catch {
      // the cursor itself failed: the transaction is aborted anyway
    }
    throw err;
  }
}
