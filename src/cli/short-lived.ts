/**
 * V8's flag for a short-lived process (a CLI command): run PGlite's WebAssembly as first compiled, without tiering
 * hot functions up to optimized code. Optimizing them took CPU from the command and held its exit for the compiler
 * threads (~0.2-0.4 s of a ~0.7 s "ominipg status" on 2 cores); 200,000 inserts and an md5 scan of them in PGlite
 * measured no slower without it.
 */
export const SHORT_LIVED_FLAG = "--wasm-tiering-budget=2000000000";
