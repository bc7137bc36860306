// The pool of WebAssembly memories (src/local/memory-pool.ts), on stand-ins for PGlite instances: what it keeps,
// for how long, and that what it hands out is zeroed and large enough.
import type { PGlite } from "@electric-sql/pglite";
import { afterEach, describe, expect, it, vi } from "vitest";
import { drop, handBack, remember, reusedMemory } from "../../src/local/memory-pool.js";

type Memory = { buffer: ArrayBuffer; grow(pages: number): number };
const Wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => Memory } }).WebAssembly;

function instance(pages: number, closed = true): { db: PGlite; memory: Memory } {
  const memory = new Wasm.Memory({ initial: pages });
  return { db: { Module: { wasmMemory: memory }, closed } as unknown as PGlite, memory };
}

/** A database Ominipg opened, then closed. */
function openedAndClosed(db: PGlite): void {
  remember(db);
  handBack(db);
}

/** What the extension gives an instance whose own new memory has `pages` pages. */
async function given(pages: number): Promise<unknown> {
  const fresh = new Wasm.Memory({ initial: pages });
  const result = await reusedMemory.setup({} as never, { wasmMemory: fresh });
  return (result.emscriptenOpts as { wasmMemory?: Memory } | undefined)?.wasmMemory ?? fresh;
}

afterEach(() => {
  drop();
  vi.useRealTimers();
});

describe("memory pool", () => {
  it("hands a closed instance's memory to the next one, zeroed, once", async () => {
    const { db, memory } = instance(2);
    new Uint8Array(memory.buffer).fill(0xff);
    openedAndClosed(db);
    expect(await given(2)).toBe(memory);
    expect(new Uint8Array(memory.buffer).every((b) => b === 0)).toBe(true);
    expect(await given(2)).not.toBe(memory);
  });

  it("keeps nothing of an instance still open, or not remembered, or grown past 256 MB", async () => {
    const open = instance(2, false);
    remember(open.db);
    handBack(open.db);
    expect(await given(2)).not.toBe(open.memory);

    const stranger = instance(2);
    handBack(stranger.db);
    expect(await given(2)).not.toBe(stranger.memory);

    const big = instance(1);
    big.memory.grow(4096); // 4,097 pages of 64 kB
    openedAndClosed(big.db);
    expect(await given(1)).not.toBe(big.memory);
  });

  it("does not give a memory smaller than the instance's own new one", async () => {
    const { db, memory } = instance(2);
    openedAndClosed(db);
    expect(await given(3)).not.toBe(memory);
  });

  it("replaces the one-page placeholder Ominipg asks PGlite for: by a kept memory of PGlite's size, else a new one", async () => {
    const pgliteSize = 2048 * 65536; // PGlite's own start: 128 MB
    const first = await given(1);
    expect((first as Memory).buffer.byteLength).toBe(pgliteSize);
    const small = instance(2);
    openedAndClosed(small.db);
    const second = await given(1);
    expect(second).not.toBe(small.memory); // smaller than PGlite's size: left kept
    expect((second as Memory).buffer.byteLength).toBe(pgliteSize);
    const large = instance(2048);
    openedAndClosed(large.db);
    expect(await given(1)).toBe(large.memory);
    expect(await given(2)).toBe(small.memory); // an instance's own new memory (not a placeholder) as before
  });

  it("keeps the last four, the last closed given first, each for 10 seconds", async () => {
    vi.useFakeTimers();
    const closed = [1, 2, 3, 4, 5].map(() => instance(2));
    for (const { db } of closed) openedAndClosed(db);
    for (const { memory } of closed.slice(1).reverse()) expect(await given(2)).toBe(memory);
    expect(await given(2)).not.toBe(closed[0]!.memory);

    const [a, b] = [instance(2), instance(2)];
    openedAndClosed(a.db);
    vi.advanceTimersByTime(9_999);
    openedAndClosed(b.db);
    vi.advanceTimersByTime(1);
    expect(await given(2)).toBe(b.memory);
    expect(await given(2)).not.toBe(a.memory);
  });

  it("zeroes only what lies below the closed instance's program break, when it can be read", async () => {
    const run = async (brk: number): Promise<Uint8Array> => {
      const memory = new Wasm.Memory({ initial: 2 });
      const instance = { exports: { emscripten_get_sbrk_ptr: () => 64 } };
      const result = await reusedMemory.setup({} as never, {
        wasmMemory: memory,
        instantiateWasm: (_imports: unknown, done: (i: unknown, m: unknown) => void) => done(instance, {}),
      });
      const options = result.emscriptenOpts as { instantiateWasm(imports: unknown, done: () => void): void };
      options.instantiateWasm({}, () => {});
      const bytes = new Uint8Array(memory.buffer).fill(0xff);
      new Uint32Array(memory.buffer, 64, 1)[0] = brk;
      const db = { Module: { wasmMemory: memory }, closed: true } as unknown as PGlite;
      openedAndClosed(db);
      expect(await given(2)).toBe(memory);
      return bytes;
    };
    const bounded = await run(8192);
    expect(bounded.subarray(0, 8192).every((b) => b === 0)).toBe(true);
    expect(bounded.subarray(8192).every((b) => b === 0xff)).toBe(true);
    for (const unreadable of [0, 32, 1 << 30]) expect((await run(unreadable)).every((b) => b === 0)).toBe(true);
  });
});
