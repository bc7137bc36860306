#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";
import { runCli } from "./run.js";
import { SHORT_LIVED_FLAG } from "./short-lived.js";

setFlagsFromString(SHORT_LIVED_FLAG); // a command is short (short-lived.ts)

void runCli(process.argv.slice(2)).then(finish);

function finish(code: number): void {
  process.exitCode = code;
  // Everything is closed by now: end as soon as the output is written. Waiting for the event loop to drain
  // would wait for V8 to finish optimizing PGlite's WebAssembly in the background (~0.2-0.3 s after every
  // command), or for a stray handle.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  setTimeout(() => process.exit(code), 2000).unref();
}
