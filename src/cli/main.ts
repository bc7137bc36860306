#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";
import { runCli } from "./run.js";

// A command is short: run PGlite's WebAssembly as first compiled, without tiering hot functions up to
// optimized code. Optimizing them took CPU from the command and held its exit for the compiler threads
// (~0.2-0.4 s of a ~0.7 s "ominipg status" on 2 cores); 200,000 inserts and an md5 scan of them in PGlite
// measured no slower without it.
setFlagsFromString("--wasm-tiering-budget=2000000000");

void runCli(process.argv.slice(2)).then(finish);

function finish(code: number): void {
  process.exitCode = code;
  // Everything is closed by now: end as soon as the output is written. Waiting for the event loop to drain
  // would wait for V8 to finish optimizing PGlite's WebAssembly in the background (~0.2-0.3 s after every
  // command), or for a stray handle.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  setTimeout(() => process.exit(code), 2000).unref();
}
