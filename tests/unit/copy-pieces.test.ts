// copyPieces (src/pull/stream.ts): COPY text arriving in arbitrary parts is handed on in pieces of about the
// asked size, each ending at a row's end, every byte exactly once and in order; a failure of the consumer reads
// the rest of the stream (so the connection can roll back) and is thrown.
import fc from "fast-check";
import { describe, it } from "vitest";
import { deepStrictEqual, ok, rejects } from "node:assert/strict";
import { Readable } from "node:stream";
import { copyPieces } from "../../src/pull/stream.js";

describe("copyPieces", () => {
  it("hands on whole rows, every byte once, cut once the asked size arrived", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.string({ maxLength: 30 }).map((s) => s.replace(/\n/g, "\\n")),
          { maxLength: 60 },
        ),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 200 }),
        async (rows, cuts, bytes) => {
          const text = Buffer.from(rows.map((r) => `${r}\n`).join(""));
          const parts: Buffer[] = [];
          for (let at = 0, i = 0; at < text.length; i++) {
            const n = cuts[i % cuts.length]!;
            parts.push(text.subarray(at, at + n));
            at += n;
          }
          const pieces: Buffer[] = [];
          await copyPieces(Readable.from(parts, { objectMode: false }), bytes, async (data) => {
            pieces.push(Buffer.from(data));
          });
          deepStrictEqual(Buffer.concat(pieces).toString(), text.toString());
          for (const p of pieces) ok(p.length > 0 && p[p.length - 1] === 0x0a, "a piece ends at a row's end");
          // A piece is cut once `bytes` arrived; what follows its last row's end starts the next piece.
          for (let i = 0; i + 1 < pieces.length; i++) ok(pieces[i]!.length + pieces[i + 1]!.length >= bytes);
        },
      ),
    );
  });

  it("reads the rest of the stream when the consumer fails, and throws its error", async () => {
    const stream = Readable.from(
      Array.from({ length: 20 }, (_, i) => Buffer.from(`row ${i}\n`)),
      { objectMode: false },
    );
    await rejects(
      copyPieces(stream, 1, () => Promise.reject(new Error("local failure"))),
      /local failure/,
    );
    ok(stream.readableEnded, "the stream was read to its end");
  });
});
