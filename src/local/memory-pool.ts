import type { Extension, PGlite } from "@electric-sql/pglite";

/**
 * The WebAssembly memories of the last databases this process closed, given to the next ones it opens.
 *
 * A new PGlite instance starts in a new memory, and PostgreSQL's start touches tens of MB of it (it zeroes its
 * shared memory, fills its caches): each page touched for the first time is a page fault, ~10 µs on a virtual
 * machine. A memory that already served a closed database has its pages in place: zeroed again, it is what a new
 * memory is, without the faults. A warm in-memory open took 130-140 ms instead of 300, ~250 ms of CPU instead of
 * ~390 (2 cores); conflicts.test.ts, which opens two or three databases per test, ~15% less CPU.
 * Only what lies below the closed database's program break (Emscripten's `sbrk`, read at its close) is zeroed:
 * static data, stack and heap are all below it, and the pages above were never touched (zeroing them would
 * fault them in), and the break never moves down (Emscripten's malloc does not give memory back: measured, a
 * 200 MB sort's memory freed left it where it was). Where the break cannot be read, the whole memory is zeroed.
 *
 * PGlite makes each instance a new memory of its default size before this extension runs, so where PGlite finds a
 * database (no initdb: it runs that in an instance without extensions) Ominipg asks it for a one-page one
 * (`PLACEHOLDER_BYTES`) that is never used: a kept memory, or a new one of PGlite's size, replaces it. The 128 MB
 * memory it made only to be dropped counted as external memory and brought V8's full garbage collection at about
 * every open (34 in 30 connects, 23 without it; ~15% less CPU per connect).
 * Only memories of databases Ominipg opened (`remember`) come back, and only once `PGlite.close()` resolved: a
 * database that is still open, or whose close failed, never hands its memory on. Up to `MAX_KEPT` are kept, each
 * for `KEEP_MS`, none that grew past `MAX_BYTES`; while kept, one holds what its database used (~56 MB after a
 * small in-memory database with the default buffer pool).
 */
const KEEP_MS = 10_000;
const MAX_BYTES = 256 << 20;
const MAX_KEPT = 4;

/** The memory asked of PGlite (`initialMemory`): one WebAssembly page, replaced before the instance starts. */
export const PLACEHOLDER_BYTES = 64 << 10;
/** What PGlite gives a new instance without `initialMemory`: 128 MB, growing up to 2 GB (pages of 64 KB). */
const START_PAGES = 2048;
const MAX_PAGES = 32768;

/** A WebAssembly.Memory, as far as this uses it (Node's types do not declare WebAssembly). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => WasmMemory } }).WebAssembly;

/** Emscripten's hook that instantiates the module (PGlite sets it), and the instance it reports. */
type Instantiate = (imports: unknown, done: (instance: WasmInstance, module: unknown) => void) => unknown;
interface WasmInstance {
  exports: { emscripten_get_sbrk_ptr?: () => number };
}

interface ModuleOptions {
  wasmMemory?: WasmMemory;
  instantiateWasm?: Instantiate;
}

/** A kept memory, how many of its first bytes may not be zero, and the timer that lets it go. */
interface Kept {
  memory: WasmMemory;
  used: number;
  timer: NodeJS.Timeout;
}

/** The kept memories, the last closed last. */
const kept: Kept[] = [];
/** Where the program break of the instance running in a memory is kept (the address of Emscripten's variable). */
const breakAt = new WeakMap<WasmMemory, number>();
const ours = new WeakMap<PGlite, WasmMemory>();

/**
 * Given to `PGlite`'s `extensions`: replaces the instance's new memory with the kept one, zeroed, if any; and
 * learns where the instance keeps its program break.
 */
export const reusedMemory: Extension = {
  name: "ominipg-reused-memory",
  setup: async (_pg, options: ModuleOptions) => {
    const fresh = options.wasmMemory;
    if (!fresh) return {};
    const placeholder = fresh.buffer.byteLength === PLACEHOLDER_BYTES;
    const needed = placeholder ? START_PAGES << 16 : fresh.buffer.byteLength;
    const spare = kept.findLast((k) => k.memory.buffer.byteLength >= needed);
    if (spare) {
      release(spare);
      new Uint8Array(spare.memory.buffer, 0, spare.used).fill(0);
    }
    const memory = spare?.memory ?? (placeholder ? new Memory({ initial: START_PAGES, maximum: MAX_PAGES }) : fresh);
    const instantiate = options.instantiateWasm;
    const instantiateWasm: Instantiate | undefined =
      instantiate &&
      ((imports, done) =>
        instantiate(imports, (instance, module) => {
          const at = instance.exports.emscripten_get_sbrk_ptr?.();
          if (typeof at === "number") breakAt.set(memory, at);
          done(instance, module);
        }));
    return { emscriptenOpts: { ...options, wasmMemory: memory, instantiateWasm } };
  },
};

/** A database Ominipg opened: its memory may serve the next one once it is closed (`handBack`). */
export function remember(db: PGlite): void {
  const memory = (db.Module as { wasmMemory?: WasmMemory }).wasmMemory;
  if (memory?.buffer instanceof ArrayBuffer) ours.set(db, memory);
}

/** After `db.close()` resolved: keep its memory for the next database (see above). */
export function handBack(db: PGlite): void {
  const memory = ours.get(db);
  ours.delete(db);
  if (!memory || !db.closed || memory.buffer.byteLength > MAX_BYTES) return;
  const entry: Kept = { memory, used: usedBytes(memory), timer: setTimeout(() => release(entry), KEEP_MS) };
  entry.timer.unref();
  kept.push(entry);
  if (kept.length > MAX_KEPT) release(kept[0]!);
}

/** The program break of the instance that ran in `memory`, or its whole length where that is not known. */
function usedBytes(memory: WasmMemory): number {
  const length = memory.buffer.byteLength;
  const at = breakAt.get(memory);
  if (at === undefined || at % 4 !== 0 || at <= 0 || at + 4 > length) return length;
  const end = new Uint32Array(memory.buffer, at, 1)[0]!;
  return end > at && end <= length ? end : length;
}

function release(entry: Kept): void {
  clearTimeout(entry.timer);
  const at = kept.indexOf(entry);
  if (at >= 0) kept.splice(at, 1);
}

/** Let go of every kept memory now. */
export function drop(): void {
  for (const entry of [...kept]) release(entry);
}
