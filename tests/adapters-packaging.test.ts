import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./harness/index.js";

const root = path.resolve(import.meta.dirname, "..");
const ORM = /^(drizzle-orm|kysely)(\/|$)/;

/** Every module specifier reachable from `entry` through relative imports (static `import`/`export ... from`). */
function reachable(entry: string): { files: Set<string>; bare: Set<string> } {
  const files = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = fs.readFileSync(file, "utf8");
    for (const m of text.matchAll(
      /^\s*(?:import|export)\s+(type\s+)?[^;]*?from\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm,
    )) {
      if (m[1]) continue; // type-only: erased
      const spec = m[2] ?? m[3] ?? m[4]!;
      if (spec.startsWith(".")) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, ".ts")));
      else bare.add(spec);
    }
  };
  visit(entry);
  return { files, bare };
}

describe("adapter packaging", () => {
  it("the main entry never imports drizzle-orm or kysely; each adapter imports only its own", () => {
    const main = reachable(path.join(root, "src/index.ts"));
    expect([...main.bare].filter((s) => ORM.test(s))).toEqual([]);
    expect([...main.files].some((f) => f.includes(`${path.sep}adapters${path.sep}`))).toBe(false);
    expect(
      [...reachable(path.join(root, "src/adapters/drizzle.ts")).bare]
        .filter((s) => ORM.test(s))
        .every((s) => s.startsWith("drizzle-orm")),
    ).toBe(true);
    expect(
      [...reachable(path.join(root, "src/adapters/kysely.ts")).bare]
        .filter((s) => ORM.test(s))
        .every((s) => s.startsWith("kysely")),
    ).toBe(true);
  });

  it("exports ./drizzle and ./kysely with optional peer dependencies", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    expect(pkg.exports["./drizzle"]).toEqual({
      types: "./dist/adapters/drizzle.d.ts",
      import: "./dist/adapters/drizzle.js",
      require: "./cjs/drizzle.cjs",
    });
    expect(pkg.exports["./kysely"]).toEqual({
      types: "./dist/adapters/kysely.d.ts",
      import: "./dist/adapters/kysely.js",
      require: "./cjs/kysely.cjs",
    });
    expect(pkg.peerDependenciesMeta).toMatchObject({ "drizzle-orm": { optional: true }, kysely: { optional: true } });
    expect(Object.keys(pkg.peerDependencies)).toEqual(expect.arrayContaining(["drizzle-orm", "kysely"]));
  });

  // Needs the build (`npm test` builds first): resolves the package's own exports the way a user's import does.
  it("built: import 'ominipg' loads neither ORM; 'ominipg/drizzle' and 'ominipg/kysely' load", () => {
    if (!fs.existsSync(path.join(root, "dist/adapters/kysely.js")))
      throw new Error("dist/ is missing: run `npm run build` first");
    const dir = tempDir("ominipg-pkg-");
    const hooks = path.join(dir, "hooks.mjs");
    fs.writeFileSync(
      hooks,
      `export async function resolve(spec, ctx, next) {
         if (/^(drizzle-orm|kysely)(\\/|$)/.test(spec)) console.log("ORM " + spec);
         return next(spec, ctx);
       }`,
    );
    const run = (code: string) =>
      execFileSync(
        process.execPath,
        [
          "--import",
          `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(new URL(`file://${hooks}`).href)})`,
          "--input-type=module",
          "-e",
          code,
        ],
        { cwd: root, encoding: "utf8" },
      );
    expect(run(`const m = await import("ominipg"); console.log(typeof m.Ominipg)`).trim()).toBe("function");
    const adapters = run(
      `const d = await import("ominipg/drizzle"); const k = await import("ominipg/kysely"); console.log(typeof d.drizzle, typeof k.OminipgDialect)`,
    );
    expect(adapters).toMatch(/ORM drizzle-orm/);
    expect(adapters).toMatch(/ORM kysely/);
    expect(adapters.trim().split("\n").at(-1)).toBe("function function");
  });
});
