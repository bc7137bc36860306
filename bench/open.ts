/**
 * Section 6: opening a database, cold, each open in a fresh process (as an app or a CLI command starts):
 * `new PGlite()` (initdb) side by side with `Ominipg.connect()` of a new in-memory database and of a new
 * directory from a warm init cache, a reopened directory, and `ominipg status` on an existing directory.
 * The init cache is the bench's own (OMINIPG_CACHE_DIR in its temp directory), made by the first open.
 */
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { OpenChildResult, OpenContender } from "./open-child.js";
import { median, num, ratio, rotate } from "./lib/stats.js";
import type { Table } from "./lib/table.js";

export const TARGET_NEW_VS_PGLITE = 0.3;
export const TARGET_CLI_MS = 1000;

type Timed = "pglite-memory" | "ominipg-memory" | "ominipg-directory" | "ominipg-memory-initdb" | "ominipg-reopen";

export interface OpenRun {
  /** Open call (ms) per contender, in a fresh process each. */
  openMs: Partial<Record<Timed, number>>;
  /** `ominipg status <existing dir>`: from spawning the process to its exit (ms). */
  cliMs: number;
}

export interface OpenResult {
  /** The very first open (a new directory): no template yet, so it is made (initdb) and stored. */
  firstOpenMs: number;
  runs: OpenRun[];
  /** Whether `ominipg-memory-initdb` (initCache: false) was measured. */
  withInitdb: boolean;
}

const here = fileURLToPath(new URL(".", import.meta.url));
const CHILD = join(here, "open-child.js");
const CLI = join(here, "..", "src", "cli", "main.js");

function spawnTimed(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; wallMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.on("close", (code) => {
      const wallMs = performance.now() - started;
      if (code === 0) resolve({ stdout, wallMs });
      else reject(new Error(`${args.join(" ")} exited with ${code}: ${stderr.trim()}`));
    });
  });
}

async function openOnce(contender: OpenContender, dir: string | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const { stdout } = await spawnTimed([CHILD, contender, ...(dir ? [dir] : [])], env);
  return (JSON.parse(stdout.trim().split("\n").at(-1)!) as OpenChildResult).openMs;
}

export async function runOpen(opts: {
  root: string;
  runs: number;
  withInitdb: boolean;
  log: (line: string) => void;
}): Promise<OpenResult> {
  const { root, runs, withInitdb, log } = opts;
  const base = join(root, "open");
  mkdirSync(base, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, OMINIPG_CACHE_DIR: join(base, "init-cache") };
  delete env["OMINIPG_INIT_CACHE"];
  let dirs = 0;
  const newDir = () => join(base, `db-${++dirs}`);

  log("open: first open (the init cache is made)");
  const existing = newDir(); // also the directory reopened and given to the CLI
  const firstOpenMs = await openOnce("ominipg-directory", existing, env);

  const timed: Timed[] = ["pglite-memory", "ominipg-memory", "ominipg-directory", "ominipg-reopen"];
  if (withInitdb) timed.push("ominipg-memory-initdb");
  const steps: (Timed | "cli")[] = [...timed, "cli"];
  const result: OpenResult = { firstOpenMs, runs: [], withInitdb };
  for (let run = 0; run < runs; run++) {
    log(`open: run ${run + 1}/${runs}`);
    const r: OpenRun = { openMs: {}, cliMs: NaN };
    for (const step of rotate(steps, run)) {
      if (step === "cli") r.cliMs = (await spawnTimed([CLI, "status", existing], env)).wallMs;
      else if (step === "ominipg-directory") r.openMs[step] = await openOnce(step, newDir(), env);
      else if (step === "ominipg-reopen") r.openMs[step] = await openOnce(step, existing, env);
      else r.openMs[step] = await openOnce(step, undefined, env);
    }
    result.runs.push(r);
  }
  return result;
}

function medianOf(result: OpenResult, f: (r: OpenRun) => number | undefined): number {
  return median(result.runs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
}

function vsPglite(result: OpenResult, id: Timed): number {
  return medianOf(result, (r) => (r.openMs[id] ?? NaN) / (r.openMs["pglite-memory"] ?? NaN));
}

export function openTargets(
  result: OpenResult,
): { measure: string; result: string; target: string; met: boolean | undefined }[] {
  const memory = vsPglite(result, "ominipg-memory");
  const directory = vsPglite(result, "ominipg-directory");
  const cli = medianOf(result, (r) => r.cliMs);
  return [
    {
      measure: "`Ominipg.connect()` of a new in-memory database vs `new PGlite()` (open time, fresh processes)",
      result: ratio(memory),
      target: `≤ ${TARGET_NEW_VS_PGLITE.toFixed(1)}x`,
      met: memory <= TARGET_NEW_VS_PGLITE,
    },
    {
      measure: "`Ominipg.connect()` of a new directory vs `new PGlite()` (open time, fresh processes)",
      result: ratio(directory),
      target: `≤ ${TARGET_NEW_VS_PGLITE.toFixed(1)}x`,
      met: directory <= TARGET_NEW_VS_PGLITE,
    },
    {
      measure: "`ominipg status <dir>` on an existing directory, process start to exit",
      result: `${num(cli)} ms`,
      target: `< ${TARGET_CLI_MS} ms`,
      met: cli < TARGET_CLI_MS,
    },
  ];
}

const LABELS: Record<Timed, string> = {
  "pglite-memory": "`new PGlite()` (in memory: initdb)",
  "ominipg-memory": '`Ominipg.connect({ url: ":memory:" })`, warm init cache',
  "ominipg-directory": "`Ominipg.connect({ url: <new dir> })`, warm init cache",
  "ominipg-memory-initdb": '`Ominipg.connect({ url: ":memory:", initCache: false })` (initdb)',
  "ominipg-reopen": "`Ominipg.connect({ url: <existing dir> })`",
};

export function openTable(result: OpenResult): Table {
  const ids: Timed[] = ["pglite-memory", "ominipg-memory", "ominipg-directory", "ominipg-reopen"];
  if (result.withInitdb) ids.push("ominipg-memory-initdb");
  const rows = ids.map((id) => [
    LABELS[id],
    num(medianOf(result, (r) => r.openMs[id])),
    id === "pglite-memory" ? "1.00x" : ratio(vsPglite(result, id)),
  ]);
  rows.push(["`ominipg status <existing dir>` (process start to exit)", num(medianOf(result, (r) => r.cliMs)), "—"]);
  rows.push([
    "first `Ominipg.connect()` ever, of a new directory (makes and stores the template: once per PGlite version)",
    num(result.firstOpenMs),
    "—",
  ]);
  return {
    title: "6. Opening a database: ms, each open cold in a fresh process (median of runs)",
    headers: ["open", "ms", "vs new PGlite()"],
    rows,
    alignRight: [false, true, true],
    notes: [
      "ms = the open call alone (library imported before the clock starts), except the CLI row: the whole process.",
      "vs new PGlite() = open time / `new PGlite()`'s in the same run (per-run ratio, median).",
    ],
  };
}
