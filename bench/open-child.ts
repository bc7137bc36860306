/**
 * Section 6 child: one cold open in a fresh process, as an app starts. Prints one JSON line: the time of the
 * open call itself (`openMs`) and of importing the library before it (`importMs`).
 *
 *   node open-child.js <contender> [dir]     the init cache is wherever OMINIPG_CACHE_DIR says
 */
export type OpenContender =
  "pglite-memory" | "ominipg-memory" | "ominipg-directory" | "ominipg-memory-initdb" | "ominipg-reopen";

export interface OpenChildResult {
  importMs: number;
  openMs: number;
}

async function main(): Promise<void> {
  const [contender, dir] = process.argv.slice(2) as [OpenContender, string | undefined];
  const t0 = performance.now();
  if (contender === "pglite-memory") {
    const { PGlite } = await import("@electric-sql/pglite");
    const t1 = performance.now();
    const db = await PGlite.create();
    const t2 = performance.now();
    await db.query("SELECT 1");
    await db.close();
    return report({ importMs: t1 - t0, openMs: t2 - t1 });
  }
  const { Ominipg } = await import("../src/index.js");
  const t1 = performance.now();
  const url = contender === "ominipg-memory" || contender === "ominipg-memory-initdb" ? ":memory:" : dir;
  if (!url) throw new Error(`${contender} needs a directory`);
  const db = await Ominipg.connect({ url, initCache: contender !== "ominipg-memory-initdb" });
  const t2 = performance.now();
  await db.query("SELECT 1");
  await db.close();
  report({ importMs: t1 - t0, openMs: t2 - t1 });
}

function report(result: OpenChildResult): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
