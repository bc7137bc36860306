// What tests change in their own process, put back afterwards (the environment, stdout/stderr captured), and how
// they start child processes.
import path from "node:path";
import { SHORT_LIVED_FLAG } from "../src/cli/short-lived.js";

export type Env = Record<string, string | undefined>;

/** Set (or, for undefined, delete) variables of process.env; returns what they were, for a second call to restore. */
export function setEnv(vars: Env): Env {
  const before: Env = {};
  for (const [key, value] of Object.entries(vars)) {
    before[key] = process.env[key];
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  return before;
}

/** Everything written to stdout/stderr (and console) while `fn` runs. */
export async function captureOutput<T>(fn: () => Promise<T>): Promise<{ value: T; output: string }> {
  let output = "";
  const outWrite = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => (
    (output += String(chunk)),
    outWrite(chunk as string, ...(rest as []))
  )) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => (
    (output += String(chunk)),
    errWrite(chunk as string, ...(rest as []))
  )) as typeof process.stderr.write;
  try {
    return { value: await fn(), output };
  } finally {
    process.stdout.write = outWrite;
    process.stderr.write = errWrite;
  }
}

/**
 * Node's flag for a short-lived child, the CLI's own (src/cli/short-lived.ts): PGlite's WebAssembly never tiered up
 * to optimized code, which cost each child ~0.8 s of CPU it did not win back.
 */
export const SHORT_LIVED = SHORT_LIVED_FLAG;

/** Node's arguments to run tests/fixtures/<name> with `args`, as a short-lived child. */
export function fixtureArgs(name: string, ...args: string[]): string[] {
  return [SHORT_LIVED, path.join(import.meta.dirname, "fixtures", name), ...args];
}
