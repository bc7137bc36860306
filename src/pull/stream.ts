import { Readable } from "node:stream";
import type { PendingQuery, Row } from "postgres";
import { Abandoned } from "./context.js";

/**
 * The stream of a `COPY ... TO STDOUT` query, with an 'error' listener from the moment postgres.js makes it. A COPY
 * the server fails once it began (a row it cannot produce) destroys the stream in the same turn, and the error is
 * emitted on the next tick, ahead of any promise callback that could add a listener: Node would throw it, and the
 * app's process exit. The reader still gets the error (the stream is destroyed with it). postgres.js hands the
 * stream to the query's `resolve`, which is wrapped here.
 */
export function copyOutStream(query: PendingQuery<Row[]>): Promise<Readable> {
  const q = query as unknown as { resolve: (value: unknown) => void };
  const resolve = q.resolve;
  q.resolve = (value) => {
    if (value instanceof Readable) value.on("error", () => {});
    resolve(value);
  };
  return query.readable();
}

/**
 * Let postgres.js put the queries just made on the wire. It holds a short message back until the event loop's
 * next turn (a setImmediate), and PGlite runs its statements on this thread without giving it one: a remote read
 * meant to run while the local database works would only be sent once that work is done. Two turns: the first
 * lets the driver's own setImmediate, queued by a microtask of the caller, run before this resolves.
 */
export function sendQueued(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

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
      await sendQueued();
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

/**
 * After a COPY's stream ended: postgres.js pauses its socket when a push finds the stream's buffer full, and only
 * the stream's next read resumes it; when the end was pushed too (in the same piece), there is no next read and
 * the connection would stay paused for good: resume it here.
 */
export function resumeAfterEnd(stream: Readable): void {
  try {
    (stream as unknown as { _read(n: number): void })._read(0);
  } catch {
    // the connection is gone: the next query says so
  }
}

/**
 * Feed the text of a `COPY ... TO STDOUT` stream to `fn` in pieces cut at the last row's end once `bytes` arrived
 * (a raw newline byte only ends a row in COPY text): the stream is read on only while `fn` is not
 * working, so memory holds about one piece, whatever the size. On failure the rest of the COPY is read and
 * dropped (it cannot be cancelled otherwise), so the connection can roll back, unless the transaction is over.
 */
export async function copyPieces(stream: Readable, bytes: number, fn: (data: Buffer) => Promise<void>): Promise<void> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let parts: Buffer[] = [];
  let size = 0;
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      parts.push(r.value);
      size += r.value.length;
      if (size < bytes) continue;
      const all = Buffer.concat(parts);
      const cut = all.lastIndexOf(0x0a) + 1;
      parts = cut < all.length ? [all.subarray(cut)] : [];
      size = all.length - cut;
      if (cut > 0) await fn(all.subarray(0, cut));
    }
    resumeAfterEnd(stream);
    if (size > 0) await fn(Buffer.concat(parts));
  } catch (err) {
    if (!(err instanceof Abandoned)) await dropRest(stream, it);
    throw err;
  }
}

/**
 * Read the rest of a COPY's stream and drop it: a COPY cannot be cancelled otherwise, and the connection serves
 * nothing else (not even the transaction's ROLLBACK) until it is read. Never fails: a COPY that failed has
 * aborted the transaction anyway.
 */
export async function dropRest(
  stream: Readable,
  it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>,
): Promise<void> {
  if (stream.destroyed || stream.readableEnded) return;
  try {
    for (let r = await it.next(); !r.done; r = await it.next());
    resumeAfterEnd(stream);
  } catch {
    // the COPY itself failed
  }
}
