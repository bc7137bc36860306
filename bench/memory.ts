/**
 * Section 5: peak RSS while `changes` pending changes are captured and then drained by sync(), measured in
 * a child process (its own heap, its own PGlite). The parent also samples the child's VmRSS from /proc
 * every 50 ms (Linux), which sees the peaks while WASM blocks the child's event loop.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Storage } from "./lib/contenders.js";
import { createDatabase, type RemoteServer } from "./lib/remote.js";
import type { MemoryChildConfig, MemoryChildResult } from "./memory-child.js";

export interface MemoryResult extends MemoryChildResult {
  storage: Storage;
  changes: number;
  /** Peak VmRSS of the child during capture / drain, sampled from /proc by the parent (0 where /proc is missing). */
  procPeakCaptureRss: number;
  procPeakDrainRss: number;
  wallMs: number;
}

export async function runMemory(
  server: RemoteServer,
  opts: {
    storage: Storage;
    changes: number;
    chunk: number;
    root: string;
    templatePath: string;
    /** What is captured: inserts of narrow rows (default), or one-column updates of `chunk` wide rows (section 8). */
    workload?: MemoryChildConfig["workload"];
    log: (l: string) => void;
  },
): Promise<MemoryResult> {
  const { storage, changes, chunk, root, templatePath, log } = opts;
  const workload = opts.workload ?? "inserts";
  const suffix = workload === "inserts" ? "" : "_wide";
  const syncUrl = await createDatabase(server, `bench_memory_${storage}${suffix}`);
  const url = storage === "memory" ? ":memory:" : join(root, `memory${suffix}-${Date.now()}`);
  const cfg: MemoryChildConfig = { changes, chunk, syncUrl, url, templatePath, workload };
  const script = join(fileURLToPath(new URL(".", import.meta.url)), "memory-child.js");
  log(`memory: child process, ${changes.toLocaleString("en-US")} changes, ${workload} (${storage})`);
  const started = performance.now();
  const child = spawn(process.execPath, ["--expose-gc", script, JSON.stringify(cfg)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const procPeak: Record<string, number> = { capture: 0, drain: 0 };
  let phase = "setup";
  const timer = setInterval(() => {
    if (phase !== "capture" && phase !== "drain") return;
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) procPeak[phase] = Math.max(procPeak[phase] ?? 0, Number(m[1]) * 1024);
    } catch {
      // not Linux, or the child has just exited
    }
  }, 50);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    const marks = [...stdout.matchAll(/^@phase (\w+)$/gm)];
    phase = marks.at(-1)?.[1] ?? phase;
  });
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearInterval(timer);
  if (code !== 0) throw new Error(`memory child exited with ${code}: ${stderr.trim()}`);
  const line =
    stdout
      .trim()
      .split("\n")
      .filter((l) => !l.startsWith("@"))
      .at(-1) ?? "";
  const result = JSON.parse(line) as MemoryChildResult;
  return {
    ...result,
    storage,
    changes,
    procPeakCaptureRss: procPeak.capture ?? 0,
    procPeakDrainRss: procPeak.drain ?? 0,
    wallMs: performance.now() - started,
  };
}

/** The peak to report: the highest RSS seen during capture and drain, by the child's own samples or the parent's /proc samples. */
export function peakOf(r: MemoryResult): number {
  return Math.max(capturePeak(r), drainPeak(r));
}

export function capturePeak(r: MemoryResult): number {
  return Math.max(r.peakCaptureRss, r.procPeakCaptureRss);
}

export function drainPeak(r: MemoryResult): number {
  return Math.max(r.peakDrainRss, r.procPeakDrainRss);
}
